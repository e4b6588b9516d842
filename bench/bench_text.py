"""Text extractor speed: real-time factor of recognition plus embedding.

Run ``python -m bench.bench_text [--repeats N] [--threads T] [--beams 1 5]
[--chunkings vad utterance]``. Two inputs: the GRID clip (3 s) and 60 s of
real speech made by looping the GRID clip's audio 20 times with the bundled
ffmpeg. For each beam size and chunking it times ``transcribe`` (decoding,
VAD, Whisper tiny.en int8 with word times) and ``embed`` (MiniLM) separately,
with the models already loaded (the one-off load is printed on its own), and
prints the median over the repeats of ``(transcribe + embed) / audio seconds``.
Target: at most 0.15. As a sanity check on the output it also prints how many
times "now" (the last word of each of the 20 sentences) was recognised and how
far its times are from the true ends. Figures go to ``bench/results/text.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from extractors.media import decode_audio, ffmpeg_exe
from extractors.text import TextExtractor
from extractors.alignment import normalise
from extractors.timeline import TimedFeatures

GRID = Path(__file__).resolve().parent.parent / "examples" / "grid-bbaf2n.mpg"
LOOPS = 20
TARGET_RTF = 0.15
GRID_NOW_END = 2.33  # where "now" ends in the GRID clip (recognised alone: 2.33 s; by ear about 2.3 s)


def looped_speech(folder: Path) -> Path:
    """GRID's audio repeated ``LOOPS`` times as a 16 kHz mono wav (about 60 s of speech)."""
    import subprocess

    target = folder / f"grid-x{LOOPS}.wav"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(LOOPS - 1),
                    "-i", str(GRID), "-vn", "-ac", "1", "-ar", "16000", str(target)], check=True)
    return target


def measure(extractor: TextExtractor, clip: Path, seconds: float) -> dict[str, float]:
    began = time.perf_counter()
    transcript = extractor.transcribe(clip)
    middle = time.perf_counter()
    features = extractor.embed(transcript)
    done = time.perf_counter()
    if not isinstance(features, TimedFeatures):
        raise SystemExit(f"{clip}: {features.reason}")
    nows = [w.end for w in transcript.words if normalise(w.text) == "now"]
    return {"words": len(transcript.words), "nows": len(nows), "tokens": len(features),
            "transcribe_s": middle - began, "embed_s": done - middle, "rtf": (done - began) / seconds,
            "now_error_s": _now_error(nows, seconds)}


def _now_error(nows: list[float], seconds: float) -> float:
    """Median distance from each true sentence end to the nearest recognised "now" end."""
    if not nows:
        return float("nan")
    period = seconds / LOOPS if seconds > 10 else seconds
    loops = LOOPS if seconds > 10 else 1
    truth = [k * period + GRID_NOW_END for k in range(loops)]
    return statistics.median(min(abs(t - n) for n in nows) for t in truth)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beams", type=int, nargs="+", default=[1, 5])
    parser.add_argument("--chunkings", nargs="+", default=["vad", "utterance"])
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {"grid-bbaf2n.mpg": GRID, f"grid-x{LOOPS}.wav": looped_speech(Path(tmp))}
        durations = {name: decode_audio(path).duration for name, path in clips.items()}
        for beam in args.beams:
            for chunking in args.chunkings:
                extractor = TextExtractor(source="asr", beam_size=beam, chunking=chunking, threads=args.threads)
                began = time.perf_counter()
                extractor.extract(GRID)  # loads both models (cached per process) and warms them
                print(f"beam {beam}, chunking {chunking}: first GRID run (loads models once per process) "
                      f"{time.perf_counter() - began:.2f} s")
                for name, path in clips.items():
                    runs = [measure(extractor, path, durations[name]) for _ in range(args.repeats)]
                    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0]}
                    results[f"{name} beam={beam} chunking={chunking}"] = dict(summary, audio_s=durations[name])
                    verdict = "meets" if summary["rtf"] <= TARGET_RTF else "misses"
                    print(f"  {name} ({durations[name]:.1f} s audio), {args.threads} threads: {summary['words']:.0f} "
                          f"words, {summary['nows']:.0f} x 'now' (median end error {summary['now_error_s']:.2f} s), "
                          f"{summary['tokens']:.0f} tokens; transcribe {summary['transcribe_s']:.2f} s + embed "
                          f"{summary['embed_s']:.3f} s = RTF {summary['rtf']:.3f} ({verdict} target {TARGET_RTF}; "
                          f"median of {args.repeats})")
    out = Path(__file__).resolve().parent / "results" / "text.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"cpus": os.cpu_count(), "threads": args.threads, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
