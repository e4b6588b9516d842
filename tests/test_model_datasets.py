"""CMU-MultimodalSDK .csd and MMSA pickle loaders: real intervals kept, synthetic times flagged, pickles fenced."""

import json
import os
import pickle

import h5py
import numpy as np
import pytest

from sgdtam_pipe.model.datasets import load_csd, load_mmsa


def write_csd(path, root, entries, metadata):
    """The SDK's layout: /<root>/data/<vid>/{features,intervals}, /<root>/metadata/<key> = JSON string."""
    with h5py.File(path, "w") as handle:
        group = handle.create_group(root)
        data = group.create_group("data")
        for vid, (features, intervals) in entries.items():
            g = data.create_group(vid)
            g.create_dataset("features", data=features)
            g.create_dataset("intervals", data=intervals)
        meta = group.create_group("metadata")
        for key, value in metadata.items():
            meta.create_dataset(key, (1,), dtype=h5py.special_dtype(vlen=str))
            meta[key][0] = json.dumps(value)


def test_csd_segments_keep_real_intervals_relative_to_the_segment(tmp_path):
    t = np.arange(0, 10, 0.01)
    audio = (np.stack([np.sin(t), np.cos(t)], 1), np.stack([t, t + 0.01], 1))
    words = (np.array([[1.0, 0, 0], [0, 0, 0], [0, 2.0, 0]]), np.array([[0.5, 1.5], [1.5, 2.0], [6.0, 7.0]]))
    labels = (np.array([[1.5], [-2.0]]), np.array([[0.0, 3.0], [5.5, 8.0]]))
    write_csd(tmp_path / "a.csd", "COVAREP", {"v1": audio}, {"dimension names": ["f0", "energy"],
                                                           "computational sequence version": "1.0"})
    write_csd(tmp_path / "t.csd", "words", {"v1": words}, {})
    write_csd(tmp_path / "l.csd", "Opinion Segment Labels", {"v1": labels}, {})
    clips, y = load_csd(tmp_path / "l.csd", text=tmp_path / "t.csd", audio=tmp_path / "a.csd")
    assert y == [1.5, -2.0] and len(clips) == 2
    first, second = clips
    assert first.clip.duration == 3.0 and first.present() == ("text", "audio")
    assert first.audio.names == ("f0", "energy") and first.audio.identity.name == "csd:COVAREP"
    assert first.audio.identity.version == "1.0" and not first.audio.times_synthetic
    assert len(first.audio) == 300 and first.audio.start[0] == 0.0
    np.testing.assert_allclose(first.text.start, [0.5, 1.5])
    assert first.text.mask.tolist() == [True, False]          # the all-zero padding word is masked out
    np.testing.assert_allclose(second.text.start, [0.5])      # [6, 7) inside segment [5.5, 8)
    np.testing.assert_allclose(second.audio.start[0], 0.0)    # the row straddling 5.5 is clipped to it
    assert second.video.reason == "no file given"


def test_csd_refuses_a_file_that_is_not_a_sequence(tmp_path):
    bad = tmp_path / "bad.csd"
    bad.write_bytes(b"not hdf5")
    with pytest.raises(ValueError, match="bad.csd: not a readable computational sequence"):
        load_csd(bad)


def mmsa_split(n=3):
    rng = np.random.default_rng(0)
    return {"text": rng.normal(size=(n, 5, 4)).astype(np.float32),
            "audio": rng.normal(size=(n, 7, 3)).astype(np.float32),
            "vision": rng.normal(size=(n, 6, 2)).astype(np.float32),
            "audio_lengths": np.array([7, 3, 5]), "regression_labels": np.array([0.5, -1.0, 2.0], np.float32),
            "id": np.array(["a$_$0", "a$_$1", "b$_$0"])}


def test_mmsa_pickle_needs_trust_and_gets_flagged_synthetic_times(tmp_path):
    path = tmp_path / "mosi.pkl"
    path.write_bytes(pickle.dumps({"train": mmsa_split(), "valid": mmsa_split(), "test": mmsa_split()}))
    with pytest.raises(ValueError, match="trusted=True"):
        load_mmsa(path, split="train")
    clips, labels = load_mmsa(path, split="valid", trusted=True, duration=2.0)
    assert labels == [0.5, -1.0, 2.0]
    assert len(clips[1].audio) == 3 and clips[1].audio.times_synthetic
    np.testing.assert_allclose(clips[0].text.start, np.linspace(0, 2.0, 6)[:-1])
    assert clips[2].clip.source.endswith("#valid/b$_$0")


class Boom:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_mmsa_loader_refuses_pickles_that_would_run_code(tmp_path):
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"train": {"text": Boom()}}))
    with pytest.raises(ValueError, match="refusing to load .*system"):
        load_mmsa(path, split="train", trusted=True)
