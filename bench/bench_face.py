"""Face extractor speed: processed frames per second on both examples at 15 fps sampling.

Run ``python -m bench.bench_face [--repeats N]``. For each clip it prints the
end-to-end rate (``extract()`` wall time: probe, model load, decoding,
landmarker) and the steady rate (between the first and last progress report,
so model set-up is left out), the median over the repeats, and writes them to
``bench/results/face.json``. The target is 60 processed frames per second.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

from extractors.face import FaceExtractor
from extractors.timeline import TimedFeatures

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLIPS = ("grid-bbaf2n.mpg", "pexels-crying-to-laughing.mp4")
TARGET_FPS = 60.0


def measure(clip: Path, fps: float) -> dict[str, float]:
    """One run: frames, end-to-end and steady processed frames per second."""
    reports: list[tuple[float, int]] = []
    extractor = FaceExtractor(fps=fps)
    began = time.perf_counter()
    result = extractor.extract(clip, hook=lambda step, info: reports.append((time.perf_counter(), info["done"])))
    wall = time.perf_counter() - began
    if not isinstance(result, TimedFeatures):
        raise SystemExit(f"{clip}: {result.reason}")
    (t0, n0), (t1, n1) = reports[0], reports[-1]
    return {"frames": len(result), "face_share": float(result.mask.mean()), "seconds": wall,
            "end_to_end_fps": len(result) / wall, "steady_fps": (n1 - n0) / (t1 - t0) if t1 > t0 else float("nan")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fps", type=float, default=15.0)
    args = parser.parse_args()
    results = {}
    for name in CLIPS:
        runs = [measure(EXAMPLES / name, args.fps) for _ in range(args.repeats)]
        summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
        results[name] = summary
        print(f"{name}: {summary['frames']:.0f} frames at {args.fps:g} fps sampling, face in {summary['face_share']:.0%}; "
              f"end-to-end {summary['end_to_end_fps']:.1f} frames/s ({summary['seconds']:.2f} s), "
              f"steady {summary['steady_fps']:.1f} frames/s (median of {args.repeats}; target {TARGET_FPS:g})")
    out = Path(__file__).resolve().parent / "results" / "face.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"cpus": os.cpu_count(), "sampling_fps": args.fps, "clips": results}, indent=2))


if __name__ == "__main__":
    main()
