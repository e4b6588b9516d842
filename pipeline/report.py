"""A readable summary of a :class:`pipeline.analyze.Result` for the terminal."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sgdtam_pipe.pipeline.analyze import Result


def _score_line(score) -> str:
    confidence = "" if score.confidence is None else f" (confidence {score.confidence:.2f})"
    return f"{score.score:+.2f} {score.polarity}{confidence}"


def summary_text(result: "Result") -> str:
    lines = [f"{result.source}  ({result.duration:.1f} s)", f"overall sentiment: {_score_line(result.overall)}"]
    for name, entry in result.modalities.items():
        state = f"observed, {entry['real_rows']} rows" if entry["present"] else f"missing: {entry['reason']}"
        lines.append(f"  {name:<6} {state}")
    if "transcript" in result.modalities["text"]:
        lines.append(f"  transcript: {result.modalities['text']['transcript']!r}")
    lines.append("segments:")
    for seg in result.segments:
        generated = f"  generated {'->'.join(seg.score.generated)}" if seg.score.generated else ""
        label = f"  {seg.text!r}" if seg.text else ""
        lines.append(f"  [{seg.start:6.2f}, {seg.end:6.2f})  {_score_line(seg.score)}{generated}{label}")
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    lines.append(f"time: {timing}")
    lines.append(f"checkpoint: {result.checkpoint.get('name', '?')}")
    return "\n".join(lines)
