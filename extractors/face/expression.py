"""Facial-expression probabilities from the face's appearance: a small CNN trained on FER2013.

MediaPipe's blendshapes describe the face's geometry, and on negative faces they
mislead: on the crying first seconds of ``examples/pexels-crying-to-laughing.mp4``
they score ``mouthSmile`` 0.6-0.8 (brows furrowed, eyes shut). This module adds
what a face-expression classifier sees in the pixels: the face the landmarker
found is cut out as FER2013 frames its photos (:func:`face_crop`), turned to
48x48 grayscale, and scored by :class:`ExpressionNet` over FER2013's seven
classes; the seven probabilities are features beside the blendshapes.

The weights (``fer2013_expression.safetensors``, with ``fer2013_expression.json``
saying their width, classes and dev accuracy) come from
``scripts/train_face_expression.py``, trained on FER2013's train split only, so
anything using them inherits FER2013's terms (research use).
"""

from __future__ import annotations

import hashlib
import json
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

CLASSES = ("angry", "disgust", "fear", "happy", "neutral", "sad", "surprise")
"""FER2013's expressions, in the order of its class folders and of the network's outputs."""
FEATURE_NAMES = tuple(f"expr_{name}" for name in CLASSES)
SIDE = 48
CROP_SCALE = 1.09
"""FER2013's framing: the photo's side is this many times the longer side of the landmarks' box (median over
295 dev photos found by the landmarker; quartiles 1.03-1.17)..."""
CROP_RAISE = 0.04
"""...and the photo's centre sits this share of that side above the box centre (quartiles 0.01-0.06)."""
WEIGHTS = Path(__file__).with_name("fer2013_expression.safetensors")
BATCH = 16
"""Crops per forward pass. On a 10-minute clip's 7,648 faces the face stage alone peaked at 667 MB with 256, 567 MB
with 64 and 501 MB with 16, in 73, 74 and 67 s: larger batches buy no speed on a CPU."""
_LOCK = threading.Lock()


def face_crop(image: np.ndarray, box: np.ndarray) -> np.ndarray:
    """The face in RGB ``image`` framed as a FER2013 photo: uint8 grayscale, ``SIDE`` x ``SIDE``.

    ``box`` is the landmarks' ``x0, y0, x1, y1`` in [0, 1] image coordinates;
    outside the image the border pixels are repeated.
    """
    import cv2

    height, width = image.shape[:2]
    x0, y0, x1, y1 = box[0] * width, box[1] * height, box[2] * width, box[3] * height
    side = CROP_SCALE * max(x1 - x0, y1 - y0, 1.0)
    scale = SIDE / side
    centre_x, centre_y = (x0 + x1) / 2, (y0 + y1) / 2 - CROP_RAISE * side
    warp = np.array([[scale, 0, SIDE / 2 - scale * centre_x], [0, scale, SIDE / 2 - scale * centre_y]])
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
    interpolation = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(gray, warp, (SIDE, SIDE), flags=interpolation, borderMode=cv2.BORDER_REPLICATE)


def standardise(pixels: Any) -> Any:
    """Each crop to zero mean and unit spread (torch ``[n, 1, SIDE, SIDE]``, values in [0, 1]): what the
    network was trained on, so lighting and contrast do not decide the expression."""
    return (pixels - pixels.mean((2, 3), keepdim=True)) / (pixels.std((2, 3), keepdim=True) + 1e-3)


def expression_net(width: int) -> Any:
    """Four blocks of two 3x3 convolutions (``width`` channels, doubling), global pooling, seven logits."""
    from torch import nn

    def block(inputs: int, outputs: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(inputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
            nn.Conv2d(outputs, outputs, 3, padding=1, bias=False), nn.BatchNorm2d(outputs), nn.ReLU(inplace=True),
            nn.MaxPool2d(2))

    widths = [1, width, 2 * width, 4 * width, 8 * width]
    return nn.Sequential(*(block(a, b) for a, b in zip(widths, widths[1:])), nn.AdaptiveAvgPool2d(1),
                         nn.Flatten(), nn.Dropout(0.3), nn.Linear(widths[-1], len(CLASSES)))


def model_info(weights: Path = WEIGHTS) -> dict[str, Any]:
    """The JSON beside the weights: width, classes, training data and dev accuracy."""
    return json.loads(weights.with_suffix(".json").read_text(encoding="utf-8"))


@lru_cache(maxsize=2)
def weights_digest(weights: Path = WEIGHTS) -> str:
    """The first 16 hex digits of the weights' SHA-256: retrained weights key new cache entries."""
    return hashlib.sha256(weights.read_bytes()).hexdigest()[:16]


@lru_cache(maxsize=2)
def _loaded(weights: Path) -> Any:
    from safetensors.torch import load_file

    info = model_info(weights)
    if tuple(info["classes"]) != CLASSES:
        raise RuntimeError(f"{weights}: classes {info['classes']} are not FER2013's {CLASSES}")
    net = expression_net(int(info["width"]))
    net.load_state_dict(load_file(str(weights)))
    return net.eval()


def expression_probabilities(crops: np.ndarray, weights: Path = WEIGHTS) -> np.ndarray:
    """float32 ``[n, 7]``: each crop's probabilities over :data:`CLASSES` (``crops``: uint8 ``[n, SIDE, SIDE]``)."""
    import torch

    if not len(crops):
        return np.zeros((0, len(CLASSES)), np.float32)
    parts = []
    with _LOCK, torch.inference_mode():  # one load, and one network shared by the face threads
        net = _loaded(weights)
        for start in range(0, len(crops), BATCH):  # in batches: a long clip's activations would not fit
            pixels = torch.from_numpy(np.ascontiguousarray(crops[start:start + BATCH])).float().div_(255)
            parts.append(torch.softmax(net(standardise(pixels.unsqueeze(1))), dim=1).numpy())
    return np.concatenate(parts).astype(np.float32)
