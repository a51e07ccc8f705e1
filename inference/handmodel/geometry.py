"""Reference geometry of the adult right hand the shape factors scale (millimetres, hand frame).

Dimensions follow average adult anthropometry (hand length ~185 mm wrist to middle tip, breadth ~85 mm at the
knuckles, phalanx length ratios of roughly 1 : 0.6 : 0.5 per finger, finger radii 9-7 mm, palm thickness
~28 mm, forearm 50-70 mm wide). The NYU fit (`handtrack data fit-prior`) adjusts them per frame through the
shape factors, so these only need to be a sensible starting point.
"""
from __future__ import annotations

import numpy as np

# Finger MCP joint centres (x radial, y distal, z palmar) and the rest splay of each finger (degrees about the
# palm normal, positive = towards the thumb).
MCP = {
    "index": (24.0, 88.0, 0.0),
    "middle": (4.0, 91.0, 0.0),
    "ring": (-15.0, 86.0, 0.0),
    "pinky": (-32.0, 77.0, 0.0),
}
REST_SPLAY_DEG = {"index": 6.0, "middle": 0.0, "ring": -5.0, "pinky": -12.0}
# Phalanx lengths joint to joint; the last is the distal phalanx up to the fingertip.
PHALANX = {
    "thumb": (44.0, 32.0, 28.0),  # metacarpal (CMC->MCP), proximal (MCP->IP), distal (IP->tip)
    "index": (40.0, 24.0, 21.0),
    "middle": (44.0, 28.0, 22.0),
    "ring": (41.0, 27.0, 22.0),
    "pinky": (33.0, 20.0, 20.0),
}
# Surface radius at the proximal joint of each segment and at the tip.
RADII = {
    "thumb": (13.0, 10.5, 9.5, 8.5),
    "index": (9.5, 8.5, 7.8, 7.0),
    "middle": (9.8, 8.8, 8.0, 7.2),
    "ring": (9.2, 8.3, 7.6, 6.9),
    "pinky": (8.3, 7.5, 6.9, 6.3),
}
# Thumb CMC joint and the rest direction of the thumb metacarpal: radial, distal and somewhat palmar.
THUMB_CMC = (18.0, 22.0, 8.0)
THUMB_REST_DIR = (0.62, 0.72, 0.30)
# Direction the thumb flexes towards at rest (across the palm); made orthogonal to the rest direction.
THUMB_FLEX_TOWARD = (-0.55, 0.0, 0.85)

# Palm: tapered capsules from wrist-row anchors to knuckle-row anchors, dense enough (<= 12 mm apart) that the
# grooves between them stay under ~1.5 mm deep.
PALM_RADIUS = 13.5
PALM_WRIST_ROW = ((-26.0, 12.0, 0.0), (24.0, 12.0, 0.0))  # ulnar and radial ends of the wrist row
PALM_RAYS = 7
WRIST_CAPSULE = ((-17.0, 0.0, 0.0), (17.0, 0.0, 0.0), 17.0)  # ends and radius
# Thenar eminence: the muscle pad at the base of the thumb.
THENAR = ((16.0, 18.0, 6.0), (12.0, 52.0, 5.0), 15.0, 12.0)
FOREARM_LENGTH = 260.0
FOREARM_RADII = (25.0, 36.0)  # at the wrist, at the far end


def thumb_rest_frame() -> np.ndarray:
    """Columns: the thumb's flexion axis (x), its long axis (y) and its flexion direction (z)."""
    y = np.asarray(THUMB_REST_DIR, dtype=np.float64)
    y /= np.linalg.norm(y)
    z = np.asarray(THUMB_FLEX_TOWARD, dtype=np.float64)
    z = z - y * (z @ y)
    z /= np.linalg.norm(z)
    return np.stack([np.cross(y, z), y, z], axis=1)
