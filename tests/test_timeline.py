"""The time contract: validation, time helpers, and records round-tripping without pickle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sgdtam_pipe.core.records_io import load_clip, load_result, result_from_bytes, save_clip, save_result
from sgdtam_pipe.core.timeline import (
    ClipFeatures,
    ClipInfo,
    ContractError,
    ExtractorIdentity,
    MissingModality,
    TimedFeatures,
    pool_windows,
    rows_overlapping,
    spread_evenly,
)

IDENTITY = ExtractorIdentity("test", "1", {"hop": 0.01})


def stream(start: list[float], end: list[float], width: int = 2, mask: list[bool] | None = None) -> TimedFeatures:
    values = np.arange(len(start) * width, dtype=np.float32).reshape(len(start), width)
    mask_array = np.ones(len(start), bool) if mask is None else np.array(mask)
    return TimedFeatures(values, start, end, mask_array, tuple(f"f{i}" for i in range(width)), IDENTITY)


@pytest.mark.parametrize("start, end, names, message", [
    ([0.0, 1.0], [1.0], ("a", "b"), "end has shape"),
    ([0.0, 1.0], [1.0, 2.0], ("a",), "feature names"),
    ([0.0, np.nan], [1.0, 2.0], ("a", "b"), "non-finite"),
    ([0.0, 1.0], [1.0, 0.5], ("a", "b"), "end 0.5 < start 1.0"),
    ([1.0, 0.0], [2.0, 1.0], ("a", "b"), "before previous start"),
])
def test_construction_refuses_broken_streams(start, end, names, message) -> None:
    with pytest.raises(ContractError, match=message):
        TimedFeatures(np.zeros((2, 2)), start, end, np.ones(2, bool), names, IDENTITY)


def test_rows_overlapping_uses_half_open_intervals() -> None:
    s = stream([0.0, 1.0, 2.0, 3.0], [1.0, 2.0, 3.0, 3.0])
    assert rows_overlapping(s.start, s.end, 1.0, 2.0).tolist() == [1]
    assert rows_overlapping(s.start, s.end, 0.5, 2.5).tolist() == [0, 1, 2]
    assert rows_overlapping(s.start, s.end, 3.0, 4.0).tolist() == [3]  # zero-length row inside
    assert s.crop(5.0, 6.0).values.shape == (0, 2)


def test_pool_windows_keeps_true_intervals_and_masks_empty_windows() -> None:
    s = stream([0.00, 0.01, 0.02, 0.05, 0.06, 0.12], [0.025, 0.035, 0.045, 0.075, 0.085, 0.145],
               mask=[True, False, True, False, False, True])
    pooled = pool_windows(s, 0.05)
    assert pooled.start.tolist() == [0.0, 0.05, 0.12]
    assert pooled.end.tolist() == [0.045, 0.085, 0.145]
    assert pooled.mask.tolist() == [True, False, True]
    np.testing.assert_allclose(pooled.values[0], s.values[[0, 2]].mean(axis=0))
    assert np.all(pooled.values[1] == 0)
    assert pooled.identity.config["pooled_window"] == 0.05


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 100), st.floats(0, 5)), min_size=1, max_size=30), st.floats(0.01, 10))
def test_pooling_never_loses_or_invents_time(rows, window) -> None:
    rows.sort()
    start = np.array([r[0] for r in rows])
    pooled = pool_windows(stream(list(start), list(start + [r[1] for r in rows]), width=1), window)
    assert pooled.start[0] == start[0] and pooled.end.max() == pytest.approx((start + [r[1] for r in rows]).max())
    assert set(pooled.start.tolist()) <= set(start.tolist())
    assert np.all(np.diff(pooled.start) > 0)


@given(st.integers(1, 500), st.floats(0.1, 1000))
def test_spread_evenly_tiles_the_duration(count, duration) -> None:
    start, end = spread_evenly(count, duration)
    assert start[0] == 0 and end[-1] == pytest.approx(duration)
    np.testing.assert_allclose(start[1:], end[:-1])


def test_identity_key_depends_on_config_only_through_its_content() -> None:
    same = ExtractorIdentity("test", "1", {"hop": 0.01})
    assert same.key() == IDENTITY.key()
    assert ExtractorIdentity("test", "1", {"hop": 0.02}).key() != IDENTITY.key()
    assert ExtractorIdentity("test", "2", {"hop": 0.01}).key() != IDENTITY.key()


def test_records_round_trip_without_pickle(tmp_path: Path) -> None:
    text = stream([0.0, 0.5], [0.5, 0.9], mask=[True, False])
    clip = ClipFeatures(ClipInfo("ab" * 32, 3.0, "clip.mp4"), text,
                        MissingModality("no audio stream", IDENTITY), stream([0.0], [0.04], width=3))
    save_clip(tmp_path / "clip", clip)
    back = load_clip(tmp_path / "clip")
    assert back.clip == clip.clip and back.present() == ("text", "video")
    assert back.audio == clip.audio
    for name in ("text", "video"):
        a, b = clip.modality(name), back.modality(name)
        for field in ("values", "start", "end", "mask"):
            np.testing.assert_array_equal(getattr(a, field), getattr(b, field))
        assert (a.names, a.identity, a.times_synthetic) == (b.names, b.identity, b.times_synthetic)
    with np.load(tmp_path / "clip" / "text.npz", allow_pickle=False) as npz:
        assert all(npz[k].dtype != object for k in npz.files)


def test_damaged_record_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "a.npz"
    save_result(path, stream([0.0], [1.0]))
    data = path.read_bytes()
    with pytest.raises(ContractError, match="damaged"):
        result_from_bytes(data[: len(data) // 2])
    assert isinstance(load_result(path), TimedFeatures)
