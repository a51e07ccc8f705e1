"""Which hand a crop holds, read off the pose model's own latent, and grafted onto its ONNX file as an output.

The hand finder's detector says left or right from the whole frame, mostly from which side of the arm the body is
(81 % on held-out frames, 56 % when the hand lies on the body). The pose network has looked at the hand itself:
its latent (the feature map averaged over the grid) already separates a left hand from a right one. Measured on
the hand crops of the detector's frame shards (a left hand there is a physically mirrored scene, so the sensor's
shadows fall as they would), through the shipped int8 murauer-cpu-3: a linear readout 88 %, one hidden layer of
64 units 91.5 % on held-out crops.

The readout is a small MLP (latent -> 64 -> 1, the latent's standardisation folded into its first layer),
trained on latents the exported file itself computes (so it reads exactly the features the tracker's file
produces, int8 rounding included), and then appended to that file's graph: a third output `left`, p(left hand)
of the crop as given, unmirrored. The file's metadata lists the output and says how the readout was trained.
A pose file fine-tuned later has other features, so its export has no `left` and the tracker falls back to the
detector.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from handtrack.inference.errors import HandtrackError
from handtrack.inference.model import METADATA_KEY, PoseModel
from handtrack.training.onnx_file import save_onnx

LEFT_OUTPUT = "left"


def hand_crops(folders: list[Path]) -> tuple[np.ndarray, np.ndarray]:
    """The hand crops (N, 128, 128) of detector frame shards and whether each is a left hand (read shard by shard:
    the other crops are most of a shard)."""
    from handtrack.training.detect.data import iter_shards

    crops, left = [], []
    for shard in iter_shards(folders):
        hand = shard["crop_hand"] > 0.5
        crops.append(shard["crops"][hand])
        left.append(shard["crop_left"][hand] > 0.5)
    return np.concatenate(crops), np.concatenate(left)


def latents(pose: PoseModel, crops: np.ndarray, batch: int = 64) -> np.ndarray:
    return np.concatenate([pose.predict(crops[s:s + batch].astype(np.float32))[0]
                           for s in range(0, len(crops), batch)])


def fit(features: np.ndarray, left: np.ndarray, hidden: int = 64, epochs: int = 60, seed: int = 0,
        held_out: float = 0.1, mirrored: np.ndarray | None = None) -> tuple[dict, dict]:
    """Train the readout; returns its weights as arrays (the standardisation folded in) and the accuracies.
    `mirrored`: the latents of the same crops mirrored left-right, trained on as the other hand (a crop and its
    mirror image are held out together)."""
    import torch

    rng = np.random.default_rng(seed)
    order = rng.permutation(len(features))
    n_val = max(1, int(len(features) * held_out))
    val, train = order[:n_val], order[n_val:]
    if mirrored is not None:
        n = len(features)
        features, left = np.concatenate([features, mirrored]), np.concatenate([left, ~left])
        train = np.concatenate([train, train + n])
    mu, sd = features[train].mean(0), features[train].std(0) + 1e-6
    x = torch.tensor((features - mu) / sd, dtype=torch.float32)
    y = torch.tensor(left, dtype=torch.float32)
    torch.manual_seed(seed)
    net = torch.nn.Sequential(torch.nn.Linear(features.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                              torch.nn.Linear(hidden, 1))
    opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-3)
    train_t = torch.from_numpy(train)
    for _ in range(epochs):
        perm = train_t[torch.randperm(len(train_t))]
        for s in range(0, len(perm), 256):
            i = perm[s:s + 256]
            loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x[i])[:, 0], y[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
    net.eval()
    with torch.no_grad():
        right_answer = ((net(x)[:, 0] > 0).numpy() == left)
    w1 = net[0].weight.detach().numpy().T / sd[:, None]          # (L, H): ((f - mu) / sd) @ W = f @ (W / sd) - ...
    b1 = net[0].bias.detach().numpy() - (mu / sd) @ net[0].weight.detach().numpy().T
    weights = {"w1": w1.astype(np.float32), "b1": b1.astype(np.float32),
               "w2": net[3].weight.detach().numpy().T.astype(np.float32),
               "b2": net[3].bias.detach().numpy().astype(np.float32)}
    scores = {"train_accuracy": float(right_answer[train].mean()), "held_out_accuracy": float(right_answer[val].mean()),
              "train_crops": int(len(train)), "held_out_crops": int(n_val), "left_share": float(left.mean())}
    return weights, scores


def graft(pose_path: Path, out_path: Path, weights: dict, training: dict) -> None:
    """Write `pose_path` with the readout appended: output `left` (B, 1) = sigmoid(mlp(latent))."""
    import onnx
    from onnx import helper, numpy_helper

    proto = onnx.load(str(pose_path))
    graph = proto.graph
    if any(o.name == LEFT_OUTPUT for o in graph.output):
        raise HandtrackError(f"{pose_path}: already has a '{LEFT_OUTPUT}' output")
    latent = next((o.name for o in graph.output if o.name == "latent"), None)
    if latent is None:
        raise HandtrackError(f"{pose_path}: no 'latent' output to read the hand from")
    names = {k: f"handedness_{k}" for k in weights}
    graph.initializer.extend(numpy_helper.from_array(v, names[k]) for k, v in weights.items())
    graph.node.extend([
        helper.make_node("MatMul", [latent, names["w1"]], ["handedness_h0"], name="handedness_fc1"),
        helper.make_node("Add", ["handedness_h0", names["b1"]], ["handedness_h1"], name="handedness_bias1"),
        helper.make_node("Relu", ["handedness_h1"], ["handedness_h2"], name="handedness_relu"),
        helper.make_node("MatMul", ["handedness_h2", names["w2"]], ["handedness_h3"], name="handedness_fc2"),
        helper.make_node("Add", ["handedness_h3", names["b2"]], ["handedness_logit"], name="handedness_bias2"),
        helper.make_node("Sigmoid", ["handedness_logit"], [LEFT_OUTPUT], name="handedness_sigmoid")])
    graph.output.append(helper.make_tensor_value_info(LEFT_OUTPUT, onnx.TensorProto.FLOAT, ["batch", 1]))
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    meta = json.loads(entry.value)
    meta["outputs"] = list(meta["outputs"]) + [LEFT_OUTPUT]
    meta["extra"] = {**meta.get("extra", {}), "handedness": training}
    entry.value = json.dumps(meta)
    onnx.checker.check_model(proto)
    save_onnx(proto, out_path)


def strip(pose_path: Path, out_path: Path) -> None:
    """Write `pose_path` without its handedness readout (the nodes, weights, output and metadata graft() adds)."""
    import onnx

    proto = onnx.load(str(pose_path))
    graph = proto.graph
    keep = [n for n in graph.node if not n.name.startswith("handedness_")]
    del graph.node[:]
    graph.node.extend(keep)
    weights = [t for t in graph.initializer if not t.name.startswith("handedness_")]
    del graph.initializer[:]
    graph.initializer.extend(weights)
    outputs = [o for o in graph.output if o.name != LEFT_OUTPUT]
    del graph.output[:]
    graph.output.extend(outputs)
    entry = next(p for p in proto.metadata_props if p.key == METADATA_KEY)
    meta = json.loads(entry.value)
    meta["outputs"] = [o for o in meta["outputs"] if o != LEFT_OUTPUT]
    meta.get("extra", {}).pop("handedness", None)
    entry.value = json.dumps(meta)
    onnx.checker.check_model(proto)
    save_onnx(proto, out_path)


def train_handedness(pose_path: str | Path, folders: list[Path], out_path: str | Path | None = None,
                     hidden: int = 64, epochs: int = 60, seed: int = 0, replace: bool = False,
                     mirror: bool = True) -> dict:
    """Fit the readout on the hand crops of `folders` (and, with `mirror`, on their mirror images as the other
    hand) through the pose file and write the file with it grafted on (in place unless `out_path`); `replace`
    takes the file's own readout off first. Returns the accuracies."""
    import tempfile

    pose_path = Path(pose_path)
    out_path = Path(out_path) if out_path else pose_path
    with tempfile.TemporaryDirectory() as tmp:
        if LEFT_OUTPUT in PoseModel(pose_path).info.outputs:
            if not replace:
                raise HandtrackError(f"{pose_path}: already has a '{LEFT_OUTPUT}' output (--replace to retrain it)")
            strip(pose_path, Path(tmp) / "pose.onnx")  # the file itself is rewritten only once all went well
            pose_path = Path(tmp) / "pose.onnx"
        return _train(pose_path, folders, out_path, hidden, epochs, seed, mirror)


def _train(pose_path: Path, folders: list[Path], out_path: Path, hidden: int, epochs: int, seed: int,
           mirror: bool) -> dict:
    pose = PoseModel(pose_path)
    crops, left = hand_crops(folders)
    if len(crops) < 10 or left.all() or not left.any():
        raise HandtrackError(f"{len(crops)} hand crops in {', '.join(map(str, folders))}: too few, or one hand only")
    mirrored = latents(pose, np.ascontiguousarray(crops[:, :, ::-1])) if mirror else None
    weights, scores = fit(latents(pose, crops), left, hidden, epochs, seed, mirrored=mirrored)
    training = {"data": [str(f) for f in folders], "hidden": hidden, "epochs": epochs, "seed": seed,
                "mirrored_copies": mirror, **scores}
    graft(pose_path, out_path, weights, training)
    return training
