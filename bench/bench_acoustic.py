"""Acoustic extractor speed: real-time factor of each backend, from the media file.

Run ``python -m bench.bench_acoustic [--repeats N]``. Two inputs: the GRID
clip (3 s, mpeg1 video with mp2 audio) and 60 s of real speech made by looping
the GRID clip's audio 20 times with the bundled ffmpeg. Each backend setting
runs ``extract(path)`` (decoding included) once to warm up (imports, numba
compilation, the openSMILE engine) and then ``--repeats`` times; the table
shows the median wall-clock and CPU seconds per audio second. The machine is
shared, so the CPU figure (this process's own time) is the steadier one; the
load average is printed with it. Target: the opensmile backend at no more
than 0.05 x real time. Figures go to ``bench/results/acoustic.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from sgdtam_pipe.core.media import decode_audio, ffmpeg_exe
from sgdtam_pipe.core.timeline import TimedFeatures
from sgdtam_pipe.extractors.acoustic.frames import AcousticExtractor
from sgdtam_pipe.extractors.acoustic.librosa_frames import LibrosaExtractor
from sgdtam_pipe.extractors.acoustic.opensmile_frames import OpenSmileExtractor

GRID = Path(__file__).resolve().parent.parent / "examples" / "grid-bbaf2n.mpg"
RESULTS = Path(__file__).resolve().parent / "results" / "acoustic.json"
LOOPS = 20
TARGET_RTF = 0.05


def settings() -> dict[str, AcousticExtractor]:
    """The backend settings to time, by label."""
    return {
        "opensmile eGeMAPSv02": OpenSmileExtractor(pool_window=None),
        "opensmile ComParE_2016": OpenSmileExtractor(pool_window=None, feature_set="ComParE_2016"),
        "librosa pyin": LibrosaExtractor(pool_window=None),
        "librosa yin": LibrosaExtractor(pool_window=None, f0_method="yin"),
    }


def looped_speech(folder: Path) -> Path:
    """GRID's audio repeated ``LOOPS`` times as a 16 kHz mono wav (about 60 s of speech)."""
    target = folder / f"grid-x{LOOPS}.wav"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(LOOPS - 1),
                    "-i", str(GRID), "-vn", "-ac", "1", "-ar", "16000", str(target)], check=True)
    return target


def timed(extractor: AcousticExtractor, clip: Path) -> tuple[float, float, int]:
    """Wall and CPU seconds of one ``extract`` and the number of rows it gave."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = extractor.extract(clip)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    if not isinstance(result, TimedFeatures):
        raise SystemExit(f"{clip}: {result.reason}")
    return wall, cpu, len(result)


def measure(extractor: AcousticExtractor, clip: Path, seconds: float, repeats: int) -> dict[str, Any]:
    timed(extractor, clip)
    runs = [timed(extractor, clip) for _ in range(repeats)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    return {"rows": runs[0][2], "wall_s": wall, "cpu_s": cpu, "rtf_wall": wall / seconds, "rtf_cpu": cpu / seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as folder:
        clips = {"GRID 3 s": GRID, f"GRID x{LOOPS}": looped_speech(Path(folder))}
        durations = {label: decode_audio(path).duration for label, path in clips.items()}
        for name, extractor in settings().items():
            for label, clip in clips.items():
                figures = measure(extractor, clip, durations[label], args.repeats)
                rows.append({"backend": name, "clip": label, "audio_s": durations[label], **figures})
                print(f"  measured {name} on {label}", flush=True)
    print(f"\nload average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs; median of {args.repeats} runs")
    print(f"{'backend':<24} {'clip':<10} {'audio s':>8} {'rows':>6} {'wall s':>8} {'RTF wall':>9} {'RTF cpu':>8}")
    for r in rows:
        print(f"{r['backend']:<24} {r['clip']:<10} {r['audio_s']:>8.2f} {r['rows']:>6d} {r['wall_s']:>8.3f} "
              f"{r['rtf_wall']:>9.4f} {r['rtf_cpu']:>8.4f}")
    default = [r for r in rows if r["backend"] == "opensmile eGeMAPSv02"]
    for kind in ("wall", "cpu"):
        worst = max(r[f"rtf_{kind}"] for r in default)
        print(f"target: opensmile (eGeMAPSv02) <= {TARGET_RTF} x real time by {kind} clock: "
              f"{'met' if worst <= TARGET_RTF else 'NOT met'} (worst clip {worst:.4f})")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps({"load_average": os.getloadavg()[0], "repeats": args.repeats, "rows": rows},
                                  indent=2))


if __name__ == "__main__":
    main()
