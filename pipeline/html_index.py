"""``batch --html``: ``index.html`` beside the results, one row per clip, linking each clip's report.

Built from ``results.jsonl``, so it lists every clip the run state knows
(done, failed or pending), with the report link relative to the index.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from sgdtam_pipe.pipeline.html_report import ASSETS

INDEX_HTML = "index.html"
COLUMNS = ("clip", "status", "score", "polarity", "confidence", "duration (s)", "text", "audio", "video", "reason")


def write_index(out_dir: str | Path, jsonl: str | Path) -> Path:
    """Write ``out_dir/index.html`` atomically from the batch records in ``jsonl``."""
    from sgdtam_pipe.core.records_io import atomic_write_bytes

    out_dir = Path(out_dir)
    records = [json.loads(line) for line in Path(jsonl).read_text("utf-8").splitlines() if line.strip()]
    target = out_dir / INDEX_HTML
    atomic_write_bytes(target, index_page(records, title=f"sgdtam-pipe batch: {out_dir.name}").encode("utf-8"))
    return target


def index_page(records: Iterable[Mapping[str, Any]], *, title: str) -> str:
    rows = "\n".join(_row(record) for record in records)
    head = "".join(f"<th>{html.escape(c)}</th>" for c in COLUMNS)
    return (f"<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{(ASSETS / 'report.css').read_text('utf-8')}</style></head><body>"
            f"<h1>{html.escape(title)}</h1><table><thead><tr>{head}</tr></thead><tbody>\n{rows}\n"
            "</tbody></table></body></html>\n")


def _row(record: Mapping[str, Any]) -> str:
    result = record.get("result") or {}
    name = html.escape(Path(record["path"]).name)
    clip = f"<a href=\"{html.escape(result['report'])}\">{name}</a>" if result.get("report") else name
    cells = [clip, _text(record.get("status")), _number(result.get("score"), "+.2f"), _text(result.get("polarity")),
             _number(result.get("confidence"), ".2f"), _number(result.get("duration"), ".2f"),
             _text(result.get("text")), _text(result.get("audio")), _text(result.get("video")),
             _text(" ".join(filter(None, (record.get("stage"), record.get("reason")))))]
    return "<tr>" + "".join(f"<td class=\"num\">{c}</td>" if i in (2, 4, 5) else f"<td>{c}</td>"
                            for i, c in enumerate(cells)) + "</tr>"


def _text(value: Any) -> str:
    return "" if value is None else html.escape(str(value))


def _number(value: Any, spec: str) -> str:
    return "" if not isinstance(value, (int, float)) else format(value, spec)
