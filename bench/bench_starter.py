"""Does the starter checkpoint's answer depend on what is said and shown? Real clips, the real pipeline.

- GRID with sidecars of clearly negative and clearly positive sentences (the same voice and face every time):
  how often the two overall scores have opposite signs, and the scores.
- ``pexels-crying-to-laughing.mp4`` (silent close-up, crying then laughing): mean score of its first and
  last quarter.

    .venv/bin/python -m bench.bench_starter [--checkpoint DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
import time
from pathlib import Path

from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, analyze
from sgdtam_pipe.pipeline.scoring import load_scorer

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "examples" / "grid-bbaf2n.mpg"
PEXELS = ROOT / "examples" / "pexels-crying-to-laughing.mp4"
NEGATIVE = ("I absolutely hate this, it is awful and terrible.", "This is the worst day of my life.",
            "I am so angry and disappointed with you.", "Everything went wrong and I feel miserable.",
            "That was a horrible, disgusting experience.")
POSITIVE = ("I love this so much, it is wonderful and great.", "This is the best day of my life.",
            "I am so happy and proud of you.", "Everything went right and I feel fantastic.",
            "That was a lovely, delightful experience.")


def sidecar_score(text: str, folder: Path, scorer, cache: Path) -> float:
    """Overall score of GRID with ``text`` as its one cue over the speech (0.5-2.8 s)."""
    sidecar = folder / f"{hashlib.sha256(text.encode()).hexdigest()[:12]}.srt"
    sidecar.write_text(f"1\n00:00:00,500 --> 00:00:02,800\n{text}\n", encoding="utf-8")
    result = analyze(GRID, AnalyzeOptions(transcript=sidecar, cache_dir=cache), scorer=scorer)
    return float(result.overall.score)


def quarter_means(result) -> tuple[float, float]:
    """Duration-weighted mean score over the first and the last quarter of the clip."""
    quarter = result.duration / 4

    def mean(lo: float, hi: float) -> float:
        parts = [(min(s.end, hi) - max(s.start, lo), s.score.score) for s in result.segments
                 if s.score.score is not None and min(s.end, hi) > max(s.start, lo)]
        return sum(w * v for w, v in parts) / sum(w for w, _ in parts)

    return mean(0.0, quarter), mean(result.duration - quarter, result.duration)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path)
    args = parser.parse_args()
    scorer = load_scorer(args.checkpoint)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        folder, cache = Path(tmp), Path(tmp) / "cache"
        pairs = [(sidecar_score(n, folder, scorer, cache), sidecar_score(p, folder, scorer, cache))
                 for n, p in zip(NEGATIVE, POSITIVE)]
        first, last = quarter_means(analyze(PEXELS, AnalyzeOptions(cache_dir=cache), scorer=scorer))
    report = {"checkpoint": str(args.checkpoint or "starter"),
              "grid_pairs": [{"negative": round(n, 3), "positive": round(p, 3)} for n, p in pairs],
              "grid_opposite_signs": sum(n < 0 < p for n, p in pairs), "grid_pairs_total": len(pairs),
              "pexels_first_quarter": round(first, 3), "pexels_last_quarter": round(last, 3),
              "seconds": round(time.perf_counter() - started, 1)}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
