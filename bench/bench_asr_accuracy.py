"""Whisper's accuracy by setting: word error rate per ``whisper_window``, and per ``chunking`` on a monologue.

Run ``python -m bench.bench_asr_accuracy [--sentences 40] [--windows 30 20 10]
[--chunkings utterance regions vad] [--gaps 0.6 1.0 1.5 2.5]``.
Needs ``espeak-ng`` on the PATH (Debian: ``apt-get install espeak-ng``) and the
MELD dev split under ``../shared/data/meld`` (``--meld`` to point elsewhere).
It speaks ``--sentences`` MELD dev utterances of 6 to 30 words (seeded
choice) with espeak-ng, alternating US and British voices at 150, 175 and
200 words a minute, recognises each with Whisper tiny.en (greedy, VAD on) at
every window, and prints the word error rate against the text (both sides
said as dictionary words: lower case, punctuation dropped, numbers spelled)
and the recognition real-time factor. Then it joins the sentences into
monologues, one per ``--gaps`` length of silence between sentences, and
recognises each with every chunking (default window): the word error rate per
monologue shows how steady a chunking is, not only its mean. Synthetic speech is cleaner than a
vlog; the figures compare windows with each other, not with the real world.
Figures go to ``bench/results/asr_accuracy.json``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import random
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from sgdtam_pipe.extractors.text.asr import recognise
from sgdtam_pipe.extractors.text.forced_alignment import spoken_words
from sgdtam_pipe.extractors.text.transcript import TranscriptConfig

MELD = Path(__file__).resolve().parents[2] / "shared" / "data" / "meld"


def said(text: str) -> list[str]:
    return [w for word in text.split() for w in spoken_words(word)]


def word_errors(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions, insertions, deletions)."""
    row = list(range(len(hypothesis) + 1))
    for i, ref in enumerate(reference, start=1):
        diagonal, row[0] = row[0], i
        for j, hyp in enumerate(hypothesis, start=1):
            diagonal, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, diagonal + (ref != hyp))
    return row[-1]


def pick_sentences(meld: Path, count: int) -> list[str]:
    with open(meld / "dev_sent_emo.csv", encoding="utf-8", newline="") as handle:
        texts = [row["Utterance"].replace("\u2019", "'") for row in csv.DictReader(handle)]
    return random.Random(0).sample([t for t in texts if 6 <= len(t.split()) <= 30], count)


def speak(sentences: list[str], folder: Path) -> list[Path]:
    paths = []
    for k, text in enumerate(sentences):
        path = folder / f"{k:03d}.wav"
        subprocess.run(["espeak-ng", "-v", ("en-us", "en-gb")[k % 2], "-s", str((150, 175, 200)[k % 3]),
                        "-w", str(path), text], check=True)
        paths.append(path)
    return paths


def join_with_silence(clips: list[Path], gap: float, target: Path) -> Path:
    """The clips one after another, ``gap`` seconds of silence after each, as one 16 kHz 16-bit wav."""
    import wave

    import numpy as np

    from sgdtam_pipe.core.media import decode_audio

    silence = np.zeros(int(gap * 16_000), dtype=np.float32)
    samples = np.concatenate([part for clip in clips for part in (decode_audio(clip).samples, silence)])
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16_000)
        out.writeframes((np.clip(samples, -1.0, 1.0) * 32767).astype("<i2").tobytes())
    return target


def score(clips: list[Path], texts: list[str], config: TranscriptConfig) -> dict[str, float]:
    """Word errors against ``texts`` and the recognition real-time factor over ``clips``."""
    recognise(clips[0], config=config)  # load and warm the model
    errors = words = recognised = 0
    seconds = audio = 0.0
    for clip, text in zip(clips, texts):
        began = time.perf_counter()
        recognition = recognise(clip, config=config)
        seconds += time.perf_counter() - began
        audio += recognition.span[1] - recognition.span[0]
        reference, heard = said(text), said(" ".join(w.text for w in recognition.words))
        errors += word_errors(reference, heard)
        words += len(reference)
        recognised += len(heard)
    return {"wer": errors / words, "errors": errors, "words": words, "recognised": recognised,
            "rtf": seconds / audio, "audio_s": audio}


def report(label: str, result: dict[str, float]) -> None:
    print(f"{label}: WER {result['wer']:.3f} ({result['errors']}/{result['words']} words), "
          f"{result['audio_s']:.0f} s of speech; recognition RTF {result['rtf']:.3f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sentences", type=int, default=40)
    parser.add_argument("--windows", type=float, nargs="+", default=[30.0, 20.0, 10.0])
    parser.add_argument("--chunkings", nargs="+", default=["utterance", "regions", "vad"])
    parser.add_argument("--gaps", type=float, nargs="+", default=[0.6, 1.0, 1.5, 2.5])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--meld", type=Path, default=MELD)
    args = parser.parse_args()
    if shutil.which("espeak-ng") is None:  # `make bench` goes on without this one
        print("skipped: espeak-ng is not on the PATH (Debian: apt-get install espeak-ng)")
        return
    sentences = pick_sentences(args.meld, args.sentences)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        clips = speak(sentences, Path(tmp))
        for window in args.windows:
            config = TranscriptConfig(source="asr", whisper_window=window, threads=args.threads)
            results[f"window={window:g}s"] = score(clips, sentences, config)
            report(f"whisper_window {window:g} s, {len(clips)} clips", results[f"window={window:g}s"])
        monologues = {gap: join_with_silence(clips, gap, Path(tmp) / f"monologue-{gap:g}s.wav") for gap in args.gaps}
        for chunking in args.chunkings:
            config = TranscriptConfig(source="asr", chunking=chunking, threads=args.threads)
            runs = [score([path], [" ".join(sentences)], config) for path in monologues.values()]
            results[f"monologue chunking={chunking}"] = {f"gap={gap:g}s": run for gap, run in zip(args.gaps, runs)}
            wers = ", ".join(f"{run['wer']:.3f}" for run in runs)
            counts = ", ".join(str(run["recognised"]) for run in runs)
            print(f"chunking {chunking}, monologues with gaps {', '.join(f'{g:g}' for g in args.gaps)} s: WER {wers} "
                  f"(mean {statistics.mean(run['wer'] for run in runs):.3f}); words recognised {counts} of "
                  f"{runs[0]['words']}; RTF {statistics.mean(run['rtf'] for run in runs):.3f}")
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load average {load[0]:.1f} / {load[1]:.1f} / {load[2]:.1f}")
    out = Path(__file__).resolve().parent / "results" / "asr_accuracy.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"sentences": args.sentences, "load_average": load, "runs": results}, indent=2))


if __name__ == "__main__":
    main()
