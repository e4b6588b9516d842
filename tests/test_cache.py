"""The feature cache on real features: the GRID clip's audio, framed by sample counts."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import sgdtam_pipe.core.records_io as records_io
from sgdtam_pipe.core.media import decode_audio
from sgdtam_pipe.core.timeline import ExtractorIdentity, MissingModality, TimedFeatures, file_sha256
from sgdtam_pipe.pipeline.cache import FeatureCache, default_cache_dir

REPO = Path(__file__).resolve().parents[1]
GRID = REPO / "examples" / "grid-bbaf2n.mpg"
HOP = 400  # samples: 25 ms at 16 kHz


def loudness_stream(identity: ExtractorIdentity, hop: int = HOP) -> TimedFeatures:
    """RMS and zero-crossing rate of the GRID clip's audio; times from sample counts."""
    track = decode_audio(GRID)
    frames = len(track.samples) // hop
    blocks = track.samples[: frames * hop].reshape(frames, hop).astype(np.float64)
    rms = np.sqrt((blocks ** 2).mean(axis=1))
    zcr = (np.diff(np.signbit(blocks), axis=1) != 0).mean(axis=1)
    first_sample = np.arange(frames) * hop
    start = track.start + first_sample / track.sample_rate
    end = track.start + (first_sample + hop) / track.sample_rate
    return TimedFeatures(np.stack([rms, zcr], axis=1), start, end, rms > 1e-4, ("rms", "zcr"), identity)


AUDIO = ExtractorIdentity("test-loudness", "1", {"hop": HOP})
VIDEO = ExtractorIdentity("test-frames", "1", {"fps": 15.0})


@pytest.fixture(scope="module")
def sha() -> str:
    return file_sha256(GRID)


@pytest.fixture(scope="module")
def stream() -> TimedFeatures:
    return loudness_stream(AUDIO)


def assert_same(a: TimedFeatures, b: TimedFeatures) -> None:
    assert isinstance(b, TimedFeatures)
    for name in ("values", "start", "end", "mask"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.names, a.identity, a.times_synthetic) == (b.names, b.identity, b.times_synthetic)


def test_round_trip_of_stream_missing_marker_and_json(tmp_path, sha, stream):
    cache = FeatureCache(tmp_path)
    assert cache.get(sha, AUDIO) is None
    cache.put(sha, AUDIO, stream)
    assert_same(stream, cache.get(sha, AUDIO))
    cache.put(sha, VIDEO, MissingModality("no video stream", VIDEO))
    assert cache.get(sha, VIDEO) == MissingModality("no video stream", VIDEO)
    transcript = {"words": [{"word": "bin", "start": 0.52, "end": 0.71}], "language": "en"}
    cache.put_json(sha, AUDIO, "transcript", transcript)
    assert cache.get_json(sha, AUDIO, "transcript") == transcript
    assert cache.get_json(sha, AUDIO, "other") is None
    assert FeatureCache(tmp_path).get(sha, AUDIO) is not None  # a new handle reads the same files


def test_layout_and_record(tmp_path, sha, stream):
    cache = FeatureCache(tmp_path)
    payload = cache.put(sha, AUDIO, stream)
    assert payload == tmp_path / sha[:2] / sha / f"test-loudness-{AUDIO.key()}.npz"
    record = json.loads(payload.with_name(payload.name + ".meta.json").read_text())
    assert record["identity"] == AUDIO.to_json()
    assert record["bytes"] == payload.stat().st_size
    assert abs(record["created"] - time.time()) < 60


def test_changing_one_config_recomputes_only_that_modality(tmp_path, sha, stream):
    cache = FeatureCache(tmp_path)
    video = MissingModality("no face found", VIDEO)
    cache.put(sha, AUDIO, stream)
    cache.put(sha, VIDEO, video)
    finer = ExtractorIdentity(AUDIO.name, AUDIO.version, {"hop": HOP // 2})
    assert cache.get(sha, finer) is None  # audio config changed: a miss
    assert cache.get(sha, VIDEO) == video  # video untouched: still a hit
    assert_same(stream, cache.get(sha, AUDIO))
    assert cache.get(sha, ExtractorIdentity(AUDIO.name, "2", AUDIO.config)) is None  # new version: a miss
    recomputed = loudness_stream(finer, hop=HOP // 2)
    cache.put(sha, finer, recomputed)
    assert_same(recomputed, cache.get(sha, finer))
    assert len(recomputed) == 2 * len(stream)
    assert cache.info()["extractors"] == {"test-frames": 1, "test-loudness": 2}
    other_clip = "0" * 64
    assert cache.get(other_clip, AUDIO) is None  # keyed by content too


def _entry(cache: FeatureCache, sha: str, identity: ExtractorIdentity) -> tuple[Path, Path]:
    payload = cache.root / sha[:2] / sha / f"{identity.name}-{identity.key()}.npz"
    return payload, payload.with_name(payload.name + ".meta.json")


@pytest.mark.parametrize("damage", ["flip", "truncate", "record"])
def test_damaged_entry_is_detected_and_removed(tmp_path, sha, stream, damage):
    cache = FeatureCache(tmp_path)
    cache.put(sha, AUDIO, stream)
    payload, record = _entry(cache, sha, AUDIO)
    data = bytearray(payload.read_bytes())
    if damage == "flip":
        data[len(data) // 2] ^= 0xFF
        payload.write_bytes(bytes(data))
    elif damage == "truncate":
        payload.write_bytes(bytes(data[: len(data) // 3]))
    else:
        record.write_text(record.read_text()[:20])
    assert cache.get(sha, AUDIO) is None
    assert not payload.exists() and not record.exists()
    cache.put(sha, AUDIO, stream)  # the caller recomputes and stores again
    assert_same(stream, cache.get(sha, AUDIO))


def test_payload_that_matches_its_checksum_but_is_no_record_is_refused(tmp_path, sha, stream):
    """Damage the cache's checksum cannot see (written consistently) is caught when decoding."""
    cache = FeatureCache(tmp_path)
    cache.put(sha, AUDIO, stream)
    payload, record = _entry(cache, sha, AUDIO)
    data = payload.read_bytes()[:-40]
    meta = json.loads(record.read_text())
    meta.update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    payload.write_bytes(data)
    record.write_text(json.dumps(meta))
    assert cache.get(sha, AUDIO) is None
    assert not payload.exists()


def test_interrupted_write_leaves_old_entry_or_nothing(tmp_path, sha, stream, monkeypatch):
    cache = FeatureCache(tmp_path)
    calls = {"n": 0}
    real_fsync = os.fsync

    def fsync_then_fail(at: int):
        def fsync(fd: int) -> None:
            calls["n"] += 1
            if calls["n"] == at:
                raise KeyboardInterrupt("simulated interrupt mid-write")
            real_fsync(fd)
        return fsync

    # Interrupted while writing the record: the payload alone does not count.
    monkeypatch.setattr(records_io.os, "fsync", fsync_then_fail(2))
    with pytest.raises(KeyboardInterrupt):
        cache.put(sha, AUDIO, stream)
    monkeypatch.setattr(records_io.os, "fsync", real_fsync)
    assert cache.get(sha, AUDIO) is None
    folder = tmp_path / sha[:2] / sha
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]

    # Interrupted while overwriting: the previous entry stays whole.
    cache.put(sha, AUDIO, stream)
    calls["n"] = 0
    monkeypatch.setattr(records_io.os, "fsync", fsync_then_fail(1))
    with pytest.raises(KeyboardInterrupt):
        cache.put(sha, AUDIO, MissingModality("would replace the stream", AUDIO))
    monkeypatch.setattr(records_io.os, "fsync", real_fsync)
    assert_same(stream, cache.get(sha, AUDIO))
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]


WRITER = """
import sys
sys.path.insert(0, {tests!r})
from test_cache import AUDIO, loudness_stream
from sgdtam_pipe.core.timeline import ExtractorIdentity
from sgdtam_pipe.pipeline.cache import FeatureCache
cache, stream = FeatureCache({root!r}), loudness_stream(AUDIO)
big = type(stream)(stream.values.repeat(200, axis=0), stream.start.repeat(200), stream.end.repeat(200),
                   stream.mask.repeat(200), stream.names, AUDIO)
for i in range(100000):
    cache.put({sha!r}, ExtractorIdentity("killed", "1", {{"i": i % 50}}), big)
"""


def test_killed_writer_never_leaves_a_readable_half_entry(tmp_path, sha):
    root = tmp_path / "cache"
    script = WRITER.format(tests=str(Path(__file__).parent), root=str(root), sha=sha)
    writer = subprocess.Popen([sys.executable, "-c", script], cwd=REPO)
    try:
        deadline = time.monotonic() + 60
        while FeatureCache(root).info()["entries"] < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()
    cache = FeatureCache(root)
    assert cache.info()["entries"] >= 3
    hits = 0
    for i in range(50):
        result = cache.get(sha, ExtractorIdentity("killed", "1", {"i": i}))
        if result is not None:
            assert isinstance(result, TimedFeatures) and result.values.shape[1] == 2
            hits += 1
    assert hits >= 3
    assert cache.clear() >= 3


def test_info_and_clear(tmp_path, sha, stream):
    cache = FeatureCache(tmp_path / "c")
    assert cache.info() == {"root": str(tmp_path / "c"), "entries": 0, "bytes": 0, "extractors": {}}
    cache.put(sha, AUDIO, stream)
    cache.put_json(sha, AUDIO, "transcript", {"words": []})
    cache.put("f" * 64, VIDEO, MissingModality("no video stream", VIDEO))
    keep = tmp_path / "c" / "notes.txt"
    keep.write_text("not the cache's")
    info = cache.info()
    assert info["entries"] == 3
    assert info["extractors"] == {"test-frames": 1, "test-loudness": 2}
    assert info["bytes"] > stream.values.nbytes
    assert cache.clear() == 3
    assert cache.info()["entries"] == 0 and cache.get(sha, AUDIO) is None
    assert keep.read_text() == "not the cache's"


def test_bad_keys_are_refused(tmp_path, stream):
    cache = FeatureCache(tmp_path)
    with pytest.raises(ValueError, match="SHA-256"):
        cache.put("../../etc", AUDIO, stream)
    with pytest.raises(ValueError, match="kind"):
        cache.put_json("a" * 64, AUDIO, "../x", {})


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("SGDTAM_CACHE_DIR", str(tmp_path / "explicit"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "explicit"
    assert FeatureCache().root == tmp_path / "explicit"
    monkeypatch.delenv("SGDTAM_CACHE_DIR")
    assert default_cache_dir() == tmp_path / "xdg" / "sgdtam-pipe"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "sgdtam-pipe"
