"""COVAREP-style acoustic frames computed with librosa: the licence-clean backend.

Frames step by 10 ms. Frame ``i`` is the 25 ms window of samples
``[i * hop, i * hop + 25 ms)``: that is its ``[start, end)`` (from sample
counts), and every column is measured on a window centred on it. Only frames
whose 25 ms window lies inside the track are kept. Columns, in order:

``f0_hz``
    Fundamental frequency on a 64 ms window between ``f0_min`` and ``f0_max``,
    by pYIN (``f0_method="pyin"``, 0.25-semitone grid, Viterbi-decoded) or YIN
    (``"yin"``); 0 where the frame is unvoiced.
``voicing_prob``
    pYIN: its voiced probability. YIN: the periodicity of the 64 ms window
    (its normalised autocorrelation at the YIN period, clipped to [0, 1]); a
    frame is voiced when it is at least 0.5.
``log_energy_dbfs``
    ``10 log10`` of the mean square of the 25 ms window.
``mfcc_0`` … ``mfcc_12``
    Orthonormal DCT-II of ``10 log10`` of 40 mel band powers (Hann 25 ms window,
    FFT of the next power of two, 512 points at 16 kHz; librosa's Slaney mel
    filters from 0 Hz to Nyquist).
``mfcc_delta_0`` … ``mfcc_delta_12``
    ``librosa.feature.delta`` of the MFCCs, 9 frames wide.
``spectral_centroid_hz``
    Magnitude-weighted mean frequency of the 25 ms spectrum.
``spectral_tilt_db_per_khz``
    Least-squares slope of the 25 ms power spectrum in dB against frequency.
``zcr``
    Fraction of adjacent sample pairs in the 25 ms window whose signs differ.

Long tracks are processed ``chunk_seconds`` of frames at a time, each chunk
computed with one second of neighbouring frames as context (windows reach into
the real neighbouring samples; deltas and pYIN's Viterbi path see past the
border) and only its own frames kept, so frames tile the track with no
duplicate or missing frame. Frame-wise columns do not depend on the chunking;
pYIN's decoded path can, in rare frames near a border, which is why
``chunk_seconds`` is part of this backend's identity. Windows that reach
outside the track see zeros.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from sgdtam_pipe.core.hooks import Hook
from sgdtam_pipe.extractors.acoustic.frames import (
    AcousticConfig,
    AcousticExtractor,
    Frames,
    chunk_bounds,
    report_progress,
)
from sgdtam_pipe.extractors.base import require

F0_METHODS = ("pyin", "yin")
HOP_SECONDS = 0.010
FRAME_SECONDS = 0.025
PITCH_FRAME_SECONDS = 0.064
N_MELS = 40
N_MFCC = 13
DELTA_WIDTH = 9
PYIN_RESOLUTION = 0.25
YIN_VOICED = 0.5
CONTEXT_FRAMES = 100
_FLOOR = 1e-10

NAMES: tuple[str, ...] = (
    "f0_hz", "voicing_prob", "log_energy_dbfs",
    *(f"mfcc_{k}" for k in range(N_MFCC)),
    *(f"mfcc_delta_{k}" for k in range(N_MFCC)),
    "spectral_centroid_hz", "spectral_tilt_db_per_khz", "zcr",
)


@dataclass(frozen=True)
class LibrosaConfig(AcousticConfig):
    """``f0_method``: ``"pyin"`` or ``"yin"``; ``f0_min`` / ``f0_max``: F0 search range in Hz."""

    f0_method: str = "pyin"
    f0_min: float = 60.0
    f0_max: float = 500.0

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.f0_method not in F0_METHODS:
            raise ValueError(f"unknown f0_method {self.f0_method!r}; choose one of: {', '.join(F0_METHODS)}")
        if not 0 < self.f0_min < self.f0_max:
            raise ValueError(f"need 0 < f0_min < f0_max, got {self.f0_min} and {self.f0_max}")
        if self.f0_min * PITCH_FRAME_SECONDS < 2:
            raise ValueError(f"f0_min {self.f0_min} Hz leaves under two periods in the "
                             f"{PITCH_FRAME_SECONDS * 1000:.0f} ms pitch window; use at least "
                             f"{2 / PITCH_FRAME_SECONDS:g} Hz")


@dataclass(frozen=True)
class _Geometry:
    """Frame sizes in samples at one sample rate."""

    sample_rate: int
    hop: int
    frame: int
    pitch_frame: int

    @property
    def n_fft(self) -> int:
        return 1 << (self.frame - 1).bit_length()

    @classmethod
    def at(cls, sample_rate: int) -> "_Geometry":
        if sample_rate % round(1 / HOP_SECONDS):
            raise ValueError(f"sample rate {sample_rate} Hz has no whole number of samples per 10 ms hop")
        return cls(sample_rate, round(HOP_SECONDS * sample_rate), round(FRAME_SECONDS * sample_rate),
                   round(PITCH_FRAME_SECONDS * sample_rate))

    def count(self, samples: int) -> int:
        """Frames whose 25 ms window fits in ``samples``."""
        return 0 if samples < self.frame else 1 + (samples - self.frame) // self.hop

    def segment(self, samples: np.ndarray, first: int, count: int, length: int) -> np.ndarray:
        """Samples under ``count`` windows of ``length`` centred on frames ``first``…; zeros outside."""
        lo = first * self.hop + self.frame // 2 - length // 2
        hi = lo + (count - 1) * self.hop + length
        out = np.zeros(hi - lo, dtype=np.float32)
        a, b = max(lo, 0), min(hi, len(samples))
        if b > a:
            out[a - lo:b - lo] = samples[a:b]
        return out

    def windows(self, samples: np.ndarray, first: int, count: int, length: int) -> np.ndarray:
        """``[count, length]`` windows centred on frames ``first``… (a strided view)."""
        segment = self.segment(samples, first, count, length)
        return np.lib.stride_tricks.sliding_window_view(segment, length)[::self.hop]


class LibrosaExtractor(AcousticExtractor):
    """COVAREP-style F0, voicing, energy, MFCC with deltas, centroid, tilt and ZCR per 10 ms."""

    name = "librosa"
    version = "1"
    libraries = ("librosa",)
    Config = LibrosaConfig
    config: LibrosaConfig

    def _frames(self, samples: np.ndarray, sample_rate: int, hook: Hook | None) -> Frames:
        require("librosa", "acoustic")
        geometry = _Geometry.at(sample_rate)
        if self.config.f0_max >= sample_rate / 2:
            raise ValueError(f"f0_max {self.config.f0_max} Hz must be below half the sample rate {sample_rate} Hz")
        total = geometry.count(len(samples))
        per_chunk = max(1, round(self.config.chunk_seconds / HOP_SECONDS))
        values = np.zeros((total, len(NAMES)), dtype=np.float32)
        seconds = round(len(samples) / sample_rate, 1)  # progress in seconds of audio, as openSMILE reports it
        report_progress(hook, "librosa", done=0.0, total=seconds, unit="s")
        for first, stop in chunk_bounds(total, per_chunk):
            lo, hi = max(0, first - CONTEXT_FRAMES), min(total, stop + CONTEXT_FRAMES)
            values[first:stop] = self._columns(samples, geometry, lo, hi - lo)[first - lo:stop - lo]
            done = seconds if stop == total else min(round(stop * HOP_SECONDS, 1), seconds)
            report_progress(hook, "librosa", done=done, total=seconds, unit="s")
        start_sample = np.arange(total, dtype=np.int64) * geometry.hop  # sample counts, not times
        return Frames(values, start_sample / sample_rate, (start_sample + geometry.frame) / sample_rate, NAMES)

    def _columns(self, samples: np.ndarray, geometry: _Geometry, first: int, count: int) -> np.ndarray:
        """All columns for frames ``first`` … ``first + count - 1``, computed together."""
        from scipy.signal import get_window

        f0, voicing = self._pitch(samples, geometry, first, count)
        short = geometry.windows(samples, first, count, geometry.frame).astype(np.float64)
        hann = get_window("hann", geometry.frame)  # periodic, as librosa's STFT uses
        power = np.abs(np.fft.rfft(short * hann, n=geometry.n_fft, axis=1)) ** 2
        mfcc = _mfcc(power, geometry)
        return np.column_stack([
            f0, voicing, 10 * np.log10(np.mean(short ** 2, axis=1) + _FLOOR),
            mfcc, _delta(mfcc),
            _centroid(power, geometry), _tilt(power, geometry), _zcr(short),
        ])

    def _pitch(self, samples: np.ndarray, geometry: _Geometry, first: int, count: int) -> tuple[np.ndarray, np.ndarray]:
        import librosa

        segment = geometry.segment(samples, first, count, geometry.pitch_frame)
        common: dict[str, Any] = dict(fmin=self.config.f0_min, fmax=self.config.f0_max, sr=geometry.sample_rate,
                                      frame_length=geometry.pitch_frame, hop_length=geometry.hop, center=False)
        if self.config.f0_method == "pyin":
            f0, voiced, probability = librosa.pyin(segment, resolution=PYIN_RESOLUTION, **common)
            return np.where(voiced, np.nan_to_num(f0), 0.0), probability
        f0 = librosa.yin(segment, **common)
        windows = np.lib.stride_tricks.sliding_window_view(segment, geometry.pitch_frame)[::geometry.hop]
        periodicity = _periodicity(windows, f0, geometry.sample_rate)
        return np.where(periodicity >= YIN_VOICED, f0, 0.0), periodicity


def _mfcc(power: np.ndarray, geometry: _Geometry) -> np.ndarray:
    import librosa
    from scipy.fft import dct

    filters = librosa.filters.mel(sr=geometry.sample_rate, n_fft=geometry.n_fft, n_mels=N_MELS)
    mel = power @ filters.T.astype(np.float64)
    return dct(10 * np.log10(mel + _FLOOR), type=2, norm="ortho", axis=1)[:, :N_MFCC]


def _delta(mfcc: np.ndarray) -> np.ndarray:
    """librosa's delta over time, narrowed on tracks shorter than ``DELTA_WIDTH`` frames."""
    import librosa

    width = min(DELTA_WIDTH, len(mfcc) - (1 - len(mfcc) % 2))
    if width < 3:
        return np.zeros_like(mfcc)
    return librosa.feature.delta(mfcc, width=width, axis=0, mode="interp")


def _frequencies(geometry: _Geometry) -> np.ndarray:
    return np.fft.rfftfreq(geometry.n_fft, d=1 / geometry.sample_rate)


def _centroid(power: np.ndarray, geometry: _Geometry) -> np.ndarray:
    magnitude = np.sqrt(power)
    total = magnitude.sum(axis=1)
    weighted = magnitude @ _frequencies(geometry)
    return np.divide(weighted, total, out=np.zeros_like(total), where=total > 0)


def _tilt(power: np.ndarray, geometry: _Geometry) -> np.ndarray:
    khz = _frequencies(geometry) / 1000
    centred = khz - khz.mean()
    level = 10 * np.log10(power + _FLOOR)
    return (level - level.mean(axis=1, keepdims=True)) @ centred / (centred @ centred)


def _zcr(short: np.ndarray) -> np.ndarray:
    signs = np.signbit(short)
    return np.mean(signs[:, 1:] != signs[:, :-1], axis=1)


def _periodicity(windows: np.ndarray, f0: np.ndarray, sample_rate: int) -> np.ndarray:
    """Normalised autocorrelation of each window at its F0 period, clipped to [0, 1]."""
    length = windows.shape[1]
    lag = np.clip(np.rint(sample_rate / f0).astype(np.int64), 1, length - 1)
    spectrum = np.fft.rfft(windows, n=2 * length, axis=1)
    acf = np.fft.irfft(np.abs(spectrum) ** 2, axis=1)[:, :length]
    energy = np.concatenate([np.zeros((len(windows), 1)), np.cumsum(windows.astype(np.float64) ** 2, axis=1)], axis=1)
    rows = np.arange(len(windows))
    head = energy[rows, length - lag]  # x[0 : L - lag]
    tail = energy[:, -1] - energy[rows, lag]  # x[lag : L]
    norm = np.sqrt(head * tail)
    ratio = np.divide(acf[rows, lag], norm, out=np.zeros(len(windows)), where=norm > 0)
    return np.clip(ratio, 0.0, 1.0)
