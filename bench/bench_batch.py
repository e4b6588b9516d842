"""Batch throughput (clips per second) of ``run_batch`` with 1 and 2 workers.

    python -m bench.bench_batch                       # the decode job below, 12 clips
    python -m bench.bench_batch --job pipeline.analyze:some_job --clips 8

The clips are remuxed copies of the example clips (``-c copy`` into ``.mkv``
with a distinct title), so every copy decodes like the original but has its
own content hash: a job that uses the feature cache misses it, and each
worker count runs with a fresh, empty cache (``SGDTAM_CACHE_DIR``). The job is
any one-argument callable named ``module:function``. Figures go to stdout and
to ``bench/results/bench_batch.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
from pathlib import Path

from sgdtam_pipe.core.media import MediaError, decode_audio, ffmpeg_exe, iter_frames, probe
from sgdtam_pipe.pipeline.batch import load_job, run_batch
from sgdtam_pipe.pipeline.errors import StageError
from sgdtam_pipe.pipeline.runstate import RunState

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = (REPO / "examples" / "grid-bbaf2n.mpg", REPO / "examples" / "pexels-crying-to-laughing.mp4")
RESULTS = REPO / "bench" / "results" / "bench_batch.json"


def decode_job(path: str) -> dict:
    """Probe, decode the audio at 16 kHz and every video frame at 15 fps: the media cost of a clip."""
    try:
        info = probe(path)
        track = decode_audio(path)
        frames = sum(1 for _ in iter_frames(path))
    except MediaError as exc:
        raise StageError("media", exc.reason) from exc
    return {"duration": info.duration, "audio_samples": 0 if track is None else len(track.samples),
            "frames": frames}


def make_clips(folder: Path, count: int) -> float:
    """``count`` distinct remuxed copies of the examples in ``folder``; returns their total duration."""
    folder.mkdir(parents=True, exist_ok=True)
    total = 0.0
    for i in range(count):
        source = EXAMPLES[i % len(EXAMPLES)]
        target = folder / f"{source.stem}-{i:03d}.mkv"
        subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-i", str(source), "-c", "copy",
                        "-metadata", f"title=bench copy {i}", str(target)], check=True)
        total += probe(target).duration
    return total


def measure(clips: Path, work: Path, job_spec: str, workers: int, media_seconds: float) -> dict:
    out = work / f"out-{workers}"
    os.environ["SGDTAM_CACHE_DIR"] = str(work / f"cache-{workers}")  # inherited by spawned workers
    began = time.perf_counter()
    summary = run_batch(clips, out_dir=out, job=load_job(job_spec), workers=workers)
    wall = time.perf_counter() - began
    with RunState(out / "run.sqlite") as state:
        job_seconds = [r.seconds for r in state.rows() if r.seconds is not None]
        failures = [(r.path, r.stage, r.reason) for r in state.rows("failed")]
    return {"workers": workers, "clips": summary.processed, "done": summary.counts["done"],
            "failed": summary.counts["failed"], "wall_s": round(wall, 3),
            "clips_per_s": round(summary.processed / wall, 3),
            "media_s_per_wall_s": round(media_seconds / wall, 2),
            "mean_job_s": round(sum(job_seconds) / max(1, len(job_seconds)), 3),
            "failures": failures[:5]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job", default="bench.bench_batch:decode_job", help="module:function (default: %(default)s)")
    parser.add_argument("--clips", type=int, default=12, help="clips in the folder (default: %(default)s)")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2], help="worker counts (default: 1 2)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp:
        work = Path(tmp)
        media_seconds = make_clips(work / "clips", args.clips)
        runs = [measure(work / "clips", work, args.job, n, media_seconds) for n in args.workers]
    report = {"job": args.job, "clips": args.clips, "media_seconds": round(media_seconds, 2),
              "cpus": os.cpu_count(), "python": platform.python_version(), "runs": runs}
    print(f"job {args.job}: {args.clips} clips, {media_seconds:.1f} s of media, {os.cpu_count()} CPUs")
    for run in runs:
        print(f"  workers={run['workers']}: {run['clips_per_s']:.2f} clips/s, {run['wall_s']:.2f} s wall, "
              f"{run['media_s_per_wall_s']:.1f} s of media per s, mean {run['mean_job_s']:.3f} s per clip, "
              f"{run['done']} done, {run['failed']} failed")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(f"written to {RESULTS.relative_to(REPO)}")


if __name__ == "__main__":
    main()
