"""One fine-tuning run from sessions to a model the tracker loads, with its report:

    out/<name>_pose.onnx, out/<name>_centre.onnx   the tuned model, int8 (--model out/<name>_pose.onnx anywhere);
                                                   out/<name>_pose_fp32.onnx its float original
    out/final.pt                                   the tuned weights as a MURAUER checkpoint (fine-tune it again)
    out/report.json, out/report.png                losses, kept pseudo-label share, plausibility before / after
    out/last.pt, out/config.json                   the resumable state; out/synthetic/ the labelled crops
    out/start/                                     the starting model exported the same way (the "before")
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from handtrack.inference.errors import HandtrackError
from handtrack.inference.report import write_json

from .config import make_config
from .sessions import load_sessions
from .trainer import FinetuneTrainer, ensure_synthetic


def finetune(sessions: list[str | Path], out: str | Path, start: str = "murauer", name: str = "finetuned",
             config: dict | None = None, resume: bool = False, quiet: bool = False, on_progress=None,
             plausibility_frames: int = 300, command: str = "") -> dict:
    from handtrack.training.murauer.export import export_checkpoint

    out = Path(out)
    config = make_config(config)
    if (out / "last.pt").exists() and not resume:
        raise HandtrackError(f"{out} holds a fine-tuning run: --resume to go on with it, or choose another --out")
    t0 = time.perf_counter()
    s = config["session"]
    crops = load_sessions(sessions, 250.0, camera=s["camera"], min_presence=s["min_presence"], limit=s["limit"])
    synthetic = ensure_synthetic(out / "synthetic", config, progress=not quiet)
    trainer = FinetuneTrainer(config, start, crops, synthetic, out, resume=resume, quiet=quiet)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "config.json", config)
    before = out / "start" / f"{name}_pose.onnx"
    if not before.exists():  # the unchanged model through the same export: the fair "before"
        before.parent.mkdir(parents=True, exist_ok=True)
        ckpt = trainer.write_murauer_checkpoint(out / "start" / "start.pt", {"name": name})
        export_checkpoint(ckpt, out / "start", name, version=trainer.start_version, centre_from="murauer")
    t_train = time.perf_counter()
    result = trainer.run(on_progress=on_progress)
    train_s = time.perf_counter() - t_train
    methods = "+".join(config["methods"])
    meta = {"name": name, "command": command,
            "training_data": f"fine-tuned from {trainer.start_version} on {', '.join(map(str, sessions))} "
                             f"({len(crops.crops)} frames; {methods}, {config['steps']} steps)"}
    final = trainer.write_murauer_checkpoint(out / "final.pt", meta)
    written = export_checkpoint(final, out, name, version=f"{trainer.start_version}+{methods}", centre_from="murauer")
    report = {"sessions": [str(p) for p in sessions], "frames": crops.counts, "methods": list(config["methods"]),
              "steps": result["steps"], "start": trainer.start_version, "model": str(written["pose"]),
              "pseudo_labels": result["pseudo_labels"], "history": trainer.history,
              "train_seconds": round(train_s, 1)}
    report["plausibility"] = {
        "before": session_plausibility(before, sessions, config["session"]["camera"], plausibility_frames),
        "after": session_plausibility(written["pose"], sessions, config["session"]["camera"], plausibility_frames)}
    report["total_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out / "report.json", report)
    plot_report(report, out / "report.png")
    return report


def session_plausibility(model: str | Path, sessions: list, camera: str | None, frames: int) -> dict:
    """The tracker with `model` over each session's frames in order: the share of frames with a hand and the
    mean plausibility (how well the observed depth supports the joints) where it found one."""
    from handtrack.inference.datasets.session import SessionDataset
    from handtrack.inference.tracker import HandTracker, TrackerOptions

    from .sessions import cameras_of

    found, scores, total = 0, [], 0
    for path in sessions:
        for cam in ([camera] if camera else cameras_of(path)):
            tracker = HandTracker(TrackerOptions(model=str(model)))
            with SessionDataset(path, camera=cam) as data:
                for i in range(min(len(data), frames)):
                    result = tracker.process(data[i])
                    total += 1
                    if result.present and result.joints_mm is not None:
                        found += 1
                        scores.append(result.plausibility)
    return {"frames": total, "found_share": found / max(total, 1),
            "plausibility": float(np.mean(scores)) if scores else None}


def plot_report(report: dict, path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    hist = report["history"]
    fig, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    steps = [r["step"] for r in hist]
    for key in sorted({k for r in hist for k in r if k.startswith("l_")}):
        axes[0].plot(steps, [r.get(key, np.nan) for r in hist], label=key)
    axes[0].set_yscale("symlog", linthresh=1e-2)
    axes[0].set_title("losses")
    axes[0].set_xlabel("step")
    axes[0].legend(fontsize=7)
    pl = report["pseudo_labels"]
    if pl:
        axes[1].plot([p["step"] for p in pl], [p["kept_share"] for p in pl], "o-")
    axes[1].set_ylim(0, 1)
    axes[1].set_title("kept pseudo-label share")
    axes[1].set_xlabel("step")
    before, after = report["plausibility"]["before"], report["plausibility"]["after"]
    names = ["plausibility", "found share"]
    b = [before["plausibility"] or 0, before["found_share"]]
    a = [after["plausibility"] or 0, after["found_share"]]
    xs = np.arange(2)
    axes[2].bar(xs - 0.2, b, 0.4, label="before")
    axes[2].bar(xs + 0.2, a, 0.4, label="after")
    axes[2].set_xticks(xs, names)
    axes[2].set_ylim(0, 1.05)
    axes[2].set_title("on the sessions")
    axes[2].legend(loc="lower center")
    fig.suptitle(f"handtrack finetune: {'+'.join(report['methods'])}, {report['steps']} steps")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)
