"""FACS-style action units from MediaPipe blendshapes, and head pose from the face transform.

MediaPipe's FaceLandmarker scores the 52 ARKit-style blendshapes in ``[0, 1]``
(``*Left``/``*Right`` are the subject's sides). They are not FACS, but most
have a close FACS counterpart, so an action unit's intensity here is the mean
of the blendshapes in its row of :data:`AU_TABLE`, in ``[0, 1]`` (not FACS
A-E intensity levels). The table follows the usual ARKit-to-FACS correspondence;
AU25 takes the largest of its blendshapes instead of their mean, since any one
of them parts the lips:

======  ======================  ===============================================
AU      name                    mean of
======  ======================  ===============================================
AU1     inner_brow_raiser       browInnerUp
AU2     outer_brow_raiser       browOuterUpLeft, browOuterUpRight
AU4     brow_lowerer            browDownLeft, browDownRight
AU5     upper_lid_raiser        eyeWideLeft, eyeWideRight
AU6     cheek_raiser            cheekSquintLeft, cheekSquintRight
AU7     lid_tightener           eyeSquintLeft, eyeSquintRight
AU9     nose_wrinkler           noseSneerLeft, noseSneerRight
AU10    upper_lip_raiser        mouthUpperUpLeft, mouthUpperUpRight
AU12    lip_corner_puller       mouthSmileLeft, mouthSmileRight
AU14    dimpler                 mouthDimpleLeft, mouthDimpleRight
AU15    lip_corner_depressor    mouthFrownLeft, mouthFrownRight
AU16    lower_lip_depressor     mouthLowerDownLeft, mouthLowerDownRight
AU17    chin_raiser             mouthShrugLower
AU18    lip_pucker              mouthPucker
AU20    lip_stretcher           mouthStretchLeft, mouthStretchRight
AU22    lip_funneler            mouthFunnel
AU23    lip_tightener           mouthPressLeft, mouthPressRight
AU25    lips_part               max of jawOpen, mouthLowerDown*, mouthUpperUp*
AU26    jaw_drop                jawOpen
AU28    lip_suck                mouthRollLower, mouthRollUpper
AU45    blink                   eyeBlinkLeft, eyeBlinkRight
======  ======================  ===============================================

Approximations to know about: ARKit has no separate lip tightener and lip
pressor, so AU23 stands for both (AU24 is not reported); AU25 (lips apart)
has no blendshape of its own and is read from the jaw opening and the lips
pulled apart; AU26 and AU27 (jaw drop, mouth stretch) are one blendshape,
reported as AU26. MediaPipe's blendshape model leaves cheekSquint*,
noseSneer* and cheekPuff at about 0 (on both example clips, laughing
included), so AU6 and AU9 read about 0: a limit of the model, reported as it
is rather than borrowed from other units (google-ai-edge/mediapipe issues
#4436 and #4450 report the same).

Head pose: MediaPipe's facial transformation matrix maps the canonical face
model (centimetres) into camera space (x right, y up, z towards the viewer; the
camera looks down -z). Its rotation is read as ``R = Rz(roll) Ry(yaw) Rx(pitch)``
in degrees and its translation in centimetres.
"""

from __future__ import annotations

import numpy as np

BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft", "browOuterUpRight",
    "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft", "eyeBlinkRight",
    "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight", "eyeLookOutLeft",
    "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft", "eyeSquintRight",
    "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen", "jawRight", "mouthClose",
    "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft", "mouthFrownRight", "mouthFunnel",
    "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight", "mouthPressLeft", "mouthPressRight",
    "mouthPucker", "mouthRight", "mouthRollLower", "mouthRollUpper", "mouthShrugLower",
    "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight", "mouthStretchLeft", "mouthStretchRight",
    "mouthUpperUpLeft", "mouthUpperUpRight", "noseSneerLeft", "noseSneerRight",
)
"""The 52 blendshapes in the order MediaPipe's FaceLandmarker reports them."""

AU_TABLE: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("AU1", "inner_brow_raiser", ("browInnerUp",)),
    ("AU2", "outer_brow_raiser", ("browOuterUpLeft", "browOuterUpRight")),
    ("AU4", "brow_lowerer", ("browDownLeft", "browDownRight")),
    ("AU5", "upper_lid_raiser", ("eyeWideLeft", "eyeWideRight")),
    ("AU6", "cheek_raiser", ("cheekSquintLeft", "cheekSquintRight")),
    ("AU7", "lid_tightener", ("eyeSquintLeft", "eyeSquintRight")),
    ("AU9", "nose_wrinkler", ("noseSneerLeft", "noseSneerRight")),
    ("AU10", "upper_lip_raiser", ("mouthUpperUpLeft", "mouthUpperUpRight")),
    ("AU12", "lip_corner_puller", ("mouthSmileLeft", "mouthSmileRight")),
    ("AU14", "dimpler", ("mouthDimpleLeft", "mouthDimpleRight")),
    ("AU15", "lip_corner_depressor", ("mouthFrownLeft", "mouthFrownRight")),
    ("AU16", "lower_lip_depressor", ("mouthLowerDownLeft", "mouthLowerDownRight")),
    ("AU17", "chin_raiser", ("mouthShrugLower",)),
    ("AU18", "lip_pucker", ("mouthPucker",)),
    ("AU20", "lip_stretcher", ("mouthStretchLeft", "mouthStretchRight")),
    ("AU22", "lip_funneler", ("mouthFunnel",)),
    ("AU23", "lip_tightener", ("mouthPressLeft", "mouthPressRight")),
    ("AU25", "lips_part", ("jawOpen", "mouthLowerDownLeft", "mouthLowerDownRight",
                           "mouthUpperUpLeft", "mouthUpperUpRight")),
    ("AU26", "jaw_drop", ("jawOpen",)),
    ("AU28", "lip_suck", ("mouthRollLower", "mouthRollUpper")),
    ("AU45", "blink", ("eyeBlinkLeft", "eyeBlinkRight")),
)
"""Each action unit: FACS code, FACS name, the blendshapes whose mean (max for ``MAX_OF``) it is."""

MAX_OF: frozenset[str] = frozenset({"AU25"})

AU_NAMES: tuple[str, ...] = tuple(f"{code}_{name}" for code, name, _ in AU_TABLE)
POSE_NAMES: tuple[str, ...] = ("pose_pitch_deg", "pose_yaw_deg", "pose_roll_deg", "pose_tx", "pose_ty", "pose_tz")
"""Head rotation in degrees and translation in centimetres (camera space)."""


_INDEX = {name: i for i, name in enumerate(BLENDSHAPE_NAMES)}
_SOURCES = tuple(np.array([_INDEX[s] for s in sources]) for _, _, sources in AU_TABLE)


def action_units(blendshapes: np.ndarray) -> np.ndarray:
    """``[T, 52]`` blendshape scores (MediaPipe order) to ``[T, len(AU_TABLE)]`` intensities in [0, 1]."""
    blendshapes = np.asarray(blendshapes, dtype=np.float32)
    if blendshapes.ndim != 2 or blendshapes.shape[1] != len(BLENDSHAPE_NAMES):
        raise ValueError(f"expected [T, {len(BLENDSHAPE_NAMES)}] blendshape scores, got shape {blendshapes.shape}")
    columns = [blendshapes[:, rows].max(axis=1) if code in MAX_OF else blendshapes[:, rows].mean(axis=1)
               for (code, _, _), rows in zip(AU_TABLE, _SOURCES)]
    return np.stack(columns, axis=1)


def head_pose(transform: np.ndarray) -> np.ndarray:
    """Pitch, yaw, roll (degrees) and tx, ty, tz (cm) from a ``4x4`` facial transformation matrix.

    Any uniform scale in the matrix is divided out of the rotation first.
    Near yaw = ±90° (gimbal lock) roll is reported as 0 and pitch takes the whole turn.
    """
    transform = np.asarray(transform, dtype=np.float64)
    if transform.shape != (4, 4):
        raise ValueError(f"expected a 4x4 transformation matrix, got shape {transform.shape}")
    rotation = transform[:3, :3] / np.linalg.norm(transform[:3, :3], axis=0).mean()
    sin_yaw = -rotation[2, 0]
    yaw = np.arcsin(np.clip(sin_yaw, -1.0, 1.0))
    if abs(sin_yaw) < 1.0 - 1e-6:
        pitch = np.arctan2(rotation[2, 1], rotation[2, 2])
        roll = np.arctan2(rotation[1, 0], rotation[0, 0])
    else:
        pitch = np.arctan2(-rotation[1, 2], rotation[1, 1])
        roll = 0.0
    angles = np.degrees([pitch, yaw, roll])
    return np.concatenate([angles, transform[:3, 3]]).astype(np.float32)
