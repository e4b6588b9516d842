"""End-to-end speed as a user sees it: whole ``sgdtam-pipe analyze`` processes, cold and cached.

    .venv/bin/python -m bench.bench_e2e [--runs 3] [--long] [--only 3s 60s ...] [--no-readme]

Clips: the 3 s GRID example, and GRID looped to 60 s and to 10 minutes with
the bundled ffmpeg (h264 + aac: real speech and a real face all the way
through); ``--long`` adds a 60-minute audio-only file (GRID's audio looped,
AAC). For each clip, as separate processes:

- the decode floor: PyAV decoding every video frame and audio sample of the
  file (nothing else), the least any analysis of it must cost;
- cold: ``analyze CLIP --json OUT --cache-dir EMPTY`` (models load inside
  the measured time);
- cached: the same command again (features, and the scored result, cached).

Each figure is the median of ``--runs`` runs (one for clips of 10 minutes or
more). Printed and written to ``bench/results/e2e.json``: wall seconds,
× real time, × decode floor, cached / cold, and the peak resident memory of
the analyze process and its children (``wait4``). Unless ``--no-readme``,
the table in README.md between the ``bench:e2e`` markers is rewritten.
``--only`` measures some clips again and keeps the other rows of the last
results file. Run it on a quiet machine; the load average before each clip is
recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sgdtam_pipe.core.media import ffmpeg_exe, probe

ROOT = Path(__file__).resolve().parents[1]
GRID = ROOT / "examples" / "grid-bbaf2n.mpg"
RESULTS = ROOT / "bench" / "results" / "e2e.json"
README = ROOT / "README.md"
MARKERS = ("<!-- bench:e2e -->", "<!-- /bench:e2e -->")

DECODE_FLOOR = """
import sys, av
with av.open(sys.argv[1]) as container:
    for frame in container.decode(*container.streams):
        if frame.__class__.__name__ == "VideoFrame":
            frame.to_ndarray(format="rgb24")
        else:
            frame.to_ndarray()
"""


def looped(target: Path, loops: int, *, audio_only: bool = False) -> Path:
    """GRID repeated ``loops`` times (h264/aac mp4, or AAC audio only)."""
    if target.exists():
        return target
    video = ["-vn"] if audio_only else ["-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p"]
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(loops - 1),
                    "-i", str(GRID), *video, "-c:a", "aac", str(target)], check=True)
    return target


def run_measured(command: list[str]) -> tuple[float, float, str]:
    """Wall seconds and peak RSS in MB (the process and its waited-for children) of ``command``."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as err:
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=err, cwd=ROOT)
        _, status, usage = os.wait4(process.pid, 0)
        process.returncode = os.waitstatus_to_exitcode(status)
        seconds = time.perf_counter() - started
        err.seek(0)
        stderr = err.read().decode("utf-8", "replace")
    if process.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({process.returncode}): {stderr.strip()[-800:]}")
    return seconds, usage.ru_maxrss / 1024, stderr


CLIPS = {
    "3s": (GRID.name, 1),
    "60s": ("grid-60s.mp4", 20),
    "10min": ("grid-10min.mp4", 200),
    "60min-audio": ("grid-60min-audio.m4a", 1200),
}
"""Clip name → (file name, GRID loops); an ``.m4a`` is audio only."""


def clip_path(name: str, work: Path) -> Path:
    """The clip called ``name``, made in ``work`` on first use (the 3 s one is GRID itself)."""
    file_name, loops = CLIPS[name]
    if loops == 1:
        return GRID
    return looped(work / file_name, loops, audio_only=file_name.endswith(".m4a"))


def analyze_command(clip: Path, cache: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "sgdtam_pipe.pipeline.cli", "-q", "analyze", str(clip), "--json", str(out),
            "--cache-dir", str(cache)]


def measure(clip: Path, work: Path, runs: int) -> dict:
    duration = probe(clip).duration
    runs = 1 if duration >= 600 else runs
    load = os.getloadavg()[0]
    floor = [run_measured([sys.executable, "-c", DECODE_FLOOR, str(clip)])[0] for _ in range(runs)]
    cold, cached, peaks = [], [], []
    for k in range(runs):
        cache = work / f"cache-{clip.stem}-{k}"
        shutil.rmtree(cache, ignore_errors=True)  # cold means an empty cache
        out = work / f"{clip.stem}-{k}.json"
        seconds, peak, _ = run_measured(analyze_command(clip, cache, out))
        cold.append(seconds)
        peaks.append(peak)
        seconds, peak, _ = run_measured(analyze_command(clip, cache, out))
        cached.append(seconds)
        peaks.append(peak)
    row = {"clip": clip.name, "duration_s": round(duration, 2), "runs": runs, "load_before": round(load, 2),
           "decode_floor_s": statistics.median(floor), "cold_s": statistics.median(cold),
           "cached_s": statistics.median(cached), "peak_rss_mb": max(peaks)}
    row["cold_x_realtime"] = row["cold_s"] / duration
    row["cold_x_floor"] = row["cold_s"] / row["decode_floor_s"]
    row["cached_over_cold"] = row["cached_s"] / row["cold_s"]
    return row


def table(rows: list[dict]) -> str:
    lines = ["| clip | length | decode floor | cold analyze | × real time | × floor | cached | cached / cold "
             "| peak memory |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['clip']} | {r['duration_s']:.0f} s | {r['decode_floor_s']:.2f} s | {r['cold_s']:.1f} s "
                     f"| {r['cold_x_realtime']:.3f} | {r['cold_x_floor']:.0f} | {r['cached_s']:.2f} s "
                     f"| {r['cached_over_cold']:.3f} | {r['peak_rss_mb']:.0f} MB |")
    return "\n".join(lines)


def rewrite_readme(text: str, rows: list[dict], header: str) -> str:
    start, end = MARKERS
    if start not in text or end not in text:
        raise SystemExit(f"{README}: no {start} ... {end} block to rewrite")
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    return f"{before}{start}\n{header}\n\n{table(rows)}\n{end}{after}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--long", action="store_true", help="Also the 60-minute audio-only file.")
    parser.add_argument("--no-readme", action="store_true", help="Do not rewrite README.md's table.")
    parser.add_argument("--work", type=Path, help="Folder for the looped clips and caches (default: a temp dir).")
    parser.add_argument("--only", nargs="+", choices=list(CLIPS), help="Measure these clips; keep the other rows.")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="sgdtam-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    names = args.only or [name for name in CLIPS if args.long or name != "60min-audio"]
    kept = {r["clip"]: r for r in json.loads(RESULTS.read_text())["rows"]} if args.only and RESULTS.exists() else {}
    for name in names:
        row = measure(clip_path(name, work), work, args.runs)
        kept[row["clip"]] = row
        print(json.dumps(row), flush=True)
    order = [file_name for file_name, _ in CLIPS.values()]  # naming only: builds no clip
    rows = sorted(kept.values(), key=lambda r: order.index(r["clip"]) if r["clip"] in order else len(order))
    header = (f"Measured by `make bench` (`python -m bench.bench_e2e`) on {time.strftime('%Y-%m-%d')}, "
              f"{os.cpu_count()} cores ({platform.processor() or platform.machine()}), load before each clip "
              f"{', '.join(str(r['load_before']) for r in rows)}; median of {args.runs} whole processes "
              "(one for 10 minutes and more).")
    if args.only:
        header += f" Rows for {', '.join(args.only)} from a later run than the others."
    print(header + "\n\n" + table(rows))
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"header": header, "rows": rows}, indent=2) + "\n")
    if not args.no_readme:
        README.write_text(rewrite_readme(README.read_text(), rows, header))


if __name__ == "__main__":
    main()
