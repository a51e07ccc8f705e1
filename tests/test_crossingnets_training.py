"""Crossing Nets training end to end on a few hundred synthetic crops: the schedule, its files, exact resume,
one-line errors, the semi-supervised split and DistributedDataParallel under torchrun.

Tiny step counts and one torch thread, so that the file runs in well under a minute on two cores.
"""
import contextlib
import copy
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from handtrack.app.cli import main  # noqa: E402
from handtrack.inference.errors import HandtrackError  # noqa: E402
from handtrack.training.crossingnets import stages  # noqa: E402
from handtrack.training.crossingnets.config import STAGES, load_config, make_config  # noqa: E402
from handtrack.training.crossingnets.data import load_shards, load_sources  # noqa: E402
from handtrack.training.synth.generator import SynthConfig, generate_shard  # noqa: E402
from handtrack.training.synth.pose_prior import PosePrior  # noqa: E402

N_TRAIN, N_VAL = 300, 48
STEPS = {"vae": 4, "gan": 3, "ali": 6, "joint": 4, "render": 3, "refine": 3}
STAGE_LR_REFINE = make_config()["stages"]["refine"]["lr"]


# --- fixtures -----------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The trainer sets torch's thread count from the config (1 here); give the rest of the suite its own back."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def shards(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cn_data")
    prior = PosePrior.load()
    out = {}
    for name, n, seed in (("train", N_TRAIN, 11), ("val", N_VAL, 12)):
        folder = root / name
        folder.mkdir()
        generate_shard(folder, 0, n, n, SynthConfig(sensor="primesense", seed=seed), prior)
        out[name] = folder
    return out


def tiny_config(shards, **steps) -> dict:
    """A raw config (as written to a file) of a few steps per stage."""
    s = {**STEPS, **steps}
    return {
        "name": "tiny", "seed": 5, "threads": 1,
        "data": {"sources": [{"path": str(shards["train"]), "labelled_fraction": 0.5}],
                 "val": {"path": str(shards["val"]), "limit": N_VAL}},
        "stages": {"vae": {"steps": s["vae"], "batch": 32}, "gan": {"steps": s["gan"], "batch": 8},
                   "ali": {"steps": s["ali"]}, "joint": {"steps": s["joint"]},
                   "render": {"steps": s["render"], "batch": 8}, "refine": {"steps": s["refine"]}},
        "batch": {"labelled": 8, "unlabelled": 4, "synth": 4},
        "log_every": 2, "val_every": 4, "ckpt_every": 4,
    }


def write_config(path: Path, raw: dict) -> Path:
    path.write_text(json.dumps(raw, indent=2))
    return path


def cli(*argv) -> tuple[int, str, str]:
    """`handtrack ARGS` in this process: exit code, stdout, stderr."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def train(config: Path, out: Path, *extra) -> tuple[int, str, str]:
    return cli("train", "crossingnets", "--config", config, "--out", out, *extra)


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def assert_same_tensors(a: dict, b: dict, what: str) -> None:
    assert a.keys() == b.keys()
    differ = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differ, f"{what}: {len(differ)} of {len(a)} tensors differ, e.g. {differ[:5]}"


def assert_one_error_line(code: int, err: str, *needles: str) -> str:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected a one-line error, got:\n{err}"
    assert lines[0].startswith("handtrack: error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def full_run(shards, tmp_path_factory) -> dict:
    """The uninterrupted reference run: every stage, through the CLI."""
    root = tmp_path_factory.mktemp("cn_full")
    raw = tiny_config(shards)
    config = write_config(root / "tiny.json", raw)
    out = root / "run"
    code, stdout, stderr = train(config, out, "--json", root / "result.json")
    assert code == 0, stderr
    return {"root": root, "raw": raw, "config": config, "out": out, "stdout": stdout,
            "json": root / "result.json"}


# --- 1. the schedule and what it writes ---------------------------------------------------------------------------

def test_full_schedule_writes_checkpoints_config_curves_and_a_finite_result(full_run):
    out = full_run["out"]
    for name in ("last.pt", "config.json", "curves.png", *(f"{s}_end.pt" for s in STAGES)):
        assert (out / name).is_file(), name
    assert (out / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("*.tmp*")), "a temporary file was left behind"

    # the saved config is the config the run used, defaults filled in
    assert json.loads((out / "config.json").read_text()) == make_config(full_run["raw"])

    printed = json.loads(full_run["stdout"].strip().splitlines()[-1])
    assert json.loads(full_run["json"].read_text()) == printed
    assert Path(printed["checkpoint"]) == out / "last.pt"
    for key in ("val_mm", "vae_floor_mm"):
        assert math.isfinite(printed[key]) and printed[key] > 0, (key, printed)

    last = load(out / "last.pt")  # weights_only: tensors and plain data only
    assert last["position"] == {"stage": len(STAGES) - 1, "step": STEPS["refine"]}
    assert json.loads(last["config"]) == make_config(full_run["raw"])
    assert all(torch.isfinite(t).all() for t in last["model"].values() if t.is_floating_point())
    assert [s for s in STAGES if any(r["stage"] == s for r in last["history"])] == list(STAGES)
    for si, name in enumerate(STAGES):
        end = load(out / f"{name}_end.pt")
        assert end["position"] == {"stage": si, "step": STEPS[name]}, name
    assert_same_tensors(load(out / "refine_end.pt")["model"], last["model"], "refine_end.pt vs last.pt")
    # training moved the weights between stages
    assert not torch.equal(load(out / "gan_end.pt")["model"]["gen.fc.0.weight"],
                           load(out / "vae_end.pt")["model"]["gen.fc.0.weight"])


def test_render_trains_ali_and_the_generator_alone(full_run):
    """The render stage moves Ali and the generator only (the pose route and the GAN head stay), by the
    reconstruction loss, with the learning rate on the cosine."""
    before = load(full_run["out"] / "joint_end.pt")["model"]
    after = load(full_run["out"] / "render_end.pt")
    moved = {k for k in before if k.endswith("weight") and not torch.equal(before[k], after["model"][k])}
    assert moved and all(k.startswith(("ali.", "gen.")) for k in moved), sorted(moved)
    assert any(k.startswith("ali.") for k in moved) and any(k.startswith("gen.") for k in moved)
    lr, steps = make_config()["stages"]["render"]["lr"], STEPS["render"]
    assert after["optim"]["render"]["param_groups"][0]["lr"] == pytest.approx(
        0.5 * lr * (1 + math.cos(math.pi * (steps - 1) / steps)))
    rows = [r for r in after["history"] if r["stage"] == "render"]
    assert rows and all(math.isfinite(r["render"]) for r in rows)


def test_a_wider_generator_starts_fresh_on_a_trained_model(full_run, shards, tmp_path):
    """init_fresh_generator: every network of init_from but the generator, which takes gen_widths and learns;
    without it, other generator widths are a one-line error."""
    raw = tiny_config(shards, vae=0, gan=0, ali=0, joint=0, render=2, refine=0)
    raw["init_from"] = str(full_run["out"] / "final.pt")
    raw["model"] = {"gen_widths": [16, 12, 8, 8, 4]}
    code, _, err = train(write_config(tmp_path / "refused.json", raw), tmp_path / "refused")
    assert_one_error_line(code, err, "gen_widths")
    raw["init_fresh_generator"] = True
    code, _, err = train(write_config(tmp_path / "wide.json", raw), tmp_path / "wide")
    assert code == 0, err
    before, after = load(full_run["out"] / "final.pt")["model"], load(tmp_path / "wide" / "final.pt")["model"]
    assert after["gen.fc.0.weight"].shape == (16 * 16, 23)
    assert all(torch.equal(before[k], after[k]) for k in before if k.startswith(("vae.", "dis.")))


def test_refine_trains_the_pose_route_alone_with_a_decaying_learning_rate(full_run):
    """The refine stage moves the trunk and the posterior head only, and its learning rate follows the cosine
    down to (nearly) 0 by its last step."""
    before = load(full_run["out"] / "render_end.pt")["model"]
    after = load(full_run["out"] / "refine_end.pt")
    moved = {k for k in before if k.endswith("weight") and not torch.equal(before[k], after["model"][k])}
    assert moved, "refine changed nothing"
    assert all(k.startswith(("dis.trunk.", "dis.pos_convs.", "dis.pos_out.")) for k in moved), sorted(moved)
    assert any(k.startswith("dis.trunk.") for k in moved) and any(k.startswith("dis.pos_") for k in moved)
    lr, steps = STAGE_LR_REFINE, STEPS["refine"]
    expected_last = 0.5 * lr * (1 + math.cos(math.pi * (steps - 1) / steps))
    assert after["optim"]["dis"]["param_groups"][0]["lr"] == pytest.approx(expected_last)
    rows = [r for r in after["history"] if r["stage"] == "refine"]
    assert rows and all("pos_j" in r and math.isfinite(r["pos_j"]) for r in rows)


# --- 2. resume ------------------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_resume_after_a_shorter_joint_stage_reproduces_the_uninterrupted_run(full_run, tmp_path):
    short = copy.deepcopy(full_run["raw"])
    short["stages"]["joint"]["steps"] = 2
    short["stages"]["render"]["steps"] = 0
    short["stages"]["refine"]["steps"] = 0
    out = tmp_path / "run"
    code, _, err = train(write_config(tmp_path / "short.json", short), out)
    assert code == 0, err
    assert load(out / "last.pt")["position"] == {"stage": 3, "step": 2}

    code, _, err = train(full_run["config"], out, "--resume")
    assert code == 0, err
    a, b = load(full_run["out"] / "last.pt"), load(out / "last.pt")
    assert b["position"] == a["position"]
    assert_same_tensors(a["model"], b["model"], "model after resume")
    for opt in a["optim"]:  # the joint stage's Adam moments came through the checkpoint too
        for p in a["optim"][opt]["state"]:
            assert_same_tensors(a["optim"][opt]["state"][p], b["optim"][opt]["state"][p], f"optim {opt}/{p}")


def test_resume_after_an_interruption_mid_stage_reproduces_the_uninterrupted_run(full_run, tmp_path, monkeypatch):
    """Ctrl-C in the 5th ali step: the ali step-4 checkpoint is what a resume continues from."""
    out = tmp_path / "run"
    real_step, calls = stages.AliStage.step, []

    def step_then_interrupt(self, rng):
        calls.append(1)
        if len(calls) == 5:
            raise KeyboardInterrupt
        return real_step(self, rng)

    monkeypatch.setattr(stages.AliStage, "step", step_then_interrupt)
    code, _, err = train(full_run["config"], out)
    assert code == 130, err
    assert load(out / "last.pt")["position"] == {"stage": 2, "step": 4}
    assert not (out / "ali_end.pt").exists()

    monkeypatch.setattr(stages.AliStage, "step", real_step)
    code, _, err = train(full_run["config"], out, "--resume")
    assert code == 0, err
    assert_same_tensors(load(full_run["out"] / "last.pt")["model"], load(out / "last.pt")["model"],
                        "model after resume")
    assert_same_tensors(load(full_run["out"] / "ali_end.pt")["model"], load(out / "ali_end.pt")["model"],
                        "ali_end.pt after resume")


def test_training_into_an_existing_run_without_resume_is_refused(full_run):
    before = (full_run["out"] / "last.pt").read_bytes()
    code, stdout, err = train(full_run["config"], full_run["out"])
    assert_one_error_line(code, err, str(full_run["out"]), "--resume")
    assert stdout == ""
    assert (full_run["out"] / "last.pt").read_bytes() == before


# --- 3. bad configs and bad checkpoints: one line, exit 2 ---------------------------------------------------------

@pytest.mark.parametrize("key", ["learning_rate", "stages.joint.stepz"])
def test_an_unknown_config_key_is_a_one_line_error_naming_it(shards, tmp_path, key):
    raw = tiny_config(shards)
    *parents, leaf = key.split(".")
    node = raw
    for name in parents:
        node = node[name]
    node[leaf] = 3
    out = tmp_path / "run"
    code, _, err = train(write_config(tmp_path / "bad.json", raw), out)
    assert_one_error_line(code, err, f"'{key}'")
    assert not out.exists()


def _truncated(full_run, path: Path) -> None:
    data = (full_run["out"] / "last.pt").read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _garbage(full_run, path: Path) -> None:
    path.write_bytes(np.random.default_rng(0).bytes(4096))


def _other_model_size(full_run, path: Path) -> None:
    """A sound checkpoint of another architecture (vae_hidden 40 where the config says 48)."""
    path.write_bytes((full_run["out"] / "last.pt").read_bytes())


@pytest.mark.parametrize("make_bad", [
    _truncated,
    _garbage,
    _other_model_size,
], ids=["truncated", "garbage-bytes", "other-model-size"])
def test_a_bad_init_from_checkpoint_is_a_one_line_error(full_run, shards, tmp_path, make_bad):
    bad = tmp_path / "bad.pt"
    make_bad(full_run, bad)
    raw = tiny_config(shards)
    raw["init_from"] = str(bad)
    if make_bad is _other_model_size:
        raw["model"] = {"vae_hidden": 48}
    code, _, err = train(write_config(tmp_path / "cfg.json", raw), tmp_path / "run")
    line = assert_one_error_line(code, err, str(bad))
    assert "Traceback" not in err and "\x1b[" not in line


def test_more_synth_than_labelled_crops_is_a_one_line_error(shards, tmp_path):
    raw = tiny_config(shards, vae=0, gan=0, ali=1, joint=1)
    raw["batch"] = {"labelled": 4, "unlabelled": 4, "synth": 8}
    code, _, err = train(write_config(tmp_path / "cfg.json", raw), tmp_path / "run")
    assert_one_error_line(code, err, "synth")


# --- 4. the semi-supervised split -----------------------------------------------------------------------------------

def test_labelled_fraction_splits_each_source_deterministically(shards):
    cube = 250.0
    sources = [{"path": str(shards["train"]), "labelled_fraction": 0.25},
               {"path": str(shards["val"]), "labelled_fraction": 1.0, "limit": 40}]
    lab, unl = load_sources(sources, cube, seed=3)
    assert (len(lab), len(unl)) == (round(0.25 * N_TRAIN) + 40, N_TRAIN - round(0.25 * N_TRAIN))
    assert lab.joints is not None and lab.joints.shape == (len(lab), 21, 3)
    assert unl.joints is None
    with pytest.raises(ValueError):
        unl.targets(np.arange(2))

    # the first source is partitioned: every sample once, labels kept with their own depth
    whole = load_shards(shards["train"], cube_mm=cube)
    key = {c.tobytes(): i for i, c in enumerate(whole.centre)}
    lab_idx = [key[c.tobytes()] for c in lab.centre[: len(lab) - 40]]
    unl_idx = [key[c.tobytes()] for c in unl.centre]
    assert sorted(lab_idx + unl_idx) == list(range(N_TRAIN))
    np.testing.assert_array_equal(lab.joints[: len(lab) - 40], whole.joints[lab_idx])
    np.testing.assert_array_equal(lab.depth[: len(lab) - 40], whole.depth[lab_idx])
    np.testing.assert_array_equal(unl.depth, whole.depth[unl_idx])
    val = load_shards(shards["val"], limit=40, cube_mm=cube)  # the fully labelled source keeps all of it
    np.testing.assert_array_equal(lab.joints[-40:], val.joints)

    again, _ = load_sources(sources, cube, seed=3)
    np.testing.assert_array_equal(again.centre, lab.centre)
    other, _ = load_sources(sources, cube, seed=4)
    assert not np.array_equal(other.centre, lab.centre)


def test_no_labelled_samples_at_all_is_an_error(shards):
    with pytest.raises(HandtrackError, match="no labelled samples"):
        load_sources([{"path": str(shards["train"]), "labelled_fraction": 0.0}], 250.0, seed=0)


# --- 5. DistributedDataParallel under torchrun ---------------------------------------------------------------------

@pytest.mark.slow
def test_torchrun_with_two_processes_trains_one_model_with_averaged_gradients(shards, tmp_path):
    """Two gloo processes. Rank 0 draws the batches a single process draws, so rank 0's weights equal the
    single-process run's exactly unless DDP really averaged in rank 1's gradients."""
    raw = tiny_config(shards, vae=2, gan=2, ali=2, joint=2, render=2, refine=2)
    config = write_config(tmp_path / "ddp.json", raw)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "handtrack.app.cli", "train", "crossingnets", "--config", str(config), "--out", str(tmp_path / "ddp"),
         "--json", str(tmp_path / "ddp.json.out")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "Traceback" not in proc.stderr
    results = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    assert len(results) == 1, proc.stdout  # printed by rank 0 alone
    result = json.loads(results[0])
    assert json.loads((tmp_path / "ddp.json.out").read_text()) == result
    assert math.isfinite(result["val_mm"]) and math.isfinite(result["vae_floor_mm"])
    ddp = load(tmp_path / "ddp" / "last.pt")
    assert ddp["position"] == {"stage": len(STAGES) - 1, "step": 2}
    assert all(torch.isfinite(t).all() for t in ddp["model"].values() if t.is_floating_point())

    code, _, err = train(config, tmp_path / "single")
    assert code == 0, err
    single = load(tmp_path / "single" / "last.pt")["model"]
    differ = [k for k in single if not torch.equal(single[k], ddp["model"][k])]
    assert len(differ) > len(single) // 2, "rank 0 trained as if alone: gradients were not averaged"


# --- 6. the semi-supervised experiment runner -------------------------------------------------------------------

@pytest.mark.slow
def test_semisup_runs_three_models_per_fraction_and_resumes(shards, tmp_path):
    from handtrack.training.crossingnets.semisup import run_experiment

    steps = {"vae": 3, "gan": 2, "ali": 2, "joint": 2, "threads": 1}
    batch = {"labelled": 8, "unlabelled": 4, "synth": 4, "vae": 32, "gan": 8}
    args = (str(shards["train"]), str(shards["train"]), str(shards["val"]), tmp_path / "ss", [25.0], steps, batch)
    results = run_experiment(*args, limits={"val": 16}, quiet=True)
    assert set(results) == {"scratch@25", "gan_init@25", "full@25"}
    assert all(np.isfinite(r["target_mean_error_mm"]) for r in results.values())
    # The baselines differ only in the trunk's start: from the pretrained GAN or re-initialised.
    pre = torch.load(tmp_path / "ss" / "pretrain" / "final.pt", weights_only=True)["model"]
    key = "dis.trunk.0.weight"
    gan_init = torch.load(tmp_path / "ss" / "gan_init_25" / "joint_end.pt", weights_only=True)["model"][key]
    scratch = torch.load(tmp_path / "ss" / "scratch_25" / "joint_end.pt", weights_only=True)["model"][key]
    assert (gan_init - pre[key]).abs().max() < (scratch - pre[key]).abs().max()
    # A second invocation finds every run finished and trains nothing.
    stamp = (tmp_path / "ss" / "full_25" / "last.pt").stat().st_mtime_ns
    assert run_experiment(*args, limits={"val": 16}, quiet=True) == results
    assert (tmp_path / "ss" / "full_25" / "last.pt").stat().st_mtime_ns == stamp


def test_the_render_loss_is_eq6_or_the_mean_absolute_error_and_nothing_else(tmp_path, shards):
    from handtrack.training.crossingnets.networks import LATENT, CrossingNets

    model = CrossingNets().eval()
    z, real = torch.randn(4, LATENT), torch.rand(4, 1, 128, 128) * 2 - 1
    with torch.no_grad():
        synth = model.render(z)
        assert stages.RenderLoss(model, 1.0, "l1")(z, real) == pytest.approx(float((synth - real).abs().mean()))
        assert stages.RenderLoss(model, 0.01, "recons")(z, real) == pytest.approx(
            float(torch.clamp((synth - real) ** 2, max=0.01).mean()))
    raw = tiny_config(shards)
    raw["stages"]["render"]["loss"] = "l2"
    with pytest.raises(HandtrackError, match="render.loss"):
        load_config(write_config(tmp_path / "bad.json", raw))
