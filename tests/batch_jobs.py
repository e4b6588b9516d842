"""Real batch jobs for the batch tests: probe and decode each clip with core.media.

They live in their own module so spawned workers, Dask workers and a killed
subprocess can import them by name.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import numpy as np

from sgdtam_pipe.core.media import MediaError, decode_audio, probe
from sgdtam_pipe.pipeline.errors import StageError


def media_job(path: str) -> dict:
    """Duration, streams and audio loudness of a clip, measured by probing and decoding it."""
    try:
        info = probe(path)
        track = decode_audio(path)
    except MediaError as exc:
        raise StageError("media", exc.reason) from exc
    rms = float(np.sqrt(np.mean(track.samples.astype(np.float64) ** 2))) if track and len(track.samples) else None
    return {"duration": round(info.duration, 4), "has_audio": info.has_audio, "has_video": info.has_video,
            "audio_seconds": round(track.duration, 4) if track else 0.0, "audio_rms": rms,
            "width": info.width, "height": info.height}


def slow_media_job(path: str) -> dict:
    """:func:`media_job` slowed down, so a test can kill a run midway."""
    time.sleep(float(os.environ.get("BATCH_TEST_DELAY_S", "0.4")))
    return media_job(path)


def crashing_media_job(path: str) -> dict:
    """:func:`slow_media_job`, except that a clip named ``*crash*`` kills its worker process outright.

    The slow clips are still in flight when the crash breaks the pool.
    """
    if "crash" in Path(path).name:
        os.kill(os.getpid(), signal.SIGKILL)
    return slow_media_job(path)


def stuck_media_job(path: str) -> dict:
    """:func:`media_job`, except that a clip named ``*stuck*`` blocks forever in C holding the GIL.

    ``PyDLL`` keeps the GIL through the call, as PyAV did in the decoder deadlock of issue 13:
    no thread of the worker can run, so only ending its process helps.
    """
    if "stuck" in Path(path).name:
        import ctypes

        ctypes.PyDLL(None).sleep(3600)
    return media_job(path)
