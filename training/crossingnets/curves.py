"""Loss and validation curves of a run as one PNG: a panel per stage, validation error on its own axis."""
from __future__ import annotations

from pathlib import Path

SKIP = ("stage", "step", "time", "val_mm", "vae_floor_mm")


def plot_history(history: list[dict], path: Path) -> None:
    if not history:
        return
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    stages = list(dict.fromkeys(row["stage"] for row in history))
    fig, axes = plt.subplots(1, len(stages), figsize=(4.2 * len(stages), 3.4), squeeze=False)
    for ax, stage in zip(axes[0], stages):
        rows = [r for r in history if r["stage"] == stage]
        steps = [r["step"] for r in rows]
        for key in dict.fromkeys(k for r in rows for k in r if k not in SKIP):
            ax.plot(steps, [r.get(key, float("nan")) for r in rows], label=key, lw=1)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.legend(fontsize=7, loc="upper left")
        val = [(r["step"], r["val_mm"]) for r in rows if "val_mm" in r]
        if val:
            ax2 = ax.twinx()
            ax2.plot(*zip(*val), "k.-", label="val error (mm)")
            ax2.set_ylabel("validation mean joint error (mm)")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
