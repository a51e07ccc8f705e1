"""Hand-pose metrics (numpy), their summary (a dict for JSON reports, a table to print) and PNG plots, and a check
of labels against their depth.

The metrics are the field's standard ones, computed over every frame and joint given:
- joint error: euclidean distance between predicted and true joint, mm;
- mean joint error: the mean over all frames and joints; per-joint mean error: the mean over frames;
- max-error curve: the fraction of frames whose WORST joint is within t mm, t = 0, 1, ..., 80
  (Taylor et al. 2012; the curve every NYU/ICVL/MSRA paper plots).
Matplotlib is only imported to draw, so the metrics run wherever numpy does.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import cv2
import numpy as np

from handtrack.inference.camera import project
from handtrack.inference.draw import colorize_depth
from handtrack.inference.errors import HandtrackError, require
from handtrack.inference.frame import DepthFrame
from handtrack.inference.plausibility import surface_residual

THRESHOLDS_MM = np.arange(0, 81, dtype=np.float64)


def joint_errors(pred_xyz: np.ndarray, true_xyz: np.ndarray) -> np.ndarray:
    """(N, J, 3) and (N, J, 3) mm -> (N, J) euclidean errors in mm."""
    pred = np.asarray(pred_xyz, dtype=np.float64)
    true = np.asarray(true_xyz, dtype=np.float64)
    if pred.shape != true.shape or pred.ndim != 3 or pred.shape[-1] != 3:
        raise HandtrackError(f"predictions {pred.shape} and labels {true.shape} must both be (frames, joints, 3)")
    return np.linalg.norm(pred - true, axis=-1)


def mean_error(errors: np.ndarray) -> float:
    return float(np.mean(errors))


def per_joint_error(errors: np.ndarray) -> np.ndarray:
    """(N, J) -> (J,) mean error of each joint over the frames."""
    return np.mean(errors, axis=0)


def max_error_curve(errors: np.ndarray, thresholds_mm: np.ndarray = THRESHOLDS_MM) -> np.ndarray:
    """(N, J) -> fraction of frames whose largest joint error is <= t, for each t in thresholds_mm."""
    worst = np.max(errors, axis=1)
    return (worst[:, None] <= np.asarray(thresholds_mm)[None, :]).mean(axis=0)


@dataclass(frozen=True)
class EvalSummary:
    frames: int
    joint_names: tuple[str, ...]
    mean_error_mm: float
    per_joint_error_mm: np.ndarray  # (J,)
    thresholds_mm: np.ndarray  # (T,)
    fraction: np.ndarray  # (T,) fraction of frames with max joint error <= threshold

    def fraction_within(self, threshold_mm: float) -> float:
        i = np.flatnonzero(self.thresholds_mm == threshold_mm)
        if not i.size:
            raise ValueError(f"{threshold_mm} mm is not one of the curve's thresholds")
        return float(self.fraction[i[0]])

    def to_dict(self) -> dict:
        return {
            "frames": self.frames,
            "joints": len(self.joint_names),
            "mean_error_mm": self.mean_error_mm,
            "per_joint_error_mm": dict(zip(self.joint_names, map(float, self.per_joint_error_mm))),
            "max_error_curve": {"thresholds_mm": self.thresholds_mm.tolist(), "fraction": self.fraction.tolist()},
        }


def evaluate(pred_xyz: np.ndarray, true_xyz: np.ndarray, joint_names: Sequence[str] | None = None,
             thresholds_mm: np.ndarray = THRESHOLDS_MM) -> EvalSummary:
    errors = joint_errors(pred_xyz, true_xyz)
    names = tuple(joint_names) if joint_names is not None else tuple(f"joint_{j}" for j in range(errors.shape[1]))
    if len(names) != errors.shape[1]:
        raise HandtrackError(f"{len(names)} joint names for {errors.shape[1]} joints")
    return EvalSummary(errors.shape[0], names, mean_error(errors), per_joint_error(errors),
                       np.asarray(thresholds_mm, dtype=np.float64), max_error_curve(errors, thresholds_mm))


def print_summary(summary: EvalSummary, title: str) -> None:
    """The summary as a table on stdout: mean error, the 20 and 40 mm points of the max-error curve, per joint."""
    print(f"{title}  ({summary.frames} frames, {len(summary.joint_names)} joints)")
    print(f"  mean joint error     {summary.mean_error_mm:6.2f} mm")
    for t in (20, 40):
        print(f"  max error <= {t} mm   {100 * summary.fraction_within(t):6.1f} %")
    print(f"  {'joint':<16}{'error (mm)':>10}")
    for name, err in zip(summary.joint_names, summary.per_joint_error_mm):
        print(f"  {name:<16}{err:10.2f}")


# --- plots ------------------------------------------------------------------------------------------------

def _agg_figure(width_in: float, height_in: float):
    """A matplotlib Figure drawn by Agg without touching pyplot's global state (safe in threads and tests)."""
    require("matplotlib", extra="viz", feature="plotting")
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=100)
    FigureCanvasAgg(fig)
    return fig


def plot_summaries(summaries: Mapping[str, EvalSummary], path: str | Path, title: str = "") -> None:
    """One PNG: the max-error curves (left) and per-joint mean errors as grouped bars (right)."""
    if not summaries:
        raise ValueError("nothing to plot")
    fig = _agg_figure(13, 4.8)
    curve_ax, bar_ax = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1, 1.6]})
    names = next(iter(summaries.values())).joint_names
    width = 0.8 / len(summaries)
    for k, (label, s) in enumerate(summaries.items()):
        curve_ax.plot(s.thresholds_mm, 100 * s.fraction, label=f"{label} ({s.mean_error_mm:.2f} mm)")
        x = np.arange(len(s.joint_names)) + (k - (len(summaries) - 1) / 2) * width
        bar_ax.bar(x, s.per_joint_error_mm, width, label=label)
    curve_ax.set(xlabel="max joint error threshold (mm)", ylabel="frames within threshold (%)",
                 xlim=(0, float(s.thresholds_mm[-1])), ylim=(0, 100))
    curve_ax.grid(alpha=0.3)
    curve_ax.legend(loc="lower right")
    bar_ax.set_xticks(np.arange(len(names)), names, rotation=60, ha="right", fontsize=8)
    bar_ax.set(ylabel="mean error (mm)")
    bar_ax.grid(axis="y", alpha=0.3)
    if len(summaries) > 1:
        bar_ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(str(path))


# --- labels against their own depth -----------------------------------------------------------------------

def reprojection_check(frame: DepthFrame, reference_uv: np.ndarray | None = None,
                       reference_joints: Sequence[int] | None = None, window: int = 5) -> dict:
    """How a labelled frame's 3D joints sit on its depth image.

    surface offset: joint z minus the nearest observed depth in a window x window neighbourhood of its pixel
    (plausibility.surface_residual); positive = behind the visible surface, as joints inside fingers are.
    reference_uv: (K, 2+) pixel labels of the joints `reference_joints` (e.g. the 14 NYU evaluation joints of
    the uvd text file): reports the largest pixel distance between them and the projected 3D joints, and the
    surface offset of that subset alone.
    """
    if frame.joints_xyz is None:
        raise HandtrackError(f"frame {frame.frame_id} has no joints to check")
    uv = project(frame.joints_xyz, frame.intrinsics)
    offsets = surface_residual(frame.joints_xyz, frame.depth_mm, frame.intrinsics, window)
    report = {
        "frame": frame.frame_id,
        "joints": len(uv),
        "window_px": window,
        "surface_offset_mm": _stats(offsets),
        "surface_offset_per_joint_mm": [float(o) if np.isfinite(o) else None for o in offsets],
        "joints_uv": uv.tolist(),
    }
    if reference_uv is not None:
        idx = list(reference_joints) if reference_joints is not None else list(range(len(uv)))
        diff = np.linalg.norm(uv[idx] - np.asarray(reference_uv, dtype=np.float64)[:, :2], axis=-1)
        report["reference_joints"] = idx
        report["reprojection_max_px"] = float(diff.max())
        report["reference_surface_offset_mm"] = _stats(offsets[idx])
    return report


def _stats(values: np.ndarray) -> dict:
    """mean / median / min / max of the finite values, and how many there were (None when there are none)."""
    v = np.asarray(values, dtype=np.float64)
    v = v[np.isfinite(v)]
    if not v.size:
        return {"count": 0, "mean": None, "median": None, "min": None, "max": None}
    return {"count": int(v.size), "mean": float(v.mean()), "median": float(np.median(v)),
            "min": float(v.min()), "max": float(v.max())}


def draw_overlay(depth_mm: np.ndarray, joints_uv: np.ndarray, chains: Sequence[Sequence[int]] = (),
                 colors_bgr: Sequence[tuple[int, int, int]] = (), reference_uv: np.ndarray | None = None,
                 zoom: int = 3) -> np.ndarray:
    """A BGR picture: the depth colour-mapped over the joints' depth range, the joints drawn as dots joined
    along `chains` (one colour per chain), optional reference pixels as white crosses; the full frame on the
    left and a `zoom`x enlargement of the hand on the right (drawn at the enlarged scale, so it stays sharp)."""
    h, w = depth_mm.shape
    colour = colorize_depth(depth_mm, *_hand_depth_range(depth_mm, joints_uv))
    full = colour.copy()
    _draw_joints(full, joints_uv, chains, colors_bgr, reference_uv, scale=1.0, offset=(0, 0))
    u0, v0, u1, v1 = _box_around(joints_uv, margin=25, width=w, height=h)
    zoomed = cv2.resize(colour[v0:v1, u0:u1], None, fx=zoom, fy=zoom, interpolation=cv2.INTER_NEAREST)
    _draw_joints(zoomed, joints_uv, chains, colors_bgr, reference_uv, scale=zoom, offset=(u0, v0))
    canvas = np.zeros((max(h, zoomed.shape[0]), w + zoomed.shape[1], 3), np.uint8)
    canvas[:h, :w] = full
    canvas[:zoomed.shape[0], w:] = zoomed
    return canvas


def _hand_depth_range(depth_mm: np.ndarray, joints_uv: np.ndarray) -> tuple[float, float]:
    # Colour only the depth band around the hand, so fingers stand out from each other and the body.
    u0, v0, u1, v1 = _box_around(joints_uv, margin=5, width=depth_mm.shape[1], height=depth_mm.shape[0])
    valid = depth_mm[v0:v1, u0:u1]
    valid = valid[valid > 0]
    near = float(valid.min()) if valid.size else float(depth_mm[depth_mm > 0].min(initial=0))
    return near - 10.0, near + 150.0


def _box_around(uv: np.ndarray, margin: int, width: int, height: int) -> tuple[int, int, int, int]:
    lo = np.floor(np.nanmin(uv, axis=0)).astype(int) - margin
    hi = np.ceil(np.nanmax(uv, axis=0)).astype(int) + margin
    return max(lo[0], 0), max(lo[1], 0), min(hi[0], width), min(hi[1], height)


def _draw_joints(img: np.ndarray, uv: np.ndarray, chains, colors, reference_uv, scale: float, offset) -> None:
    def px(p) -> tuple[int, int]:
        return (int(round((p[0] - offset[0] + 0.5) * scale - 0.5)), int(round((p[1] - offset[1] + 0.5) * scale - 0.5)))

    radius = max(2, int(scale * 1.5))
    in_chain = set()
    for chain, color in zip(chains, colors):
        for a, b in zip(chain[:-1], chain[1:]):
            cv2.line(img, px(uv[a]), px(uv[b]), color, max(1, int(scale // 2)), cv2.LINE_AA)
        for j in chain:
            cv2.circle(img, px(uv[j]), radius, color, -1, cv2.LINE_AA)
        in_chain.update(chain)
    for j in set(range(len(uv))) - in_chain:
        cv2.circle(img, px(uv[j]), radius, (255, 255, 255), -1, cv2.LINE_AA)
    if reference_uv is not None:
        for p in np.asarray(reference_uv)[:, :2]:
            cv2.drawMarker(img, px(p), (255, 255, 255), cv2.MARKER_CROSS, 4 * radius, 1, cv2.LINE_AA)
