"""An analysis as pandas tables, and the tables written as CSV and Parquet (``analyze --export``).

Segments and words come from the analysis document (``Result.to_json()``, so
a saved ``--json`` file makes the same tables), frames from the clip's features.

Three tables, each indexed by the interval its rows cover (seconds, ``[start, end)``):

- ``segments``: one row per scored segment, index ``(start, end)``; the score,
  polarity, confidence, one ``p_<class>`` column per class, the route, and one
  ``<modality>_state`` column per modality: ``observed``, ``generated`` or ``missing``.
- ``words``: one row per transcript word, index ``(start, end)``; its text,
  recogniser probability, whether its time was ``estimated``, and the
  position of the segment it falls in (empty when none).
- ``frames``: the audio and video rows the model saw, index
  ``(modality, start, end)``; ``observed`` (False for a row with no
  measurement, e.g. no face) and one column per feature (empty where the
  feature belongs to the other modality). Text rows are token embeddings:
  the ``words`` table stands for them.

Times are rounded to the millisecond, as in the JSON output, so a table and
the JSON agree exactly.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Mapping

from sgdtam_pipe.core.timeline import MODALITIES, ClipFeatures, TimedFeatures
from sgdtam_pipe.pipeline.schema import seconds

if TYPE_CHECKING:
    import pandas as pd

TABLES = ("segments", "words", "frames")
FRAME_MODALITIES = ("audio", "video")


def flatten(record: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """One level of scalars: nested mappings become ``outer.inner`` keys, lists of scalars are
    joined with ``+`` (as routes are), lists of anything else are left out."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten(value, f"{name}."))
        elif isinstance(value, (list, tuple)):
            if all(v is None or isinstance(v, (str, int, float, bool)) for v in value):
                flat[name] = "+".join(str(v) for v in value)
        else:
            flat[name] = value
    return flat


def availability(observed: Iterable[str], generated: Iterable[str]) -> dict[str, str]:
    """Each modality's state in one segment: ``observed``, ``generated`` or ``missing``."""
    observed, generated = set(observed), set(generated)
    return {m: "observed" if m in observed else "generated" if m in generated else "missing" for m in MODALITIES}


def segments_table(analysis: Mapping[str, Any]) -> "pd.DataFrame":
    """The segments of an ``analysis`` document (``Result.to_json()``)."""
    import pandas as pd

    rows = []
    for segment in analysis["segments"]:
        row = dict(segment)
        probabilities = row.pop("probabilities") or {}
        states = availability(segment["observed"], segment["generated"])
        rows.append({**flatten(row), **{f"p_{k}": v for k, v in probabilities.items()},
                     **{f"{m}_state": state for m, state in states.items()}})
    return _indexed(pd.DataFrame(rows), ["start", "end"])


def words_table(analysis: Mapping[str, Any]) -> "pd.DataFrame":
    """The words of an ``analysis`` document, each with the position of its segment."""
    import pandas as pd

    spans = [(s["start"], s["end"]) for s in analysis["segments"]]
    rows = [{**word, "segment": _segment_of(word["start"], spans)} for word in analysis["words"]]
    frame = pd.DataFrame(rows, columns=["start", "end", "text", "probability", "estimated", "segment"])
    frame["segment"] = frame["segment"].astype("Int64")
    return _indexed(frame, ["start", "end"])


def frames_table(features: ClipFeatures | None) -> "pd.DataFrame":
    """The audio and video rows of ``features``."""
    import pandas as pd

    parts = []
    for name in FRAME_MODALITIES:
        stream = features.modality(name) if features is not None else None
        if not isinstance(stream, TimedFeatures):
            continue
        part = pd.DataFrame(stream.values, columns=list(stream.names))
        part.insert(0, "observed", stream.mask)
        part.insert(0, "end", [seconds(t) for t in stream.end])
        part.insert(0, "start", [seconds(t) for t in stream.start])
        part.insert(0, "modality", name)
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(
        columns=["modality", "start", "end", "observed"])
    return _indexed(frame, ["modality", "start", "end"])


def write_tables(analysis: Mapping[str, Any], features: ClipFeatures | None, folder: str | Path) -> list[Path]:
    """``segments``, ``words`` and ``frames`` as ``.csv`` and ``.parquet`` in ``folder``, each atomically."""
    import io

    from sgdtam_pipe.core.records_io import atomic_write_bytes

    folder = Path(folder)
    written = []
    for name, table in (("segments", segments_table(analysis)), ("words", words_table(analysis)),
                        ("frames", frames_table(features))):
        atomic_write_bytes(folder / f"{name}.csv", table.to_csv().encode("utf-8"))
        buffer = io.BytesIO()
        table.to_parquet(buffer)
        atomic_write_bytes(folder / f"{name}.parquet", buffer.getvalue())
        written += [folder / f"{name}.csv", folder / f"{name}.parquet"]
    return written


def _segment_of(time: float, spans: list[tuple[float, float]]) -> int | None:
    return next((i for i, (start, end) in enumerate(spans) if start <= time < end), None)


def _indexed(frame: "pd.DataFrame", index: list[str]) -> "pd.DataFrame":
    for column in index:
        if column not in frame:
            frame[column] = []
    return frame.set_index(index)
