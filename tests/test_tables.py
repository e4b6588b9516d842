"""Tables: ``analyze --export`` read back with pandas agrees with the JSON; batch's flat results tables."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pandas as pd
import pytest
from batch_jobs import media_job
from click.testing import CliRunner

from sgdtam_pipe.pipeline.batch import run_batch
from sgdtam_pipe.pipeline.cli import main

GRID = Path(__file__).resolve().parents[1] / "examples" / "grid-bbaf2n.mpg"


@pytest.fixture(scope="module")
def exported(tmp_path_factory) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("export")
    result = CliRunner().invoke(main, ["analyze", str(GRID), "--json", str(out / "grid.json"),
                                       "--export", str(out / "tables")])
    assert result.exit_code == 0, result.output
    return json.loads((out / "grid.json").read_text()), out / "tables"


@pytest.mark.parametrize("suffix", ["csv", "parquet"])
def test_exported_tables_read_back_with_the_json_times(exported, suffix: str) -> None:
    document, folder = exported
    read = pd.read_csv if suffix == "csv" else pd.read_parquet
    segments, words, frames = (read(folder / f"{name}.{suffix}") for name in ("segments", "words", "frames"))
    if suffix == "parquet":  # Parquet keeps the index; CSV writes it as leading columns
        segments, words, frames = segments.reset_index(), words.reset_index(), frames.reset_index()
    assert list(zip(segments["start"], segments["end"])) == [(s["start"], s["end"]) for s in document["segments"]]
    assert list(segments["score"]) == [s["score"] for s in document["segments"]]
    assert list(segments["text_state"]) == ["observed" if "text" in s["observed"] else "generated"
                                            if "text" in s["generated"] else "missing" for s in document["segments"]]
    assert list(zip(words["text"], words["start"], words["end"])) == [(w["text"], w["start"], w["end"])
                                                                      for w in document["words"]]
    assert set(frames["modality"]) == {"audio", "video"}
    video = frames[frames["modality"] == "video"]
    assert len(video) == document["modalities"]["video"]["rows"]
    assert [t for t, _ in document["tracks"]["face"]] == list(video["start"])
    assert video["observed"].sum() == document["modalities"]["video"]["real_rows"]


def test_result_dataframes_and_plot() -> None:
    from matplotlib.figure import Figure

    from sgdtam_pipe.pipeline.analyze import analyze

    result = analyze(GRID)
    segments = result.to_dataframe()
    assert segments.index.names == ["start", "end"] and len(segments) == len(result.segments)
    assert {"p_negative", "p_neutral", "p_positive"} <= set(segments.columns)
    assert result.words_dataframe().index.names == ["start", "end"]
    assert result.frames_dataframe().index.names == ["modality", "start", "end"]
    figure = result.plot()
    assert isinstance(figure, Figure) and len(figure.axes) == 3


def test_batch_tables_are_flat(tmp_path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(GRID, folder / "grid.mpg")
    (folder / "broken.mp4").write_text("not a video")
    summary = run_batch(folder, out_dir=tmp_path / "out", job=media_job)
    from_csv = pd.read_csv(summary.results_csv)
    from_parquet = pd.read_parquet(summary.results_csv.with_suffix(".parquet"))
    assert list(from_csv.columns) == list(from_parquet.columns)
    assert len(from_parquet) == 2 and set(from_parquet["status"]) == {"done", "failed"}
    for column in from_parquet.columns:  # one scalar per cell: no JSON documents hidden in text
        assert not from_parquet[column].astype(str).str.startswith(("{", "[")).any(), column
