"""The ``--plot`` timeline draws what the analysis says, where it says it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.colors import to_hex

from sgdtam_pipe.pipeline.plot import COLOURS, plot_timeline, timeline_figure

ANALYSIS = {
    "source": "/clips/talk.mp4", "duration": 6.0,
    "overall": {"score": -0.4, "polarity": "negative"},
    "segments": [
        {"start": 0.0, "end": 2.0, "score": 1.5, "polarity": "positive", "observed": ["text", "audio"],
         "generated": ["video"]},
        {"start": 2.0, "end": 4.5, "score": -2.0, "polarity": "negative", "observed": ["video"], "generated": []},
        {"start": 4.5, "end": 6.0, "score": None, "polarity": "unknown", "observed": [], "generated": []},
    ],
    "tracks": {"face": [[0.0, 0.0], [3.0, 2.0], [6.0, 1.0]], "voice": [[0.0, 4.0], [6.0, 0.0]]},
}


def _panels():
    fig = timeline_figure(ANALYSIS)
    return fig, fig.axes


def test_each_scored_segment_is_a_line_at_its_score_over_its_span() -> None:
    _, (score, _, _) = _panels()
    lines = sorted((tuple(np.round(seg[:, 0], 3)), float(seg[0, 1]), to_hex(colour))
                   for collection in score.collections
                   for seg, colour in zip(collection.get_segments(), collection.get_colors()))
    assert lines == [((0.0, 2.0), 1.5, COLOURS["positive"]), ((2.0, 4.5), -2.0, COLOURS["negative"])]
    assert score.get_title() == "talk.mp4: overall -0.40 (negative)"


def test_availability_rows_colour_observed_generated_and_absent() -> None:
    _, (_, availability, _) = _panels()
    drawn = [to_hex(c.get_facecolor()[0]) for c in availability.collections]
    # text, audio, video rows, each with the three segments in order
    observed, generated, absent = "#2980b9", "#f39c12", "#ecf0f1"
    assert drawn == [observed, absent, absent,      # text
                     observed, absent, absent,      # audio
                     generated, observed, absent]   # video


def test_tracks_are_scaled_to_their_peak_and_the_axis_spans_the_clip(tmp_path: Path) -> None:
    _, (_, _, tracks) = _panels()
    face, voice = tracks.lines
    assert list(face.get_ydata()) == [0.0, 1.0, 0.5] and list(voice.get_ydata()) == [1.0, 0.0]
    assert tracks.get_xlim() == (0.0, 6.0)
    png = plot_timeline(ANALYSIS, tmp_path / "t.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
