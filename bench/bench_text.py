"""Text extractor speed: real-time factor of recognition plus embedding.

Run ``python -m bench.bench_text [--repeats N] [--threads T] [--beams 1 5]
[--chunkings utterance regions vad none] [--windows 30 10] [--no-grammar]``. Two inputs: the
GRID clip (3 s) and 60 s of real speech made by looping the GRID clip's audio
20 times with the bundled ffmpeg. For each Whisper setting (beam size,
chunking, encoder window) and for PocketSphinx held to the GRID grammar it
times ``transcribe`` (decoding, VAD, recognition with word times) and
``embed`` (MiniLM) separately,
with the models already loaded (the one-off load is printed on its own), and
prints the median over the repeats of ``(transcribe + embed) / audio seconds``.
Target: at most 0.15. As a check on the output it prints how many times "now"
(the last word of each of the 20 sentences) was recognised in the long input,
and the median distance between each loop's "now" end and the end recognised
in the clip alone, shifted by the loop's offset (0 when looping changes nothing).
Wall time suffers from other work on a shared machine; the process's CPU
seconds per audio second (all threads together) are printed beside it. Figures go to ``bench/results/text.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

from sgdtam_pipe.core.media import decode_audio, ffmpeg_exe
from sgdtam_pipe.core.timeline import TimedFeatures
from sgdtam_pipe.extractors.text.embedding import TextExtractor
from sgdtam_pipe.extractors.text.forced_alignment import normalise

GRID = Path(__file__).resolve().parent.parent / "examples" / "grid-bbaf2n.mpg"
GRAMMAR = GRID.with_name("grid.jsgf")
LOOPS = 20
TARGET_RTF = 0.15


def looped_speech(folder: Path) -> Path:
    """GRID's audio repeated ``LOOPS`` times as a 16 kHz mono wav (about 60 s of speech)."""
    import subprocess

    target = folder / f"grid-x{LOOPS}.wav"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(LOOPS - 1),
                    "-i", str(GRID), "-vn", "-ac", "1", "-ar", "16000", str(target)], check=True)
    return target


def measure(extractor: TextExtractor, clip: Path, seconds: float) -> dict[str, float]:
    """One run: counts, stage times, real-time factor, and where each "now" ends."""
    began, cpu_began = time.perf_counter(), time.process_time()
    transcript = extractor.transcribe(clip)
    middle = time.perf_counter()
    features = extractor.embed(transcript)
    done, cpu_done = time.perf_counter(), time.process_time()
    if not isinstance(features, TimedFeatures):
        raise SystemExit(f"{clip}: {features.reason}")
    nows = [w.end for w in transcript.words if normalise(w.text) == "now"]
    return {"words": len(transcript.words), "nows": nows, "text": transcript.text[:60], "tokens": len(features),
            "transcribe_s": middle - began, "embed_s": done - middle, "rtf": (done - began) / seconds,
            "cpu_rtf": (cpu_done - cpu_began) / seconds}


def drift(nows: list[float], reference: float, period: float) -> float:
    """Median distance from each loop's expected "now" end (GRID alone, shifted) to the nearest one heard."""
    if not nows:
        return float("nan")
    return statistics.median(min(abs(k * period + reference - n) for n in nows) for k in range(LOOPS))


def summarise(runs: list[dict]) -> dict:
    summary = {key: statistics.median(run[key] for run in runs) for key in runs[0] if key not in ("nows", "text")}
    return dict(summary, nows=runs[0]["nows"], text=runs[0]["text"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--beams", type=int, nargs="+", default=[1])
    parser.add_argument("--chunkings", nargs="+", default=["utterance"])
    parser.add_argument("--windows", type=float, nargs="+", default=[30.0, 10.0],
                        help="Whisper encoder windows in seconds (TranscriptConfig.whisper_window)")
    parser.add_argument("--no-grammar", action="store_true", help="skip PocketSphinx with the GRID grammar")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = {"grid-bbaf2n.mpg": GRID, f"grid-x{LOOPS}.wav": looped_speech(Path(tmp))}
        durations = {name: decode_audio(path).duration for name, path in clips.items()}
        settings = {f"whisper beam={beam} chunking={chunking} window={window:g}s":
                    dict(beam_size=beam, chunking=chunking, whisper_window=window)
                    for beam in args.beams for chunking in args.chunkings for window in args.windows}
        if not args.no_grammar:
            settings["pocketsphinx grammar=grid.jsgf"] = dict(grammar=GRAMMAR)
        for label, options in settings.items():
            extractor = TextExtractor(source="asr", threads=args.threads, **options)
            began = time.perf_counter()
            extractor.extract(GRID)  # loads the models (cached per process) and warms them
            print(f"{label}: first GRID run (loads models once per process) {time.perf_counter() - began:.2f} s")
            reference = None
            for name, path in clips.items():
                summary = summarise([measure(extractor, path, durations[name]) for _ in range(args.repeats)])
                if reference is None:  # the GRID clip alone comes first: its "now" is the reference
                    reference = summary["nows"][-1] if summary["nows"] else float("nan")
                    check = f"'{summary['text']}', 'now' ends at {reference:.2f} s"
                else:
                    summary["drift_s"] = drift(summary["nows"], reference, durations[GRID.name])
                    check = (f"{len(summary['nows'])} x 'now' for {LOOPS} sentences, median drift "
                             f"{summary['drift_s']:.2f} s from the clip-alone times")
                results[f"{name} {label}"] = dict(summary, audio_s=durations[name])
                verdict = "meets" if summary["rtf"] <= TARGET_RTF else "misses"
                print(f"  {name} ({durations[name]:.1f} s audio), {args.threads} threads: {summary['words']:.0f} "
                      f"words, {check}, {summary['tokens']:.0f} tokens; transcribe {summary['transcribe_s']:.2f} s"
                      f" + embed {summary['embed_s']:.3f} s = RTF {summary['rtf']:.3f} ({verdict} target "
                      f"{TARGET_RTF}; median of {args.repeats}); CPU seconds per audio second "
                      f"{summary['cpu_rtf']:.3f}")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f} "
          "(1/5/15 min; other work on the machine slows every figure above)")
    out = Path(__file__).resolve().parent / "results" / "text.json"
    out.parent.mkdir(exist_ok=True)
    record = {"cpus": os.cpu_count(), "threads": args.threads, "load_average": load, "runs": results}
    out.write_text(json.dumps(record, indent=2))


if __name__ == "__main__":
    main()
