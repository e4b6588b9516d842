"""Face extractor speed: processed frames per second on both examples at 15 fps sampling.

Run ``python -m bench.bench_face [--repeats N]``. For each clip it prints the
end-to-end rate (``extract()`` wall time: probe, model load, decoding,
landmarker) and the steady rate (between the first and last progress report,
so model set-up is left out), the process CPU time per frame (all threads:
what the work costs whatever else runs on the machine), the median over the
repeats, and the load average before the run, and writes them to
``bench/results/face.json``. The target is 60 processed frames per second.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

from sgdtam_pipe.core.timeline import TimedFeatures
from sgdtam_pipe.extractors.face.landmarker import FaceExtractor

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
CLIPS = ("grid-bbaf2n.mpg", "pexels-crying-to-laughing.mp4")
TARGET_FPS = 60.0


def measure(clip: Path, fps: float) -> dict[str, float | None]:
    """One run: frames, face share, wall seconds, CPU per frame, end-to-end and steady frames per second."""
    reports: list[tuple[float, int]] = []
    extractor = FaceExtractor(fps=fps)
    cpu, began = _cpu_seconds(), time.perf_counter()
    result = extractor.extract(clip, hook=lambda step, info: reports.append((time.perf_counter(), info["done"])))
    wall, cpu = time.perf_counter() - began, _cpu_seconds() - cpu
    if not isinstance(result, TimedFeatures):
        raise SystemExit(f"{clip}: {result.reason}")
    (t0, n0), (t1, n1) = reports[0], reports[-1]  # a clip of under three chunks reports once: no steady rate
    return {"frames": len(result), "face_share": float(result.mask.mean()), "seconds": wall,
            "cpu_ms_per_frame": 1000 * cpu / len(result), "end_to_end_fps": len(result) / wall,
            "steady_fps": (n1 - n0) / (t1 - t0) if t1 > t0 else None}


def median(runs: list[dict[str, float | None]], key: str) -> float | None:
    values = [run[key] for run in runs if run[key] is not None]
    return statistics.median(values) if values else None


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _rate(fps: float | None) -> str:
    return "n/a (clip too short)" if fps is None else f"{fps:.1f} frames/s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fps", type=float, default=15.0)
    args = parser.parse_args()
    results = {}
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.2f} before the run")
    for name in CLIPS:
        runs = [measure(EXAMPLES / name, args.fps) for _ in range(args.repeats)]
        summary = {key: median(runs, key) for key in runs[0]}
        results[name] = summary
        print(f"{name}: {summary['frames']:.0f} frames at {args.fps:g} fps sampling, "
              f"face in {summary['face_share']:.0%}; "
              f"end-to-end {summary['end_to_end_fps']:.1f} frames/s ({summary['seconds']:.2f} s), "
              f"steady {_rate(summary['steady_fps'])}, CPU {summary['cpu_ms_per_frame']:.1f} ms/frame "
              f"(median of {args.repeats}; target {TARGET_FPS:g} frames/s)")
    out = Path(__file__).resolve().parent / "results" / "face.json"
    out.parent.mkdir(exist_ok=True)
    report = {"cpus": os.cpu_count(), "load_average": load, "sampling_fps": args.fps, "clips": results}
    out.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
