"""``analyze --html``: one self-contained page to watch a clip with its sentiment, words and modalities in step.

The page needs nothing from the network: its CSS and JavaScript are inlined
from ``report_assets/``, the analysis is embedded as JSON, and the media as
base64 (the original when a browser plays it, else a proxy: see
:mod:`pipeline.media_proxy`). An audio-only file also gets its waveform; a
still image is shown as a picture.

Size budget: :func:`report_budget` is 5 MB per minute of clip, at least 1 MB
(so a one-minute clip's report stays under 5 MB). The media gets what the
page itself leaves of it (base64 costs 4/3), and the proxy lowers its
resolution and bitrate until it fits.
"""

from __future__ import annotations

import base64
import html
import json
import string
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from sgdtam_pipe.core.timeline import MODALITIES
from sgdtam_pipe.pipeline.tables import availability

if TYPE_CHECKING:
    from sgdtam_pipe.pipeline.media_proxy import EmbeddedMedia

ASSETS = Path(__file__).resolve().parent / "report_assets"
REPORT_BYTES_PER_MINUTE = 5_000_000
MIN_REPORT_BYTES = 1_000_000
WAVEFORM_PEAKS = 1000


def report_budget(duration: float) -> int:
    """Most bytes a report of a ``duration``-second clip may take (see the module doc)."""
    return max(MIN_REPORT_BYTES, int(REPORT_BYTES_PER_MINUTE * duration / 60))


def write_html_report(analysis: Mapping[str, Any], target: str | Path, *,
                      media_path: str | Path | None = None) -> Path:
    """Write the report of an analysis document (``Result.to_json()``, or a saved ``--json`` file)
    to ``target`` atomically; the media is read from ``media_path`` (default: the analysed file,
    its ``source``). Raises ``MediaError`` when the media cannot be read and ``UserError`` when no
    playable copy fits the budget."""
    from sgdtam_pipe.core.media import probe
    from sgdtam_pipe.core.records_io import atomic_write_bytes
    from sgdtam_pipe.pipeline.media_proxy import browser_media, media_kind

    source = Path(media_path or analysis["source"])
    info = probe(source)
    kind = media_kind(source, info)
    waveform = audio_waveform(source) if kind == "audio" else None
    budget = report_budget(analysis["duration"])
    page_alone = len(render_page(analysis, None, waveform).encode("utf-8"))
    media = browser_media(source, info, max_bytes=max((budget - page_alone) * 3 // 4 - 4096, 0))
    page = render_page(analysis, media, waveform).encode("utf-8")
    atomic_write_bytes(target, page)
    return Path(target)


def render_page(analysis: Mapping[str, Any], media: "EmbeddedMedia | None", waveform: dict[str, Any] | None) -> str:
    """The report as HTML text (``media=None`` leaves the media out, to measure the page alone)."""
    from sgdtam_pipe.pipeline.version import __version__

    data = report_data(analysis, media, waveform)
    template = string.Template((ASSETS / "report.html").read_text("utf-8"))
    return template.substitute(
        title=html.escape(Path(analysis["source"]).name), tool_version=html.escape(__version__),
        style=(ASSETS / "report.css").read_text("utf-8"), script=(ASSETS / "report.js").read_text("utf-8"),
        data=script_json(data), media_kind=media.kind if media else "", media_mime=media.mime if media else "",
        media_base64=base64.b64encode(media.data).decode("ascii") if media else "")


def report_data(analysis: Mapping[str, Any], media: "EmbeddedMedia | None",
                waveform: dict[str, Any] | None) -> dict[str, Any]:
    """What the page's script reads: the analysis with each segment's modality availability spelled
    out, the clip's modalities in one line each, and the media's provenance."""
    modalities, trained = analysis["modalities"], analysis["checkpoint"].get("features")
    segments = []
    for segment in analysis["segments"]:
        states = availability(segment["observed"], segment["generated"])
        segments.append({**segment, "availability": {
            m: {"state": s, "reason": _segment_reason(modalities, m, s, trained)} for m, s in states.items()}})
    return {
        "source": analysis["source"], "duration": analysis["duration"], "overall": analysis["overall"],
        "segments": segments, "words": analysis["words"], "tracks": analysis.get("tracks", {}),
        "modalities": {m: _clip_modality(modalities[m]) for m in MODALITIES},
        "checkpoint": str(analysis["checkpoint"].get("name", "?")),
        "media": "none" if media is None else f"{media.how} ({media.mime}, {len(media.data) / 1e6:.2f} MB)",
        "waveform": waveform, "tool_version": analysis["tool_version"],
        "schema_version": analysis["schema_version"],
    }


def _segment_reason(modalities: Mapping[str, Any], modality: str, state: str,
                    trained: Mapping[str, Any] | None) -> str:
    if state == "observed":
        return ""
    if trained is not None and modality not in trained:
        why = "the checkpoint was not trained on it"
    elif not modalities[modality]["present"]:
        why = modalities[modality].get("reason") or "absent from the clip"
    else:
        why = f"no {modality} rows in this segment"
    return f"{why}; generated from the observed modalities" if state == "generated" else why


def _clip_modality(entry: dict[str, Any]) -> dict[str, str]:
    if not entry["present"]:
        return {"state": "missing", "detail": entry.get("reason") or ""}
    detail = f"{entry['real_rows']} of {entry['rows']} rows measured"
    if entry.get("transcript_source"):
        detail += f", transcript from {entry['transcript_source']}"
    return {"state": "observed", "detail": detail}


def audio_waveform(path: str | Path, peaks: int = WAVEFORM_PEAKS) -> dict[str, Any] | None:
    """The audio's envelope as ``peaks`` maxima of ``|sample|`` in [0, 1] over ``[start, end)``."""
    import numpy as np

    from sgdtam_pipe.core.media import decode_audio

    audio = decode_audio(path)
    if audio is None or not len(audio.samples):
        return None
    edges = np.linspace(0, len(audio.samples), peaks + 1).astype(int)
    magnitude = np.abs(audio.samples)
    values = [float(magnitude[a:b].max()) if b > a else 0.0 for a, b in zip(edges[:-1], edges[1:], strict=True)]
    top = max(max(values), 1e-9)
    return {"start": round(audio.start, 3), "end": round(audio.start + audio.duration, 3),
            "peaks": [round(v / top, 3) for v in values]}


def script_json(data: Any) -> str:
    """JSON that is safe inside ``<script>``: no ``</script>`` or ``<!--`` can be formed."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
