"""End-to-end benchmark: seconds of work per minute of video, cold and cached; peak memory on 10 minutes.

    .venv/bin/python -m bench.bench_pipeline [--long-minutes 10] [--skip-long]

Clips are the GRID example looped with the bundled ffmpeg (real speech and a
real face all the way through). Each measurement runs ``sgdtam-pipe analyze``
in a fresh process (models load inside the measured time, as a user sees it),
with all extractors at default settings. Cold: an empty cache; cached: the
same command again. Wall time includes interpreter and library start-up
(about 2 s here, mostly importing torch). "analyze() in one process" calls the
Python API twice in one process, as a notebook or a batch worker does: the
second call reads every modality from the cache. Peak memory is the child's maximum resident set size.
Writes ``bench/results/pipeline.json``. Targets: cold <= 0.5 x real time,
cached >= 20 x faster than cold, peak memory < 2 GB on the 10-minute clip.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sgdtam_pipe.core.media import ffmpeg_exe, probe

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "examples" / "grid-bbaf2n.mpg"


def looped(target: Path, loops: int) -> Path:
    """GRID repeated ``loops`` times, re-encoded to h264/aac mp4."""
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(loops - 1),
                    "-i", str(GRID), "-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
                    "-c:a", "aac", str(target)], check=True)
    return target


def timed_analyze(clip: Path, cache: Path) -> tuple[float, float, dict]:
    """Wall seconds, peak RSS in MB, and the JSON result of one ``analyze`` in a child process."""
    command = [sys.executable, "-m", "sgdtam_pipe.pipeline.cli", "analyze", str(clip), "--json", "-", "--cache-dir", str(cache)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"analyze failed on {clip}: {out.stderr.strip()[-500:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return seconds, max(peak, before) / 1024, json.loads(out.stdout)


IN_PROCESS = """
import json, sys, time
from pathlib import Path
from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, analyze
options = AnalyzeOptions(cache_dir=Path(sys.argv[2]))
started = time.perf_counter(); analyze(sys.argv[1], options); cold = time.perf_counter() - started
started = time.perf_counter(); analyze(sys.argv[1], options); cached = time.perf_counter() - started
print(json.dumps({"cold": cold, "cached": cached}))
"""


def in_process(clip: Path, cache: Path) -> dict:
    """Cold then cached ``analyze()`` in one process (a notebook, or a batch worker's second clip)."""
    out = subprocess.run([sys.executable, "-c", IN_PROCESS, str(clip), str(cache)], capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)), cwd=ROOT, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure(clip: Path, work: Path) -> dict:
    duration = probe(clip).duration
    cache = work / f"cache-{clip.stem}"
    cold, cold_mb, result = timed_analyze(clip, cache)
    cached, cached_mb, cached_result = timed_analyze(clip, cache)
    cold_work, cached_work = sum(result["timings_s"].values()), sum(cached_result["timings_s"].values())
    api = in_process(clip, work / f"cache-api-{clip.stem}")
    row = {"clip": clip.name, "duration_s": round(duration, 2), "cold_s": round(cold, 2), "cached_s": round(cached, 2),
           "cold_work_s": round(cold_work, 2), "cached_work_s": round(cached_work, 3),
           "work_speedup": round(cold_work / max(cached_work, 1e-6), 1),
           "api_cold_s": round(api["cold"], 2), "api_cached_s": round(api["cached"], 3),
           "api_speedup": round(api["cold"] / api["cached"], 1),
           "cold_rtf": round(cold / duration, 3), "cached_rtf": round(cached / duration, 4),
           "cold_s_per_min": round(60 * cold / duration, 1), "cached_s_per_min": round(60 * cached / duration, 2),
           "speedup": round(cold / cached, 1), "peak_rss_mb": round(max(cold_mb, cached_mb)),
           "stage_timings_cold": result["timings_s"], "stage_timings_cached": cached_result["timings_s"],
           "segments": len(result["segments"])}
    print(json.dumps(row), flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--long-minutes", type=float, default=10.0)
    parser.add_argument("--skip-long", action="store_true")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        rows.append(measure(GRID, work))
        rows.append(measure(looped(work / "grid-60s.mp4", 20), work))
        if not args.skip_long:
            loops = int(round(args.long_minutes * 60 / 3.0))
            rows.append(measure(looped(work / f"grid-{args.long_minutes:g}min.mp4", loops), work))
    report = {"cpus": os.cpu_count(), "load_average": os.getloadavg(), "rows": rows}
    out = ROOT / "bench" / "results" / "pipeline.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    for row in rows:
        print(f"{row['clip']:<22} {row['duration_s']:7.1f} s  cold {row['cold_s']:7.1f} s "
              f"({row['cold_rtf']:.3f} x RT)  cached {row['cached_s']:6.2f} s  speed-up {row['speedup']:5.1f}x "
              f"| analyze() in one process: cold {row['api_cold_s']:.1f} s, cached {row['api_cached_s']:.2f} s, "
              f"{row['api_speedup']}x | peak {row['peak_rss_mb']} MB")


if __name__ == "__main__":
    main()
