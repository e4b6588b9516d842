"""openSMILE low-level descriptors, each frame with openSMILE's own start and length.

``feature_set="eGeMAPSv02"`` gives its 25 LLDs, ``"ComParE_2016"`` its 65;
both at a 10 ms hop. Frame ``i`` covers ``[time, time + lengthSec)`` as
openSMILE reports it in the sink's frame metadata (20 ms for eGeMAPSv02, 60 ms
for ComParE_2016), and frames stop where openSMILE stops (the last complete
frame): unlike ``opensmile.Smile.process_file``, the last frame's end is not
stretched to the end of the file.

The samples reach openSMILE the way ``opensmile.Smile`` passes them
(``x * 32768`` truncated to 16-bit), written ``chunk_seconds`` at a time into
one openSMILE instance that sees the whole track as one stream: chunking bounds
our temporaries and never changes the output, so ``chunk_seconds`` stays out of
the identity. openSMILE runs in its own thread while the track is fed, into a
ring buffer of ``RING_SAMPLES`` (``opensmile_stream_input.conf.inc``) instead of
the standard input's buffer, which grows to hold the whole track. The levels
before the feature set's functionals get ring buffers too
(``opensmile_lld_buffer.conf.inc``), and the functionals, which we never read,
run over 10 s frames instead of the full input
(``opensmile_functionals_frame.conf.inc``) so they consume those rings as the
track goes. Memory stays flat on an hour of audio (it grew by about 1 GB), and
the low-level descriptors are the same (tested against ``process_file``).

openSMILE is under audEERING's research licence (non-commercial use); the
``librosa`` backend is the licence-clean alternative.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.extractors.acoustic.frames import AcousticConfig, AcousticExtractor, Frames, report_progress
from sgdtam_pipe.extractors.base import require

FEATURE_SETS = ("eGeMAPSv02", "ComParE_2016")
PROGRESS_FRAMES = 1000
STREAM_INPUT = Path(__file__).with_name("opensmile_stream_input.conf.inc")
LLD_BUFFERS = Path(__file__).with_name("opensmile_lld_buffer.conf.inc")
FUNCTIONALS_FRAME = Path(__file__).with_name("opensmile_functionals_frame.conf.inc")
RING_SAMPLES = 960_000
"""Size of openSMILE's input ring buffer (``nT`` in the config): 60 s at 16 kHz."""
FULL_WAIT_S = 0.001


@dataclass(frozen=True)
class OpenSmileConfig(AcousticConfig):
    """``feature_set``: one of ``FEATURE_SETS``."""

    feature_set: str = "eGeMAPSv02"

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.feature_set not in FEATURE_SETS:
            raise ValueError(f"unknown openSMILE feature set {self.feature_set!r}; choose one of: "
                             f"{', '.join(FEATURE_SETS)}")

    def output_config(self) -> dict[str, Any]:
        config = super().output_config()
        del config["chunk_seconds"]  # the engine sees one stream whatever the chunk size
        return config


class _Engine:
    """One initialised openSMILE instance for a feature set and sample rate, reused across runs."""

    def __init__(self, feature_set: str, sample_rate: int) -> None:
        opensmile = require("opensmile", "acoustic")
        from opensmile.core.config import config as layout
        from opensmile.core.lib import OpenSMILE

        self._layout = layout
        self.sample_rate = sample_rate
        smile = opensmile.Smile(feature_set=opensmile.FeatureSet[feature_set],
                                feature_level=opensmile.FeatureLevel.LowLevelDescriptors)
        options = smile._options()  # the options Smile itself runs with: sink, LLD level, buffer modes
        options.update(source=str(STREAM_INPUT), sampleRate=sample_rate, nBits=16,
                       bufferModeConf=str(LLD_BUFFERS), frameModeFunctionalsConf=str(FUNCTIONALS_FRAME))
        self._smile = OpenSMILE()
        self._smile.initialize(config_file=smile.config_path, options=options, loglevel=smile.loglevel)
        sink = layout.EXTERNAL_OUTPUT_COMPONENT
        self.names = tuple(self._smile.external_sink_get_element_name(sink, i)
                           for i in range(self._smile.external_sink_get_num_elements(sink)))

    def run(self, samples: np.ndarray, chunk: int, hook: Hook | None) -> Frames:
        """Feed ``samples`` in blocks of at most ``chunk`` samples (and an eighth of the ring) while
        openSMILE runs, then collect every frame.

        After a failure the instance is in an unknown state: drop it.
        """
        piece = max(1, min(chunk, RING_SAMPLES // 8))
        rows: list[np.ndarray] = []
        starts: list[float] = []
        lengths: list[float] = []
        seconds = round(len(samples) / self.sample_rate, 1)
        report_progress(hook, "opensmile", done=0.0, total=seconds, unit="s")

        def collect(data: np.ndarray, meta: Any) -> None:
            rows.append(data.copy())
            starts.append(meta.time)
            lengths.append(meta.lengthSec)
            if len(rows) % PROGRESS_FRAMES == 0:
                report_progress(hook, "opensmile", done=min(round(meta.time, 1), seconds), total=seconds, unit="s")

        source, sink = self._layout.EXTERNAL_SOURCE_COMPONENT, self._layout.EXTERNAL_OUTPUT_COMPONENT
        self._smile.external_sink_set_callback_ex(sink, collect)
        failure: list[BaseException] = []
        runner = threading.Thread(target=self._run, args=(failure,), name="opensmile", daemon=True)
        runner.start()
        try:
            for first in range(0, len(samples), piece):
                self._write(source, _pcm16(samples[first:first + piece]), runner, first)
        finally:
            self._smile.external_audio_source_set_eoi(source)
            runner.join()
        if failure:
            raise failure[0]
        self._smile.reset()
        report_progress(hook, "opensmile", done=seconds, total=seconds, unit="s")
        start = np.asarray(starts, dtype=np.float64)
        values = np.vstack(rows) if rows else np.zeros((0, len(self.names)), np.float32)
        return Frames(values, start, start + np.asarray(lengths, dtype=np.float64), self.names)

    def _run(self, failure: list[BaseException]) -> None:
        try:
            self._smile.run()
        except BaseException as exc:  # noqa: BLE001 - re-raised by run() in the caller's thread
            failure.append(exc)

    def _write(self, source: str, data: bytes, runner: threading.Thread, first: int) -> None:
        """Hand ``data`` to the running instance, waiting while its ring buffer is full."""
        while not self._smile.external_audio_source_write_data(source, data):
            if not runner.is_alive():
                raise RuntimeError(f"openSMILE stopped before sample {first} was written")
            time.sleep(FULL_WAIT_S)

    def __del__(self) -> None:
        smile = getattr(self, "_smile", None)
        if smile is not None:
            smile.free()


def _pcm16(block: np.ndarray) -> bytes:
    """16-bit PCM bytes as ``opensmile.Smile`` makes them, clipped instead of wrapping."""
    return np.clip(block * 32768.0, -32768, 32767).astype(np.int16).tobytes()


class OpenSmileExtractor(AcousticExtractor):
    """openSMILE eGeMAPSv02 / ComParE_2016 low-level descriptors on the media timeline."""

    name = "opensmile"
    version = "1"
    libraries = ("opensmile",)
    Config = OpenSmileConfig
    config: OpenSmileConfig

    def __init__(self, config: OpenSmileConfig | None = None, **options: Any) -> None:
        super().__init__(config, **options)
        self._engines: dict[int, _Engine] = {}

    def _frames(self, samples: np.ndarray, sample_rate: int, hook: Hook | None) -> Frames:
        engine = self._engines.pop(sample_rate, None) or _Engine(self.config.feature_set, sample_rate)
        chunk = max(1, int(round(self.config.chunk_seconds * sample_rate)))
        frames = engine.run(samples, chunk, hook)
        self._engines[sample_rate] = engine  # kept for the next track only after a clean run
        return frames
