"""Loss and validation curves of a run as one PNG: a panel per stage, validation error on its own axis."""
from __future__ import annotations

from pathlib import Path

SKIP = ("stage", "step", "time")  # and every *_mm key: errors go on their own axis


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
        for key in dict.fromkeys(k for r in rows for k in r if k not in SKIP and not k.endswith("_mm")):
            ax.plot(steps, [r.get(key, float("nan")) for r in rows], label=key, lw=1)
        ax.set_yscale("symlog", linthresh=1e-2)
        ax.set_title(stage)
        ax.set_xlabel("step")
        ax.legend(fontsize=7, loc="upper left")
        errors = [k for k in dict.fromkeys(k for r in rows for k in r) if k.endswith("_mm")]
        if errors:
            ax2 = ax.twinx()
            for key, style in zip(errors, ("k.-", "r.-", "b.-", "g.-")):
                val = [(r["step"], r[key]) for r in rows if key in r]
                ax2.plot(*zip(*val), style, label=key, ms=3)
            ax2.set_ylabel("mean joint error (mm)")
            ax2.legend(fontsize=7, loc="upper right")
    fig.tight_layout()
    tmp = path.with_suffix(".tmp.png")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    tmp.replace(path)
