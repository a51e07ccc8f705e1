"""Plots of training: a run's loss and validation curves (a panel per stage, validation error on its own axis),
and the target error of a labelled-percentage experiment."""
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


ZERO_PERCENT_AT = 0.3  # where 0 % (no target labels) sits on the log axis


def plot_label_sweep(results: dict, methods: tuple[str, ...], path: Path, title: str) -> None:
    """A labelled-percentage experiment's table as one PNG: target error against the percentage of labelled
    target crops (log axis), a line per method, the last (the method under test) solid. `results` is keyed
    "method@percent", each row holding target_mean_error_mm."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    zero_drawn = False
    for i, method in enumerate(methods):
        points = sorted((float(key.partition("@")[2]), row["target_mean_error_mm"]) for key, row in results.items()
                        if key.partition("@")[0] == method)
        if points:
            style = "o-" if i == len(methods) - 1 else "s^D"[i % 3] + "--"
            ax.plot([p if p > 0 else ZERO_PERCENT_AT for p, _ in points], [e for _, e in points], style,
                    label=method.replace("_", " "))
            zero_drawn |= points[0][0] == 0
    ax.set_xscale("log")
    ax.set_xlabel("labelled target crops, %" + (f" (0 drawn at {ZERO_PERCENT_AT})" if zero_drawn else ""))
    ax.set_ylabel("mean joint error on held-out target crops (mm)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
