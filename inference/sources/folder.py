"""Dataset folders as a source: the readers of inference/datasets/ replayed frame by frame, in order, none dropped.

The layout is recognised from what the folder holds:
  NYU    <root>/{train,test}/joint_data.mat, or a split folder itself (needs scipy: the `train` extra)
  ICVL   <root>/Training/ or <root>/Testing/ (label files beside Depth/)
  MSRA   joint.txt files under <root> (P<n>/<gesture>/joint.txt)
  NYU PNGs  loose NYU frames (`*depth_*.png`, depth packed in G and B) without labels, e.g. ../shared/data/nyu
  PNG    a folder of uint16 depth PNGs (our recordings, the SR305 captures); pass `intrinsics` and `depth_unit_mm`
         unless they are the SR305 defaults of datasets.realsense_png.
Labelled datasets keep their joints (in their own joint set) on every frame. The sensor time of frame i is i / fps,
a nominal clock: these files carry no timestamps.
"""
from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..camera import Intrinsics
from ..datasets.icvl import ICVLDataset
from ..datasets.msra import MSRADataset
from ..datasets.nyu import NYUDataset, NYUPngFolder
from ..datasets.realsense_png import DepthPngFolder
from ..errors import HandtrackError
from ..frame import META_SENSOR_FRAME, META_SENSOR_TIME, DepthFrame, StreamInfo
from .base import DeviceMissing, EndOfStream, SkipFrame, resolve_intrinsics
from .capture import Backend


class FrameSequence(Protocol):
    def __len__(self) -> int: ...
    def __getitem__(self, i: int) -> DepthFrame: ...


def open_dataset(path: str | Path, split: str | None = None, camera: int = 1, kind: str = "depth",
                 intrinsics: Intrinsics | str | None = None, depth_unit_mm: float | None = None,
                 pattern: str = "*.png") -> tuple[str, FrameSequence]:
    """Recognise the dataset layout of a folder -> (layout name, its reader)."""
    root = Path(path)
    if not root.is_dir():
        raise DeviceMissing(f"no dataset folder at {root}")
    if any((root / s / "joint_data.mat").is_file() for s in ("train", "test")):
        return "nyu", NYUDataset(root, split or "test", camera, kind)
    if (root / "joint_data.mat").is_file():
        return "nyu", NYUDataset(root.parent, split or root.name, camera, kind)
    if (root / "Training").is_dir() or (root / "Testing").is_dir():
        return "icvl", ICVLDataset.split(root, split or "test")
    if next(root.glob("joint.txt"), None) or next(root.glob("*/joint.txt"), None) \
            or next(root.glob("*/*/joint.txt"), None):
        return "msra", MSRADataset(root)
    first_nyu = next(root.glob("*depth_*.png"), None)
    if first_nyu is not None and NYUPngFolder.looks_like(first_nyu):
        return "nyu-png", NYUPngFolder(root)
    if next(root.glob(pattern), None):
        options = {}
        if intrinsics is not None:
            options["intrinsics"] = resolve_intrinsics(intrinsics)
        if depth_unit_mm is not None:
            options["depth_unit_mm"] = float(depth_unit_mm)
        return "png", DepthPngFolder(root, pattern=pattern, **options)
    raise HandtrackError(f"{root} is not a dataset folder this source knows: expected NYU (<split>/joint_data.mat "
                         f"or packed PNGs), ICVL (Training/ or Testing/), MSRA (joint.txt) or 16-bit depth PNGs "
                         f"({pattern})")


# What reading one file of a folder can raise: our readers' one-line errors for a file that is not what it should
# be (wrong size, 8-bit, not an image), and what the decoders raise for a truncated or vanished one.
SKIPPABLE = (HandtrackError, OSError, ValueError, EOFError)


class FolderBackend(Backend):
    live = False
    reconnectable = False

    def __init__(self, path: str | Path, fps: float = 30.0, start: int = 0, stop: int | None = None,
                 split: str | None = None, camera: int = 1, kind: str = "depth",
                 intrinsics: Intrinsics | str | None = None, depth_unit_mm: float | None = None,
                 pattern: str = "*.png"):
        self.path = Path(path)
        self.name = f"folder:{self.path}"
        self.fps = float(fps)
        self.start, self.stop = start, stop
        self.options = dict(split=split, camera=camera, kind=kind, intrinsics=intrinsics,
                            depth_unit_mm=depth_unit_mm, pattern=pattern)
        self.layout: str | None = None
        self.dataset: FrameSequence | None = None
        self._i = start

    def open(self) -> StreamInfo:
        self.layout, self.dataset = open_dataset(self.path, **self.options)
        self._i = self.start
        if not 0 <= self.start < len(self.dataset):
            raise HandtrackError(f"{self.path} has {len(self.dataset)} frames; cannot start at frame {self.start}")
        first, why = None, ""
        for i in range(self.start, self._end()):  # the stream's camera comes from the first readable frame
            try:
                first = self.dataset[i]
                break
            except SKIPPABLE as exc:
                why = str(exc)
        if first is None:
            raise HandtrackError(f"{self.path}: no readable frame among its {len(self.dataset)} ({why})")
        return StreamInfo(first.intrinsics, self.fps, f"{self.layout} dataset {self.path} ({len(self.dataset)} frames)")

    def _end(self) -> int:
        return len(self.dataset) if self.stop is None else min(self.stop, len(self.dataset))

    def grab(self, timeout: float) -> DepthFrame:
        if self._i >= self._end():
            raise EndOfStream(self.name)
        i = self._i
        self._i += 1
        try:
            frame = self.dataset[i]
        except SKIPPABLE as exc:  # one bad file must not end a stream of good ones
            raise SkipFrame("unreadable file", str(exc)) from exc
        frame.meta[META_SENSOR_TIME] = (i - self.start) / self.fps
        frame.meta[META_SENSOR_FRAME] = i
        return frame

    def close(self) -> None:
        pass
