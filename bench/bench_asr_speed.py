"""Speech cost of ``transcribe()``: CPU seconds and wall on 60 s of looped GRID speech.

Run ``python -m bench.bench_asr_speed [--repeats 3] [--threads 0] [--chunking utterance]
[--batch 4] [--sidecar {txt,srt,srt-misfit}] [--profile FILE] [--dump FILE]``.
The input is the GRID clip's audio looped 20 times (``-stream_loop 19``)
with the bundled ffmpeg, as a 16 kHz mono wav (60 s, 20 sentences "bin blue
at f two now"). Models are loaded and warmed on the GRID clip first; each
repeat then times one ``transcribe(path, config=TranscriptConfig(...))``
call (decoding the wav included) as the process's CPU seconds (user +
system, all threads, from ``resource.getrusage``) and wall seconds, and
prints the median.

``--batch`` sets how many utterances share one batched first decode
(``asr.UTTERANCE_BATCH``; 1: one decode call per utterance). Set
``GLIBC_TUNABLES=`` (empty) in the environment to run without
:func:`extractors.text.asr.keep_freed_memory`'s malloc settings.
``--sidecar txt`` puts a ``.txt`` holding the 20 sentences (no times) next to
the wav, so ``transcribe`` force-aligns the text (PocketSphinx) instead of
recognising it; ``srt``: one cue per sentence, over its loop; ``srt-misfit``:
the same, but the fifth cue holds a sentence that was not said, so the
aligner cannot fit it and the recogniser times it instead.

``--profile FILE`` runs one more call under cProfile and writes the 25
costliest functions (cumulative) to FILE. ``--dump FILE`` writes the words
of the GRID clip alone and of the looped clip (``[text, start, end,
probability, estimated]``) as JSON, to compare implementations. The load
average is printed with the figures: on a shared machine wall time is
noisy, CPU seconds less so. Figures go to ``bench/results/asr_speed.json``.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import resource
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sgdtam_pipe.core.media import ffmpeg_exe, probe
from sgdtam_pipe.extractors.text import asr
from sgdtam_pipe.extractors.text.forced_alignment import normalise
from sgdtam_pipe.extractors.text.transcribe import transcribe
from sgdtam_pipe.extractors.text.transcript import Transcript, TranscriptConfig

GRID = Path(__file__).resolve().parent.parent / "examples" / "grid-bbaf2n.mpg"
LOOPS = 20
SENTENCE = "Bin blue at F2 now."


def looped(folder: Path, loops: int = LOOPS) -> Path:
    """GRID's audio ``loops`` times over as a 16 kHz mono wav under ``folder``."""
    target = folder / f"grid-x{loops}.wav"
    subprocess.run([ffmpeg_exe(), "-nostdin", "-loglevel", "error", "-y", "-stream_loop", str(loops - 1),
                    "-i", str(GRID), "-vn", "-ac", "1", "-ar", "16000", str(target)], check=True)
    return target


def write_sidecar(clip: Path, kind: str) -> Path:
    """The 20 sentences next to ``clip``: a ``.txt`` (``kind`` "txt") or one ``.srt`` cue per loop."""
    if kind == "txt":
        path = clip.with_suffix(".txt")
        path.write_text("\n".join([SENTENCE] * LOOPS) + "\n", encoding="utf-8")
        return path
    period = probe(GRID).duration

    def stamp(t: float) -> str:
        return f"00:{int(t // 60):02d}:{t % 60:06.3f}".replace(".", ",")

    cues = []
    for k in range(LOOPS):
        text = "The quick brown fox jumps over the lazy dog." if kind == "srt-misfit" and k == 4 else SENTENCE
        cues.append(f"{k + 1}\n{stamp(k * period + 0.3)} --> {stamp(k * period + period - 0.3)}\n{text}\n")
    path = clip.with_suffix(".srt")
    path.write_text("\n".join(cues), encoding="utf-8")
    return path


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def timed(path: Path, config: TranscriptConfig) -> tuple[Transcript, float, float]:
    """One ``transcribe`` call: the transcript, its CPU seconds and its wall seconds."""
    cpu, wall = cpu_seconds(), time.perf_counter()
    transcript = transcribe(path, config=config)
    return transcript, cpu_seconds() - cpu, time.perf_counter() - wall


def words(transcript: Transcript) -> list[list]:
    return [[w.text, w.start, w.end, w.probability, w.estimated] for w in transcript.words]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=0, help="TranscriptConfig.threads (0: library default)")
    parser.add_argument("--chunking", default="utterance")
    parser.add_argument("--batch", type=int, default=asr.UTTERANCE_BATCH,
                        help="utterances per batched first decode (1: none batched)")
    parser.add_argument("--sidecar", choices=("txt", "srt", "srt-misfit"),
                        help="align a sidecar of the 20 sentences instead of recognising")
    parser.add_argument("--profile", type=Path, help="write a cProfile summary of one more call here")
    parser.add_argument("--dump", type=Path, help="write the words (GRID alone, looped) here as JSON")
    args = parser.parse_args()
    config = TranscriptConfig(chunking=args.chunking, threads=args.threads)
    asr.UTTERANCE_BATCH = args.batch
    with tempfile.TemporaryDirectory() as tmp:
        clip = looped(Path(tmp))
        if args.sidecar:
            write_sidecar(clip, args.sidecar)
        warm, warm_cpu, warm_wall = timed(GRID, TranscriptConfig(source="asr", chunking=args.chunking,
                                                                 threads=args.threads))
        print(f"warm-up on {GRID.name} (loads the models): {warm_cpu:.2f} CPU-s, {warm_wall:.2f} s wall; "
              f"{warm.text!r}")
        runs = [timed(clip, config) for _ in range(args.repeats)]
        first = runs[0][0]
        same = all(words(run[0]) == words(first) for run in runs)
        nows = sum(normalise(w.text) == "now" for w in first.words)
        cpu = statistics.median(run[1] for run in runs)
        wall = statistics.median(run[2] for run in runs)
        load = os.getloadavg()
        print(f"{clip.name} {f'sidecar {args.sidecar}, aligned' if args.sidecar else 'recognised'}, chunking "
              f"{args.chunking}, threads {args.threads}, batch {args.batch}, malloc kept "
              f"{asr.keep_freed_memory()}: {len(first.words)} words, {nows} x 'now' of {LOOPS}, "
              f"source {first.source}, repeats identical: {same}")
        print(f"  transcribe(): median {cpu:.2f} CPU-s, {wall:.2f} s wall over {args.repeats} runs "
              f"(CPU-s {', '.join(f'{r[1]:.2f}' for r in runs)}; wall {', '.join(f'{r[2]:.2f}' for r in runs)})")
        print(f"  load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} on {os.cpu_count()} CPUs")
        out = Path(__file__).resolve().parent / "results" / "asr_speed.json"
        out.parent.mkdir(exist_ok=True)
        out.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "cpu_s": cpu, "wall_s": wall,
                                   "cpu_runs": [r[1] for r in runs], "wall_runs": [r[2] for r in runs],
                                   "nows": nows, "identical": same, "load_average": load}, indent=2))
        if args.dump:
            args.dump.write_text(json.dumps({"grid": words(warm), "looped": words(first), "source": first.source,
                                             "cpu_s": cpu, "wall_s": wall, "load": load}, indent=1))
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            transcribe(clip, config=config)
            profiler.disable()
            text = io.StringIO()
            pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(25)
            args.profile.write_text(text.getvalue())


if __name__ == "__main__":
    main()
