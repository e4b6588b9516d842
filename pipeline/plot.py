"""The ``--plot`` timeline: segment sentiment, modality availability, face and voice tracks.

Drawn on a bare :class:`matplotlib.figure.Figure` (no pyplot), so it neither
changes a notebook's backend nor needs a display.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COLOURS = {"negative": "#c0392b", "neutral": "#7f8c8d", "positive": "#27ae60"}


def plot_timeline(analysis: Mapping[str, Any], target: str | Path) -> Path:
    """Save :func:`timeline_figure` of an analysis document (``Result.to_json()``) as a PNG, atomically."""
    import io

    from sgdtam_pipe.core.records_io import atomic_write_bytes

    buffer = io.BytesIO()
    timeline_figure(analysis).savefig(buffer, format="png", dpi=100)
    atomic_write_bytes(target, buffer.getvalue())
    return Path(target)


def timeline_figure(analysis: Mapping[str, Any]) -> "Figure":
    """Three stacked panels sharing the time axis: sentiment, availability, face and voice,
    from an analysis document (``Result.to_json()``)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 6))
    ax_score, ax_avail, ax_tracks = fig.subplots(3, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 2]})
    segments, overall = analysis["segments"], analysis["overall"]
    for seg in (s for s in segments if s["score"] is not None):
        colour = COLOURS.get(seg["polarity"], "#34495e")
        ax_score.hlines(seg["score"], seg["start"], seg["end"], colors=colour, linewidth=4)
    ax_score.axhline(0, color="black", linewidth=0.5)
    ax_score.set_ylim(-3.2, 3.2)
    ax_score.set_ylabel("sentiment")
    score = "" if overall["score"] is None else f"{overall['score']:+.2f} "
    ax_score.set_title(f"{Path(analysis['source']).name}: overall {score}({overall['polarity']})")
    for row, name in enumerate(("text", "audio", "video")):
        for seg in segments:
            observed = name in seg["observed"]
            generated = name in seg["generated"]
            colour = "#2980b9" if observed else "#f39c12" if generated else "#ecf0f1"
            ax_avail.broken_barh([(seg["start"], seg["end"] - seg["start"])], (row - 0.4, 0.8), color=colour)
    ax_avail.set_yticks([0, 1, 2], ["text", "audio", "video"])
    ax_avail.set_ylabel("observed (blue)\ngenerated (orange)", fontsize=7)
    for name, colour in (("face", "#8e44ad"), ("voice", "#16a085")):
        points = analysis.get("tracks", {}).get(name)
        if points:
            times, values = zip(*points)
            top = max(max(values), 1e-9)
            ax_tracks.plot(times, [v / top for v in values], color=colour, label=f"{name} (scaled)", linewidth=1)
    ax_tracks.set_ylabel("activity")
    ax_tracks.set_ylim(-0.05, 1.1)
    ax_tracks.set_xlabel("time (s)")
    if ax_tracks.lines:  # a clip without face or voice tracks has nothing to name
        ax_tracks.legend(loc="upper right", fontsize=8)
    ax_tracks.set_xlim(0, max(analysis["duration"], 1e-3))
    fig.tight_layout()
    return fig
