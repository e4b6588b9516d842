"""A readable summary of a :class:`pipeline.analyze.Result` for the terminal.

Every score may be absent: a segment that observed nothing has none, and a
checkpoint whose classes are not positive/negative gives a class and its
confidence but no number on the [-3, 3] scale. Each scored line names its
route (availability pattern) and marks one the checkpoint was not validated
on as ``UNVALIDATED``; the overall line says so when any scored segment is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sgdtam_pipe.pipeline.analyze import Result
    from sgdtam_pipe.pipeline.scoring import SegmentScore


def score_line(score: "SegmentScore") -> str:
    """``+0.38 positive (confidence 0.42)``, ``class happy (...)`` without a score, ``no score`` when unscored."""
    if score.polarity == "unknown":
        return f"no score ({score.route})"
    score = score.shown()   # the JSON's numbers, so the summary and the HTML report never differ in the last digit
    confidence = "" if score.confidence is None else f" (confidence {score.confidence:.2f})"
    value = f"class {score.polarity}" if score.score is None else f"{score.score:+.2f} {score.polarity}"
    return value + confidence


def route_note(score: "SegmentScore") -> str:
    """``route LV (dev accuracy 0.71)``, or ``UNVALIDATED route LV``; empty for an unscored segment."""
    if not score.pattern:
        return ""
    if not score.validated:
        return f"UNVALIDATED route {score.pattern}"
    accuracy = "" if score.dev_accuracy is None else f" (dev accuracy {score.dev_accuracy:.2f})"
    return f"route {score.pattern}{accuracy}"


def _overall_note(result: "Result") -> str:
    scored = [s.score for s in result.segments if s.score.pattern]
    if not scored:
        return "no segment observed anything the checkpoint can score"
    unvalidated = [s.pattern for s in scored if not s.validated]
    if unvalidated:
        return (f"UNVALIDATED: {len(unvalidated)} of {len(scored)} scored segments take routes the checkpoint "
                f"was not validated on ({', '.join(dict.fromkeys(unvalidated))})")
    return route_note(result.overall)


def summary_text(result: "Result") -> str:
    lines = [f"{result.source}  ({result.duration:.1f} s)",
             f"overall sentiment: {score_line(result.overall)}  {_overall_note(result)}"]
    for name, entry in result.modalities.items():
        state = f"observed, {entry['real_rows']} rows" if entry["present"] else f"missing: {entry['reason']}"
        if entry.get("times") == "spread evenly":  # the source gave no times: alignment by time means little
            state += " (times spread evenly, not measured)"
        lines.append(f"  {name:<6} {state}")
    if "transcript" in result.modalities["text"]:
        lines.append(f"  transcript: {result.modalities['text']['transcript']!r}")
    lines.append("segments:")
    for seg in result.segments:
        note = route_note(seg.score)
        generated = f"  generated {'->'.join(seg.score.generated)}" if seg.score.generated else ""
        label = f"  {seg.text!r}" if seg.text else ""
        lines.append(f"  [{seg.start:6.2f}, {seg.end:6.2f})  {score_line(seg.score)}"
                     f"{'  ' + note if note else ''}{generated}{label}")
    timing = ", ".join(f"{k} {v:.2f}s" for k, v in result.timings.items())
    lines.append(f"time: {timing}")
    lines.append(f"checkpoint: {result.checkpoint.get('name', '?')}")
    return "\n".join(lines)
