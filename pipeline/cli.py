"""The ``sgdtam-pipe`` command line: parse, call one library function, report, set the exit code.

Heavy imports live inside the callbacks so ``--help`` stays fast. User errors
(bad media, a missing extra, a broken record) become one line on stderr and
exit code 2, never a traceback.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from sgdtam_pipe.pipeline.version import __version__

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

USER_ERROR_EXIT = 2


def _user_errors() -> tuple[type[BaseException], ...]:
    from sgdtam_pipe.extractors.base import MissingExtra
    from sgdtam_pipe.extractors.media import MediaError
    from sgdtam_pipe.extractors.timeline import ContractError
    from sgdtam_pipe.pipeline.batch import BatchBusy
    from sgdtam_pipe.pipeline.errors import StageError

    return (MediaError, MissingExtra, ContractError, StageError, BatchBusy, FileNotFoundError, ValueError)


def reports_user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can fix into one line on stderr and exit code 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except _user_errors() as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USER_ERROR_EXIT)

    return wrapper


class StageProgress:
    """A hook that prints one line per pipeline stage on a terminal (quiet otherwise)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, step: str, info: Any) -> None:
        if not self.enabled:
            return
        done, total = info.get("done"), info.get("total")
        suffix = f" {done}/{total}" if done is not None and total else ""
        click.echo(f"\r[{step}]{suffix}".ljust(40), err=True, nl=done is None or done == total)


def _progress() -> StageProgress:
    return StageProgress(sys.stderr.isatty())


cache_dir_option = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                                help="Feature cache folder (default: the user cache dir, or $SGDTAM_CACHE_DIR).")
checkpoint_option = click.option("--checkpoint", type=click.Path(exists=True, path_type=Path),
                                 help="Checkpoint folder (default: the starter checkpoint shipped in the package).")
audio_option = click.option("--audio-backend", type=click.Choice(["opensmile", "librosa"]), default="opensmile",
                            show_default=True, help="Acoustic features; librosa is the licence-clean choice.")

_speech_options = (
    click.option("--grammar", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="JSGF grammar: recognise speech with PocketSphinx held to it instead of Whisper "
                      "(closed-grammar corpora such as GRID; US English)."),
    click.option("--whisper-model", type=click.Path(exists=True, file_okay=False, path_type=Path),
                 help="Local CTranslate2 Whisper folder (default: the bundled Whisper tiny.en)."),
    click.option("--whisper-window", type=click.FloatRange(10.0, 30.0), default=30.0, show_default=True,
                 help="Fewest seconds Whisper's encoder sees; lower is faster on short clips, less accurate."),
)


def speech_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--grammar``, ``--whisper-model`` and ``--whisper-window``, passed on as ``speech`` (a dict)."""

    @functools.wraps(command)
    def wrapper(*args: Any, grammar: Path | None, whisper_model: Path | None, whisper_window: float,
                **kwargs: Any) -> Any:
        if grammar is not None:  # a bad grammar fails here, in one line, before any clip
            from sgdtam_pipe.extractors.sphinx import load_grammar

            load_grammar(grammar)
        speech = {"grammar": grammar, "whisper_model": whisper_model, "whisper_window": whisper_window}
        return command(*args, speech=speech, **kwargs)

    for option in reversed(_speech_options):
        wrapper = option(wrapper)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sgdtam-pipe")
def main() -> None:
    """Sentiment over time from raw video: timed text, audio and face features, SG-DTAM."""


@main.command()
@click.argument("clip", type=click.Path(path_type=Path))
@click.option("--json", "json_out", type=click.Path(allow_dash=True), help="Write the result as JSON ('-' for stdout).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Draw a timeline PNG.")
@click.option("--transcript", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sidecar transcript (.srt, .vtt, .json, .txt); default: one next to the clip, else speech recognition.")
@click.option("--fps", type=float, default=15.0, show_default=True, help="Face sampling rate (frames per second).")
@audio_option
@checkpoint_option
@cache_dir_option
@click.option("--no-cache", is_flag=True, help="Neither read nor write the feature cache.")
@reports_user_errors
@speech_options
def analyze(clip: Path, json_out: str | None, plot: Path | None, transcript: Path | None,
            speech: dict[str, Any], fps: float, audio_backend: str, checkpoint: Path | None,
            cache_dir: Path | None, no_cache: bool) -> None:
    """Sentiment of CLIP overall and per segment, with the modalities observed and generated."""
    from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, analyze as run_analyze
    from sgdtam_pipe.pipeline.report import summary_text

    options = AnalyzeOptions(audio_backend=audio_backend, fps=fps, transcript=transcript, **speech,
                             checkpoint=checkpoint, cache_dir=cache_dir, use_cache=not no_cache)
    result = run_analyze(clip, options, hook=_progress())
    if json_out == "-":
        click.echo(json.dumps(result.to_json(), indent=2))
    else:
        click.echo(summary_text(result))
        if json_out:
            from sgdtam_pipe.extractors.records_io import atomic_write_json

            atomic_write_json(json_out, result.to_json())
            click.echo(f"JSON written to {json_out}")
    if plot:
        from sgdtam_pipe.pipeline.plot import plot_timeline

        plot_timeline(result, plot)
        click.echo(f"timeline written to {plot}", err=json_out == "-")


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for results.csv, results.jsonl, summary.json and the run state (run.sqlite).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Worker processes.")
@click.option("--scheduler", help="Dask scheduler address (tcp://host:port) to run on a cluster instead.")
@click.option("--retry-failed/--no-retry-failed", default=True, show_default=True,
              help="Try clips that failed in an earlier run again.")
@audio_option
@checkpoint_option
@cache_dir_option
@reports_user_errors
@speech_options
def batch(folder: Path, out_dir: Path, workers: int, scheduler: str | None, retry_failed: bool,
          speech: dict[str, Any], audio_backend: str, checkpoint: Path | None, cache_dir: Path | None) -> None:
    """Analyse every media file under FOLDER (recursive, resumable, parallel).

    A second run skips clips already done; a failure is recorded with its
    stage and reason and the run goes on. Ctrl-C keeps every finished result.
    """
    from sgdtam_pipe.pipeline.analyze import AnalyzeOptions, batch as run_batch

    options = AnalyzeOptions(audio_backend=audio_backend, **speech, checkpoint=checkpoint, cache_dir=cache_dir)
    progress = BatchProgress(sys.stderr.isatty())
    summary = run_batch(folder, out_dir, options, workers=workers, scheduler=scheduler, hook=progress,
                        retry_failed=retry_failed)
    progress.close()
    click.echo(json.dumps(summary.to_json(), indent=2))
    if summary.interrupted:
        sys.exit(130)


class BatchProgress:
    """A progress bar over clips on a terminal; silent when stderr is not one."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None

    def __call__(self, step: str, info: Any) -> None:
        if not self.enabled:
            return
        if step == "scan":
            click.echo(f"found {info['found']} media files ({info['problems']} unreadable entries)", err=True)
        elif step == "clip":
            if self.bar is None:
                self.bar = click.progressbar(length=info["total"], label="clips", file=sys.stderr)
                self.bar.__enter__()
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="CSV: clip (or text), label, optional split, start, end.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset folder to write.")
@audio_option
@cache_dir_option
@reports_user_errors
@speech_options
def extract(folder: Path, labels: Path, out_dir: Path, speech: dict[str, Any], audio_backend: str,
            cache_dir: Path | None) -> None:
    """Build a training dataset from labelled clips under FOLDER (features come from the cache)."""
    from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
    from sgdtam_pipe.pipeline.dataset import build_dataset

    options = AnalyzeOptions(audio_backend=audio_backend, **speech, cache_dir=cache_dir)
    summary = build_dataset(labels, out_dir, options, media_root=folder, hook=_progress())
    click.echo(json.dumps(summary, indent=2))


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Checkpoint folder to write.")
@click.option("--preset", type=click.Choice(["paper", "tiny"]), default="paper", show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=30, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@reports_user_errors
def train(dataset: Path, out_dir: Path, preset: str, epochs: int, seed: int) -> None:
    """Train a checkpoint on DATASET's train split, selected on its validation split."""
    from sgdtam_pipe.pipeline.training import train_checkpoint

    card = train_checkpoint(dataset, out_dir, preset=preset, epochs=epochs, seed=seed, hook=_progress())
    click.echo(json.dumps(card["metrics"], indent=2))


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@checkpoint_option
@click.option("--split", default="test", show_default=True, help="Which split to score.")
@click.option("--per-pattern", is_flag=True, help="Also score each of the seven modality-availability patterns.")
@reports_user_errors
def evaluate(dataset: Path, checkpoint: Path | None, split: str, per_pattern: bool) -> None:
    """Score a checkpoint on one split of DATASET."""
    from sgdtam_pipe.pipeline.training import evaluate_checkpoint

    metrics = evaluate_checkpoint(dataset, checkpoint, split=split, per_pattern=per_pattern)
    click.echo(json.dumps(metrics, indent=2))


@main.command()
@click.argument("clip", type=click.Path(path_type=Path))
@reports_user_errors
def probe(clip: Path) -> None:
    """Show CLIP's duration, streams, codecs, size, rotation and frame rates."""
    from dataclasses import asdict

    from sgdtam_pipe.extractors.media import probe as probe_media

    click.echo(json.dumps(asdict(probe_media(clip)), indent=2))


@main.command()
def doctor() -> None:
    """Check every stage: backend, version, whether its bundled model loads, and how to fix it."""
    from sgdtam_pipe.pipeline.doctor import run_checks

    failed = 0
    for check in run_checks():
        mark = "ok " if check.ok else "FAIL"
        click.echo(f"{mark} {check.stage:<10} {check.backend:<28} {check.version:<12} {check.detail}")
        if not check.ok:
            failed += 1
            click.echo(f"     fix: {check.fix}")
    sys.exit(1 if failed else 0)


@main.group()
def cache() -> None:
    """Inspect or empty the feature cache."""


@cache.command("info")
@cache_dir_option
def cache_info(cache_dir: Path | None) -> None:
    """Where the cache is, how many entries it holds and how big it is."""
    from sgdtam_pipe.pipeline.cache import FeatureCache

    click.echo(json.dumps(FeatureCache(cache_dir).info(), indent=2))


@cache.command("clear")
@cache_dir_option
@click.confirmation_option(prompt="Remove every cached feature?")
def cache_clear(cache_dir: Path | None) -> None:
    """Remove every cached feature."""
    from sgdtam_pipe.pipeline.cache import FeatureCache

    click.echo(f"removed {FeatureCache(cache_dir).clear()} entries")


if __name__ == "__main__":
    main()
