"""The fine-tuning experiment's target domain: one "user" whose frames differ from training the way a real user's
do, written as a folder of SR305-style depth PNGs that `handtrack record --source FOLDER` records like a camera,
with the ground truth kept aside in `labels.npz` (the folder source never reads it; only `score_folder` does).

How the user differs from the training data (training/synth):
  camera    an SR305 (640x480, 1/8 mm PNGs) with its noise model
  hand      size 1.30, palm width 1.12, thickness 1.30, pinky 0.82: 2.7, 4, 4.3 and 2.2 standard deviations
            from the pose prior's shape Gaussian (mean size 1.05 sd 0.09, width 0.93 sd 0.05, ...)
  gestures  point and victory (far outside the prior: NYU holds almost no hands with one or two fingers out)
            and four written here that the prior never draws: hook, rock, three, thumb tucked
  clothing  a watch at the wrist and a sleeve over the forearm (the training scenes have a bare forearm)
The motion is the demo's (inference/sources/demo_scene.py): smooth blends between gestures while the palm wanders
and the hand turns; each gesture appears twice in a loop, in another order and at another place, so the first
half of the loop (the session that is fine-tuned on) and the second half (the held-out frames) hold the same
gestures in different views.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from handtrack.inference import skeleton
from handtrack.inference.camera import SR305
from handtrack.inference.datasets.realsense_png import SR305_DEPTH_UNIT_MM, save_depth_png
from handtrack.inference.errors import HandtrackError
from handtrack.inference.handmodel import kinematics
from handtrack.inference.handmodel.geometry import FOREARM_RADII
from handtrack.inference.handmodel.surface import PART_FOREARM
from handtrack.inference.sources.demo_scene import DemoScene, hand_articulation

USER_SHAPE = np.array([1.30, 1.12, 1.0, 1.08, 1.06, 1.0, 0.82, 1.30])
_CURL = (0, 75, 85, 45)
_TUCK = (30, 35, 40, 0, 50)  # the thumb laid across the palm under the curled fingers
USER_GESTURES = {
    "hook": hand_articulation((10, 10, 10, 0, 30), (0, 0, 100, 70), (0, 0, 105, 75), (0, 0, 105, 75), (0, 5, 100, 70)),
    "rock": hand_articulation(_TUCK, (8, 0, 5, 5), _CURL, _CURL, (-15, 0, 5, 5)),
    "three": hand_articulation((-10, -20, 0, 0, 0), (14, 0, 5, 5), (-6, 0, 5, 5), _CURL, _CURL),
    "tucked": hand_articulation(_TUCK, (10, 0, 5, 5), (2, 0, 5, 5), (-6, 0, 5, 5), (-14, 0, 5, 5)),
}
# Every gesture twice per loop, in another order the second time.
USER_SEQUENCE = ("open", "point", "hook", "victory", "rock", "three", "tucked",
                 "victory", "tucked", "three", "open", "hook", "rock", "point")
FPS = 30.0
LOOP_SECONDS = 20.0  # 600 frames: 300 for the session, 300 held out
LABELS = "labels.npz"


class UserScene(DemoScene):
    """The demo's moving person with the user's hand, gestures, watch and sleeve."""

    def __init__(self):
        super().__init__(intrinsics=SR305, loop_seconds=LOOP_SECONDS, gestures=USER_SEQUENCE, hold=0.4,
                         shape=USER_SHAPE, palm_mm=(-40.0, 10.0, 480.0), library=USER_GESTURES)

    def moving_capsules(self, pose: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        caps, parts, joints = super().moving_capsules(pose)
        kin = kinematics.forward(pose, self.shape)
        length = kin.length[kinematics.FOREARM_BONE]
        scale = self.shape[0] * self.shape[7]
        r_wrist, r_far = (r * scale for r in FOREARM_RADII)

        def along(y: float) -> np.ndarray:  # a point on the forearm's axis, y mm from the wrist towards the elbow
            return kin.point(kinematics.FOREARM_BONE, np.array([0.0, y, 0.0]))

        def radius(y: float) -> float:
            return r_wrist + (r_far - r_wrist) * y / length

        watch = [*along(18.0), *along(38.0), radius(18.0) + 7.0, radius(38.0) + 7.0]
        sleeve = [*along(75.0), *along(length), radius(75.0) + 16.0, radius(length) + 16.0]
        return (np.concatenate([caps, np.array([watch, sleeve])]),
                np.concatenate([parts, [PART_FOREARM, PART_FOREARM]]).astype(np.int16), joints)


def write_user_frames(out_dir: str | Path, part: str, frames: int | None = None, seed: int = 0) -> Path:
    """Render one half of the user's loop ('session': frames 0..299, 'heldout': 300..599) into `out_dir` as
    SR305 PNGs plus labels.npz (joints (N, 21, 3) mm, frame names); returns the folder."""
    from handtrack.training.synth.sensors import SENSORS, apply_sensor

    half = int(LOOP_SECONDS * FPS) // 2
    if part not in ("session", "heldout"):
        raise HandtrackError(f"part is 'session' or 'heldout', not {part!r}")
    n = min(frames or half, half)
    first = 0 if part == "session" else half
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene, sensor = UserScene(), SENSORS["sr305"]
    joints, names = np.zeros((n, skeleton.NUM_JOINTS, 3), np.float32), []
    for k in range(n):
        rng = np.random.default_rng([seed, first + k])
        depth, labels, joints[k], _ = scene.render((first + k) / FPS)
        noisy = apply_sensor(depth, SR305, sensor, rng, labels=labels)
        noisy[~np.isfinite(noisy)] = 0.0
        name = f"frame_{k:05d}"
        save_depth_png(out / f"{name}.png", noisy, SR305_DEPTH_UNIT_MM)
        names.append(name)
    np.savez(out / LABELS, joints_mm=joints, names=np.array(names))
    return out


def load_labels(folder: str | Path) -> dict[str, np.ndarray]:
    """frame name -> (21, 3) true joints (mm) of a folder written by write_user_frames."""
    path = Path(folder) / LABELS
    if not path.is_file():
        raise HandtrackError(f"no {LABELS} in {folder}: not a folder written by write_user_frames")
    with np.load(path) as z:
        return {str(n): j for n, j in zip(z["names"], z["joints_mm"])}


def score_folder(model: str | Path, folder: str | Path, frames: int | None = None) -> dict:
    """A pose model on a labelled user folder, two ways:
      tracker   the whole runtime tracker over the frames in order, as a user runs it (hand finding, tracking,
                centre refinement, smoothing): mean joint error (mm) over the frames where it reports a hand,
                and the share of frames where it does
      crop      the pose network alone on each frame's crop at the true palm centre (the training protocol):
                what the network itself learnt, without the localiser's misses
    """
    from handtrack.inference.crop import crop_and_normalise
    from handtrack.inference.datasets.realsense_png import DepthPngFolder
    from handtrack.inference.model import PoseModel
    from handtrack.inference.tracker import HandTracker, TrackerOptions
    from handtrack.models_onnx import resolve
    from handtrack.training.model_eval import predict_mm

    labels = load_labels(folder)
    data = DepthPngFolder(folder, SR305, SR305_DEPTH_UNIT_MM)
    n = min(len(data), frames or len(data))
    tracker = HandTracker(TrackerOptions(model=str(model), hand="right"))
    pose = PoseModel(resolve(model))
    tracked, crops, centres, truths = [], [], [], []
    for i in range(n):
        frame = data[i]
        truth = labels[frame.frame_id]
        result = tracker.process(frame)
        if result.present and result.joints_mm is not None:
            tracked.append(float(np.linalg.norm(result.joints_mm - truth, axis=1).mean()))
        palm = skeleton.palm_centre(truth)
        crop, _ = crop_and_normalise(frame.depth_mm, frame.intrinsics, palm, pose.info.cube_mm, pose.info.input_size)
        crops.append(crop)
        centres.append(palm)
        truths.append(truth)
    pred = predict_mm(pose, np.stack(crops), np.stack(centres))
    crop_err = np.linalg.norm(pred - np.stack(truths), axis=2).mean(1)
    return {"frames": n, "tracker_mm": float(np.mean(tracked)) if tracked else None,
            "tracker_found": len(tracked) / max(n, 1), "crop_mm": float(crop_err.mean()),
            "crop_median_mm": float(np.median(crop_err))}
