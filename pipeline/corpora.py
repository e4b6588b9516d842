"""Labels CSVs for the public corpora the starter checkpoint learns from, and the emotion → sentiment mapping.

Each builder reads a corpus folder in place (nothing is copied) and returns
rows for :func:`pipeline.dataset.build_dataset`: ``clip`` (a path relative to
the media root given to ``extract``) or ``text``, ``label`` (negative /
neutral / positive), ``split``, optional ``start``/``end``, and ``group`` (the
corpus name, which the trainer balances across).

The mapping from emotion categories to polarity is a modelling choice, made
here once (the model card prints :data:`POLARITY_REASONS`):

- happy → positive; sad, angry, fearful, disgust → negative; neutral → neutral.
- **calm → positive**: in the circumplex model of affect calm is low-arousal,
  pleasant valence; RAVDESS actors were asked to sound at ease, not flat (their
  neutral class covers flat). This matches the reference baselines in
  ``shared/baselines``, so figures can be compared.
- **surprised → left out**: surprise is as often pleasant as unpleasant, and
  neither corpus says which; forcing it into one class would teach noise.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

from sgdtam_pipe.core.errors import UserError
from sgdtam_pipe.core.records_io import atomic_write_bytes

EMOTION_POLARITY: dict[str, str | None] = {
    "neutral": "neutral", "calm": "positive", "happy": "positive",
    "sad": "negative", "angry": "negative", "fearful": "negative", "fear": "negative", "disgust": "negative",
    "surprised": None, "surprise": None,
}
POLARITY_REASONS = {
    "calm": "positive: low-arousal, pleasant valence in the circumplex model (as in shared/baselines)",
    "surprised": "left out: surprise is pleasant or unpleasant and the corpus does not say which",
}
RAVDESS_EMOTIONS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad",
                    "05": "angry", "06": "fearful", "07": "disgust", "08": "surprised"}
RAVDESS_DEV_ACTORS = frozenset({17, 18, 19, 20})
"""Two male and two female voices; actors 21–24 are withheld outside the repository for an independent test."""
MELD_SPLITS = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv"}
FER_SPLITS = ("train", "dev")
COLUMNS = ("clip", "text", "label", "split", "start", "end", "group")


@dataclass(frozen=True)
class LabelledItem:
    """One row of a labels CSV."""

    label: str
    split: str
    group: str
    clip: str = ""
    text: str = ""
    start: float | None = None
    end: float | None = None

    def row(self) -> list[str]:
        span = ["" if t is None else f"{t:.3f}" for t in (self.start, self.end)]
        return [self.clip, self.text, self.label, self.split, *span, self.group]


def polarity(emotion: str) -> str | None:
    """The sentiment of an emotion name (``None``: left out); unknown names are an error."""
    try:
        return EMOTION_POLARITY[emotion.lower()]
    except KeyError:
        raise UserError(f"no sentiment mapping for emotion {emotion!r}") from None


def ravdess_items(root: Path, media_root: Path, dev_actors: Iterable[int] = RAVDESS_DEV_ACTORS) -> Iterator[LabelledItem]:
    """RAVDESS speech files: emotion from the third field of ``03-01-EE-II-SS-RR-AA``, split by actor."""
    dev = set(dev_actors)
    files = sorted(root.glob("Actor_*/*.flac")) + sorted(root.glob("Actor_*/*.wav"))
    if not files:
        raise UserError(f"{root}: no RAVDESS Actor_*/*.flac or *.wav files")
    for path in files:
        fields = path.stem.split("-")
        if len(fields) != 7 or fields[2] not in RAVDESS_EMOTIONS:
            raise UserError(f"{path}: not a RAVDESS file name (03-01-EE-II-SS-RR-AA)")
        label = polarity(RAVDESS_EMOTIONS[fields[2]])
        if label is not None:
            split = "dev" if int(fields[6]) in dev else "train"
            yield LabelledItem(label, split, "ravdess", clip=str(path.relative_to(media_root)))


def fer2013_items(root: Path, media_root: Path, train_limit: int | None = None) -> Iterator[LabelledItem]:
    """FER2013 photos, labelled by their class folder; ``train_limit`` keeps an evenly spaced, class-stratified subset of train."""
    for split in FER_SPLITS:
        folders = sorted(p for p in (root / split).iterdir() if p.is_dir()) if (root / split).is_dir() else []
        if not folders:
            raise UserError(f"{root / split}: no class folders")
        photos = {f.name: sorted(f.glob("*.png")) for f in folders if polarity(f.name) is not None}
        total = sum(len(p) for p in photos.values())
        for name, paths in photos.items():
            keep = paths if split != "train" or not train_limit or train_limit >= total else \
                _evenly(paths, round(len(paths) * train_limit / total))
            for path in keep:
                yield LabelledItem(polarity(name), split, "fer2013", clip=str(path.relative_to(media_root)))


def _evenly(items: list[Path], count: int) -> list[Path]:
    """``count`` items spread evenly over ``items`` (deterministic)."""
    if count <= 0:
        return []
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]


def meld_items(root: Path) -> Iterator[LabelledItem]:
    """MELD utterances as transcript-only rows; the span is the utterance's length from MELD's own times."""
    for split, name in MELD_SPLITS.items():
        with open(root / name, newline="", encoding="utf-8") as handle:
            for row in csv.DictReader(handle):
                text = " ".join(row["Utterance"].replace("\u2019", "'").split())
                if not text:
                    continue
                length = _seconds(row["EndTime"]) - _seconds(row["StartTime"])
                end = length if length > 0.05 else None  # a few MELD rows carry broken times: word-rate guess
                yield LabelledItem(row["Sentiment"], split, "meld", text=text,
                                   start=0.0 if end is not None else None, end=end)


def _seconds(stamp: str) -> float:
    """MELD's ``hh:mm:ss,ms`` as seconds."""
    clock, _, millis = stamp.strip().partition(",")
    hours, minutes, secs = (int(x) for x in clock.split(":"))
    return hours * 3600 + minutes * 60 + secs + int(millis or 0) / 1000


def write_labels(items: Iterable[LabelledItem], target: Path) -> int:
    """Write a labels CSV atomically; returns the number of rows."""
    buffer = io.StringIO(newline="")
    writer = csv.writer(buffer)
    writer.writerow(COLUMNS)
    rows = [item.row() for item in items]
    writer.writerows(rows)
    atomic_write_bytes(target, buffer.getvalue().encode("utf-8"))
    return len(rows)
