"""The ``--plot`` timeline: segment sentiment, modality availability, face and voice tracks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sgdtam_pipe.pipeline.analyze import Result

COLOURS = {"negative": "#c0392b", "neutral": "#7f8c8d", "positive": "#27ae60"}


def plot_timeline(result: "Result", target: str | Path) -> Path:
    """Draw three stacked panels sharing the time axis and save a PNG atomically."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from sgdtam_pipe.extractors.records_io import atomic_write_bytes

    fig, (ax_score, ax_avail, ax_tracks) = plt.subplots(3, 1, figsize=(10, 6), sharex=True,
                                                         gridspec_kw={"height_ratios": [3, 1.3, 2]})
    for seg in result.segments:
        colour = COLOURS.get(seg.score.polarity, "#34495e")
        ax_score.hlines(seg.score.score, seg.start, seg.end, colors=colour, linewidth=4)
    ax_score.axhline(0, color="black", linewidth=0.5)
    ax_score.set_ylim(-3.2, 3.2)
    ax_score.set_ylabel("sentiment")
    ax_score.set_title(f"{Path(result.source).name}: overall {result.overall.score:+.2f} ({result.overall.polarity})")
    for row, name in enumerate(("text", "audio", "video")):
        for seg in result.segments:
            observed = name in seg.score.observed
            generated = name in seg.score.generated
            colour = "#2980b9" if observed else "#f39c12" if generated else "#ecf0f1"
            ax_avail.broken_barh([(seg.start, seg.end - seg.start)], (row - 0.4, 0.8), color=colour)
    ax_avail.set_yticks([0, 1, 2], ["text", "audio", "video"])
    ax_avail.set_ylabel("observed (blue)\ngenerated (orange)", fontsize=7)
    for name, colour in (("face", "#8e44ad"), ("voice", "#16a085")):
        points = result.tracks.get(name)
        if points:
            times, values = zip(*points)
            top = max(max(values), 1e-9)
            ax_tracks.plot(times, [v / top for v in values], color=colour, label=f"{name} (scaled)", linewidth=1)
    ax_tracks.set_ylabel("activity")
    ax_tracks.set_ylim(-0.05, 1.1)
    ax_tracks.set_xlabel("time (s)")
    ax_tracks.legend(loc="upper right", fontsize=8)
    ax_tracks.set_xlim(0, max(result.duration, 1e-3))
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100)
    plt.close(fig)
    atomic_write_bytes(target, buffer.getvalue())
    return Path(target)
