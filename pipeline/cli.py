"""The ``sgdtam-pipe`` command line: parse, call one library function, report, set the exit code.

Heavy imports live inside the callbacks so ``--help`` stays fast. User errors
(bad media, a missing extra, a broken record) become one line on stderr and
exit code 2, never a traceback. Any other error is a bug: one line and exit
code 1, or its traceback with ``sgdtam-pipe --debug``.
"""

from __future__ import annotations

import atexit
import functools
import json
import logging
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from sgdtam_pipe.core.devices import DEVICES
from sgdtam_pipe.core.memory import limit_malloc_arenas
from sgdtam_pipe.core.threads import let_idle_threads_sleep
from sgdtam_pipe.extractors.base import REGISTRY
from sgdtam_pipe.extractors.text.transcript import SHORTEST_WHISPER_WINDOW, WHISPER_WINDOW
from sgdtam_pipe.model.config import PRESETS
from sgdtam_pipe.pipeline.features import ExtractionSettings
from sgdtam_pipe.pipeline.training_options import TrainingOptions
from sgdtam_pipe.pipeline.version import __version__

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

USER_ERROR_EXIT = 2
INTERNAL_ERROR_EXIT = 1


def _user_errors() -> tuple[type[BaseException], ...]:
    from sgdtam_pipe.core.errors import UserError
    from sgdtam_pipe.core.media import MediaError
    from sgdtam_pipe.core.timeline import ContractError
    from sgdtam_pipe.extractors.base import MissingExtra
    from sgdtam_pipe.pipeline.batch import BatchBusy, PoolLost
    from sgdtam_pipe.pipeline.errors import StageError

    return (UserError, MediaError, MissingExtra, ContractError, StageError, BatchBusy, PoolLost,
            FileNotFoundError, ConnectionError)


def reports_user_errors(command: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the errors a user can fix into one line on stderr and exit code 2, other errors into one
    line and exit code 1 (with ``--debug``, every error keeps its traceback)."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if click.get_current_context().find_root().params.get("debug"):
            return command(*args, **kwargs)
        try:
            return command(*args, **kwargs)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except _user_errors() as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(USER_ERROR_EXIT)
        except Exception as exc:
            detail = " ".join(str(exc).split())[:300]
            click.echo(f"internal error: {type(exc).__name__}: {detail} (a bug: rerun with --debug for the "
                       "traceback and report it)", err=True)
            sys.exit(INTERNAL_ERROR_EXIT)

    return wrapper


def _timeout_option(command: Callable[..., Any]) -> Callable[..., Any]:
    from sgdtam_pipe.pipeline.pools import DEFAULT_CLIP_TIMEOUT_S

    return click.option("--timeout", type=click.FloatRange(0), default=DEFAULT_CLIP_TIMEOUT_S, show_default=True,
                        help="Seconds one clip may take before it is stopped (0: no limit).")(command)


LOG = logging.getLogger("sgdtam_pipe")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class _Stderr(logging.StreamHandler):
    """Log lines to whatever ``sys.stderr`` is when they are written (click's test runner swaps it)."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


class _LineFormat(logging.Formatter):
    """``warning: text`` (as the CLI has always printed them); debug lines also name their module."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage()
        if record.levelno == logging.INFO:
            return text
        where = f"[{record.name.removeprefix('sgdtam_pipe.')}] " if record.levelno < logging.INFO else ""
        return f"{record.levelname.lower()}: {where}{text}"


def setup_logging(level: int) -> None:
    """Send the package's log records at ``level`` and above to stderr (other libraries' loggers are left
    alone); called once per command, so repeated in-process runs do not stack handlers."""
    for handler in [h for h in LOG.handlers if isinstance(h, _Stderr)]:
        LOG.removeHandler(handler)
    handler = _Stderr()
    handler.setFormatter(_LineFormat())
    LOG.addHandler(handler)
    LOG.setLevel(level)
    LOG.propagate = False


def _progress(quiet: bool = False):
    """The progress hook for this command: silent with the group's ``--quiet`` or the command's own."""
    from sgdtam_pipe.pipeline.progress import ProgressHook

    root = click.get_current_context().find_root()
    return ProgressHook(quiet=quiet or bool((root.obj or {}).get("quiet")))


def batch_progress(hook: Callable[[str, Any], None]) -> Callable[[str, Any], None]:
    """``run_batch``'s events as one ``clips`` step counted against the clips the scan found: the
    first line comes with the scan, before any clip has run; clips done in an earlier run count as done."""
    found = 0

    def report(step: str, info: Any) -> None:
        nonlocal found
        if step == "scan":
            found = info["found"]
            problems = f" ({info['problems']} unreadable entries)" if info["problems"] else ""
            hook("clips", {"done": 0, "total": found, "unit": "clips",
                           "message": f"found {found} media files{problems}"})
        elif step == "plan" and info["skipped"]:
            hook("clips", {"done": info["skipped"], "total": found, "unit": "clips",
                           "message": f"{info['skipped']} done in an earlier run"})
        elif step == "clip":
            hook("clips", {"done": info["skipped"] + info["done"], "total": found, "unit": "clips",
                           "message": f"{Path(info['path']).name} {info['status']}"})

    return report


cache_dir_option = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path),
                                help="Feature cache folder (default: the user cache dir, or $SGDTAM_CACHE_DIR).")
checkpoint_option = click.option("--checkpoint", type=click.Path(exists=True, path_type=Path),
                                 help="Checkpoint folder (default: the starter checkpoint shipped in the package).")
device_option = click.option("--device", type=click.Choice(DEVICES), default=ExtractionSettings.device, show_default=True,
                             help="Where Whisper, the text encoder and SG-DTAM run; auto takes a GPU when one is "
                                  "visible ('sgdtam-pipe doctor' says what it finds).")
audio_option = click.option("--audio-backend", type=click.Choice(list(REGISTRY["audio"])),
                            default=ExtractionSettings.audio_backend, show_default=True, help="Acoustic features; librosa is the licence-clean choice.")

_speech_options = (
    click.option("--grammar", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="JSGF grammar: recognise speech with PocketSphinx held to it instead of Whisper "
                      "(closed-grammar corpora such as GRID; US English)."),
    click.option("--whisper-model", type=click.Path(exists=True, file_okay=False, path_type=Path),
                 help="Local CTranslate2 Whisper folder (default: the bundled Whisper tiny.en)."),
    click.option("--whisper-window", type=click.FloatRange(SHORTEST_WHISPER_WINDOW, WHISPER_WINDOW),
                 default=ExtractionSettings.whisper_window, show_default=True,
                 help="Fewest seconds Whisper's encoder sees; lower is faster on short clips, less accurate."),
)


def speech_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--grammar``, ``--whisper-model`` and ``--whisper-window``, passed on as ``speech`` (a dict)."""

    @functools.wraps(command)
    def wrapper(*args: Any, grammar: Path | None, whisper_model: Path | None, whisper_window: float,
                **kwargs: Any) -> Any:
        if grammar is not None:  # a bad grammar fails here, in one line, before any clip
            from sgdtam_pipe.extractors.text.sphinx import load_grammar

            load_grammar(grammar)
        speech = {"grammar": grammar, "whisper_model": whisper_model, "whisper_window": whisper_window}
        return command(*args, speech=speech, **kwargs)

    for option in reversed(_speech_options):
        wrapper = option(wrapper)
    return wrapper


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sgdtam-pipe")
@click.option("--debug", is_flag=True, help="Show the traceback of an error instead of one line.")
@click.option("-q", "--quiet", is_flag=True, help="No progress on stderr (warnings and errors are still shown).")
@click.option("-v", "--verbose", is_flag=True, help="Also debug log lines on stderr (same as --log-level debug).")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False),
              help="Least severe log lines shown on stderr [default: warning; debug with --verbose]. "
                   "Progress is not a log line: only --quiet hides it.")
@click.pass_context
def main(ctx: click.Context, debug: bool, quiet: bool, verbose: bool, log_level: str | None) -> None:
    """Sentiment over time from raw video: timed text, audio and face features, SG-DTAM.

    Results go to stdout; progress, warnings and log lines to stderr.
    """
    ctx.obj = {"quiet": quiet}
    setup_logging(getattr(logging, (log_level or ("debug" if verbose else "warning")).upper()))
    limit_malloc_arenas()  # before any worker thread starts
    let_idle_threads_sleep()  # before torch or CTranslate2 loads OpenMP


@main.command()
@click.argument("clip", type=click.Path(path_type=Path))
@click.option("--json", "json_out", type=click.Path(allow_dash=True), help="Write the result as JSON ('-' for stdout).")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), help="Draw a timeline PNG.")
@click.option("--html", "html_out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write an interactive report: one self-contained HTML file that plays the clip offline with "
                   "its sentiment, words and modalities in step (at most 5 MB per minute of clip).")
@click.option("--export", "export_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Write the segments, words and frames tables to this folder as CSV and Parquet.")
@click.option("--transcript", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Sidecar transcript (.srt, .vtt, .json, .txt); default: one next to the clip, else speech recognition.")
@click.option("--fps", type=click.FloatRange(0, min_open=True), default=ExtractionSettings.fps, show_default=True,
              help="Face sampling rate (frames per second).")
@audio_option
@checkpoint_option
@cache_dir_option
@click.option("--no-cache", is_flag=True, help="Neither read nor write the cache (features, and the scores that "
              "let a re-analysis skip loading the model).")
@device_option
@_timeout_option
@reports_user_errors
@speech_options
def analyze(clip: Path, json_out: str | None, plot: Path | None, html_out: Path | None, export_dir: Path | None,
            transcript: Path | None, speech: dict[str, Any], fps: float, audio_backend: str,
            checkpoint: Path | None, cache_dir: Path | None, no_cache: bool, device: str, timeout: float) -> None:
    """Sentiment of CLIP overall and per segment, with the modalities observed and generated.

    Past --timeout a watchdog ends the command with one line on stderr (exit status 137).
    """
    from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
    from sgdtam_pipe.pipeline.analyze import analyze as run_analyze
    from sgdtam_pipe.pipeline.report import summary_text
    from sgdtam_pipe.pipeline.watchdog import Watchdog

    if timeout:
        click.get_current_context().with_resource(Watchdog(timeout, f"error: {clip}: timed out after {timeout:g} s "
                                                                    "(--timeout SECONDS raises the limit)"))
    options = AnalyzeOptions(audio_backend=audio_backend, fps=fps, transcript=transcript, **speech,
                             checkpoint=checkpoint, cache_dir=cache_dir, use_cache=not no_cache, device=device)
    LOG.debug("analyze %s with %s", clip, options)
    hook = _progress()
    try:
        result = run_analyze(clip, options, hook=hook)
    finally:
        hook.close()
    for warning in result.warnings:
        LOG.warning(warning)
    written = []  # files first, so a failure in the summary cannot cost them
    if json_out and json_out != "-":
        from sgdtam_pipe.core.records_io import atomic_write_json

        atomic_write_json(json_out, result.to_json())
        written.append(f"JSON written to {json_out}")
    if plot:
        from sgdtam_pipe.pipeline.plot import plot_timeline

        plot_timeline(result.to_json(), plot)
        written.append(f"timeline written to {plot}")
    if html_out:
        from sgdtam_pipe.pipeline.html_report import write_html_report

        write_html_report(result.to_json(), html_out)
        written.append(f"report written to {html_out}")
    if export_dir:
        from sgdtam_pipe.pipeline.tables import write_tables

        write_tables(result.to_json(), result.features, export_dir)
        written.append(f"tables written to {export_dir}")
    click.echo(json.dumps(result.to_json(), indent=2, allow_nan=False) if json_out == "-" else summary_text(result))
    for line in written:
        click.echo(line, err=json_out == "-")
    LOG.debug("heavy libraries imported: %s", ", ".join(heavy_modules_loaded()) or "none")


HEAVY_MODULES = ("torch", "transformers", "faster_whisper", "ctranslate2", "mediapipe", "cv2", "opensmile",
                 "librosa", "pocketsphinx", "matplotlib", "pandas", "pyarrow")


def heavy_modules_loaded() -> list[str]:
    """Which of the slow-to-import libraries this process has imported (``-v`` logs it after ``analyze``:
    a re-analysis served from the cache imports none of them)."""
    return [name for name in HEAVY_MODULES if name in sys.modules]


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for results.csv, results.parquet, results.jsonl, summary.json and the run state "
                   "(run.sqlite).")
@click.option("--workers", type=click.IntRange(1), default=1, show_default=True, help="Worker processes.")
@click.option("--scheduler", help="Dask scheduler address (tcp://host:port) to run on a cluster instead.")
@click.option("--retry-failed/--no-retry-failed", default=True, show_default=True,
              help="Try clips that failed in an earlier run again.")
@click.option("--html", is_flag=True, help="Also write each clip's interactive report to OUT/reports/ and "
              "OUT/index.html linking them.")
@click.option("--fresh-state", is_flag=True, help="Start a new run state in OUT (the old run.sqlite is kept "
              "beside it as run.sqlite.<time>): after a damaged state, or to rerun with other settings.")
@audio_option
@checkpoint_option
@cache_dir_option
@device_option
@_timeout_option
@reports_user_errors
@speech_options
def batch(folder: Path, out_dir: Path, workers: int, scheduler: str | None, retry_failed: bool, html: bool,
          fresh_state: bool, speech: dict[str, Any], audio_backend: str, checkpoint: Path | None,
          cache_dir: Path | None, device: str, timeout: float) -> None:
    """Analyse every media file under FOLDER (recursive, resumable, parallel).

    A second run skips clips already done; a failure is recorded with its
    stage and reason and the run goes on. Ctrl-C keeps every finished result.
    A clip past --timeout is stopped and recorded as failed. A run into an
    OUT made with other settings is refused.
    """
    from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
    from sgdtam_pipe.pipeline.analyze import batch as run_batch

    options = AnalyzeOptions(audio_backend=audio_backend, **speech, checkpoint=checkpoint, cache_dir=cache_dir,
                             device=device)
    hook = _progress()
    try:
        summary = run_batch(folder, out_dir, options, workers=workers, scheduler=scheduler,
                            hook=batch_progress(hook), retry_failed=retry_failed, html=html,
                            timeout=timeout or None, fresh_state=fresh_state)
    finally:
        hook.close()
    click.echo(json.dumps(summary.to_json(), indent=2))
    if summary.interrupted:
        sys.exit(130)


@main.command()
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--labels", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="CSV: clip (or text), label, optional split, start, end, group.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Dataset folder to write, or to finish after an interrupted run.")
@click.option("--batch-rows", type=click.IntRange(1), default=64, show_default=True,
              help="Transcript-only rows embedded per forward batch (each batch is written as soon as it is embedded).")
@audio_option
@cache_dir_option
@click.option("--quiet", is_flag=True, help="No progress on stderr (failures and warnings are still printed).")
@reports_user_errors
@speech_options
def extract(folder: Path, labels: Path, out_dir: Path, batch_rows: int, speech: dict[str, Any], audio_backend: str,
            cache_dir: Path | None, quiet: bool) -> None:
    """Build a training dataset from labelled clips under FOLDER (features come from the cache).

    Resumable: run it again on the same --out and only the missing examples
    are computed. Each refused row and each warning is one line on stderr;
    stdout gets one JSON summary. Exit code 1 when every row failed.
    """
    from sgdtam_pipe.pipeline.analyze import AnalyzeOptions
    from sgdtam_pipe.pipeline.dataset import build_dataset

    options = AnalyzeOptions(audio_backend=audio_backend, **speech, cache_dir=cache_dir)
    hook = _progress(quiet)
    try:
        summary = build_dataset(labels, out_dir, options, media_root=folder, hook=hook, batch_rows=batch_rows)
    finally:
        hook.close()
    for kind, key in (("failed", "failures"), ("warning", "warnings")):
        notes = summary.pop(key)
        summary[f"{key[:-1]}_lines"] = [note["line"] for note in notes]
        for note in notes:
            if kind == "warning":
                LOG.warning("%s, line %s: %s", labels, note["line"], note["reason"])
            else:
                click.echo(f"{kind}: {labels}, line {note['line']}: {note['reason']}", err=True)
    click.echo(json.dumps(summary, indent=2))
    if not summary["examples"]:
        sys.exit(1)


def _seed_list(ctx: click.Context, param: click.Parameter, value: str | None) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        return tuple(int(part) for part in value.split(","))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a comma-separated list of integers") from None


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Checkpoint folder to write (training state is kept in OUT/state/ until it finishes).")
@click.option("--preset", type=click.Choice(list(PRESETS)), default=TrainingOptions.preset, show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=TrainingOptions.epochs, show_default=True, help="Most epochs per run.")
@click.option("--seed", type=int, default=TrainingOptions.seeds[0], show_default=True)
@click.option("--seeds", callback=_seed_list, help="Comma-separated seeds, e.g. 0,1,2: one run each, mean ± std "
              "of the validation metrics reported; the first seed's checkpoint is kept. Replaces --seed.")
@click.option("--folds", type=click.IntRange(0), default=TrainingOptions.folds, show_default=True,
              help="Also run K-fold cross-validation over the train split (0: none).")
@click.option("--batch-size", type=click.IntRange(1), default=TrainingOptions.batch_size, show_default=True)
@click.option("--lr", type=click.FloatRange(0, min_open=True), default=TrainingOptions.lr, show_default=True)
@click.option("--patience", type=click.IntRange(1), default=TrainingOptions.patience, show_default=True,
              help="Stop after this many epochs without a better validation score.")
@click.option("--plateau-patience", type=click.IntRange(0), default=TrainingOptions.plateau_patience, show_default=True,
              help="Epochs without a better validation score tolerated before the learning rate drops 10x "
                   "(must be below --patience).")
@click.option("--modality-dropout", type=click.FloatRange(0, 1), default=TrainingOptions.modality_dropout,
              show_default=True)
@click.option("--balance-groups/--no-balance-groups", default=TrainingOptions.balance_groups, show_default=True,
              help="Give every example group (source) the same share of each epoch.")
@click.option("--draws-per-group", type=click.IntRange(1), help="Draws per group per epoch "
              "(default: examples / groups, so an epoch keeps the dataset's size).")
@click.option("--d-model", type=click.IntRange(1), help="Network width (default: the preset's).")
@click.option("--dropout", type=click.FloatRange(0, 1, max_open=True),
              help="Dropout in attention and the head (default: the preset's).")
@click.option("--average", type=click.FloatRange(0, 1, max_open=True), default=TrainingOptions.average,
              show_default=True, help="Validate and keep a moving average of the weights with this decay per "
                                      "step, e.g. 0.999 (0: the last step's weights).")
@click.option("--resume", is_flag=True, help="Continue the interrupted run in OUT (same options and data).")
@click.option("--threads", type=click.IntRange(1), help="CPU threads for torch (default: see the README).")
@click.option("--quiet", is_flag=True, help="No progress and no epoch lines on stderr; only the JSON result.")
@reports_user_errors
def train(dataset: Path, out_dir: Path, preset: str, epochs: int, seed: int, seeds: tuple[int, ...] | None,
          folds: int, batch_size: int, lr: float, patience: int, plateau_patience: int, modality_dropout: float,
          balance_groups: bool, draws_per_group: int | None, d_model: int | None, dropout: float | None,
          average: float, resume: bool, threads: int | None, quiet: bool) -> None:
    """Train a checkpoint on DATASET's train split, selected on its validation split.

    Progress and one line per epoch go to stderr; stdout gets one JSON document.
    """
    from sgdtam_pipe.pipeline.training import set_threads, train_checkpoint

    set_threads(threads)
    options = TrainingOptions(preset=preset, epochs=epochs, seeds=seeds or (seed,), folds=folds,
                              batch_size=batch_size, lr=lr, patience=patience, plateau_patience=plateau_patience,
                              modality_dropout=modality_dropout, balance_groups=balance_groups,
                              draws_per_group=draws_per_group, d_model=d_model, dropout=dropout, average=average)
    hook = _progress(quiet)
    try:
        card = train_checkpoint(dataset, out_dir, options=options, resume=resume, hook=hook,
                                verbose=not hook.quiet)
    finally:
        hook.close()
    click.echo(json.dumps({"checkpoint": str(out_dir), "metrics": card["metrics"],
                           "calibration": card["calibration"], "patterns": card["patterns"],
                           "training": card["data"]["training"]}, indent=2))


@main.command()
@click.argument("dataset", type=click.Path(exists=True, file_okay=False, path_type=Path))
@checkpoint_option
@click.option("--split", default="test", show_default=True, help="Which split to score.")
@click.option("--per-pattern", is_flag=True, help="Also score each of the seven modality-availability patterns.")
@click.option("--quiet", is_flag=True, help="No progress on stderr; only the JSON result.")
@reports_user_errors
def evaluate(dataset: Path, checkpoint: Path | None, split: str, per_pattern: bool, quiet: bool) -> None:
    """Score a checkpoint on one split of DATASET (per class and confusion matrix for classes).

    Progress goes to stderr; stdout gets one JSON document.
    """
    from sgdtam_pipe.model.metrics import json_safe
    from sgdtam_pipe.pipeline.schema import versioned
    from sgdtam_pipe.pipeline.training import evaluate_checkpoint

    hook = _progress(quiet)
    try:
        metrics = evaluate_checkpoint(dataset, checkpoint, split=split, per_pattern=per_pattern, hook=hook)
    finally:
        hook.close()
    click.echo(json.dumps(versioned("evaluation", json_safe(metrics)), indent=2))


@main.command()
@click.argument("clip", type=click.Path(path_type=Path))
@reports_user_errors
def probe(clip: Path) -> None:
    """Show CLIP's duration, streams, codecs, size, rotation, frame rates and audio rate and channels.

    ``nominal_fps`` is the declared frame rate; ``avg_fps`` the measured
    average; ``real_fps`` FFmpeg's base rate (twice the nominal for some
    interlaced MPEG files).
    """
    from dataclasses import asdict

    from sgdtam_pipe.core.media import probe as probe_media
    from sgdtam_pipe.pipeline.schema import rounded, versioned

    click.echo(json.dumps(versioned("probe", rounded(asdict(probe_media(clip)))), indent=2))


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


@main.group("import-features")
def import_features() -> None:
    """Turn a public feature set (CMU-MultimodalSDK .csd, MMSA pickle) into a dataset folder for train."""


@import_features.command("csd")
@click.option("--labels", "labels_csd", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="The labels sequence (one row per segment: its interval and label).")
@click.option("--text", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Text features .csd.")
@click.option("--audio", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Audio features .csd.")
@click.option("--video", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Video features .csd.")
@click.option("--folds", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help='JSON {"train": [video ids], "dev": [...], "test": [...]}.')
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@reports_user_errors
def import_csd(labels_csd: Path, text: Path | None, audio: Path | None, video: Path | None, folds: Path,
               out_dir: Path) -> None:
    """CMU-MultimodalSDK computational sequences, with their real intervals."""
    from sgdtam_pipe.model.datasets import load_csd
    from sgdtam_pipe.pipeline.import_features import csd_splits, read_folds, write_dataset

    fold_ids = read_folds(folds)
    clips, labels = load_csd(labels_csd, text=text, audio=audio, video=video)
    splits = csd_splits(clips, labels, fold_ids, str(folds))
    click.echo(json.dumps(write_dataset(out_dir, splits, group=labels_csd.stem, source=str(labels_csd))))


@import_features.command("mmsa")
@click.argument("pickle_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--trust-pickle", is_flag=True, help="Required: a pickle can run code; load only files you trust.")
@click.option("--duration", type=click.FloatRange(min=0, min_open=True), default=1.0, show_default=True,
              help="Seconds each clip's rows are spread over (MMSA files carry no times).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@reports_user_errors
def import_mmsa(pickle_file: Path, trust_pickle: bool, duration: float, out_dir: Path) -> None:
    """An MMSA-style feature pickle (train/valid/test), times spread evenly and flagged synthetic."""
    from sgdtam_pipe.pipeline.import_features import mmsa_splits, write_dataset

    splits = mmsa_splits(pickle_file, trusted=trust_pickle, duration=duration)
    click.echo(json.dumps(write_dataset(out_dir, splits, group=pickle_file.stem, source=str(pickle_file))))


@main.command()
@click.argument("corpus", type=click.Choice(["ravdess", "fer2013", "meld"]))
@click.argument("folder", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--out", "out_csv", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Labels CSV to write (clip paths relative to FOLDER's parent, the media root for extract).")
@click.option("--fer-train-limit", type=click.IntRange(1), help="FER2013: keep this many train photos "
              "(class-stratified, evenly spaced); default all.")
@reports_user_errors
def labels(corpus: str, folder: Path, out_csv: Path, fer_train_limit: int | None) -> None:
    """Write a labels CSV for a public CORPUS read in place from FOLDER (emotions mapped to sentiment).

    RAVDESS: dev = actors 17-20, train = the others; surprised left out.
    FER2013: its train/dev folders; surprise left out. MELD: its sentiment column.
    """
    from sgdtam_pipe.pipeline import corpora

    folder = folder.resolve()
    items = {"ravdess": lambda: corpora.ravdess_items(folder, folder.parent),
             "fer2013": lambda: corpora.fer2013_items(folder, folder.parent, fer_train_limit),
             "meld": lambda: corpora.meld_items(folder)}[corpus]()
    count = corpora.write_labels(items, out_csv)
    click.echo(json.dumps({"corpus": corpus, "rows": count, "labels": str(out_csv), "media_root": str(folder.parent)}))


@main.group()
def cache() -> None:
    """Inspect or empty the feature cache."""


@cache.command("info")
@cache_dir_option
def cache_info(cache_dir: Path | None) -> None:
    """Where the cache is, how many entries it holds and how big it is."""
    from sgdtam_pipe.pipeline.cache import FeatureCache
    from sgdtam_pipe.pipeline.schema import versioned

    info = FeatureCache(cache_dir).info()
    click.echo(json.dumps(versioned("cache-info", {**info, "size": f"{info['bytes'] / 1e6:.1f} MB"}), indent=2))


@cache.command("clear")
@cache_dir_option
@click.confirmation_option(prompt="Remove every cached feature?")
def cache_clear(cache_dir: Path | None) -> None:
    """Remove every cached feature."""
    from sgdtam_pipe.pipeline.cache import FeatureCache

    click.echo(f"removed {FeatureCache(cache_dir).clear()} entries")


def run() -> None:
    """The ``sgdtam-pipe`` console command: :func:`main`, then an exit that skips the interpreter's teardown.

    When a command returns, its files are written and closed; what is left is
    CPython freeing every object and module one by one, about 1 s after a cold
    ``analyze`` of a minute of video (an atexit timestamp against the process's
    end). So the atexit handlers run (logging, temporary folders), both streams
    are flushed, and the process ends with ``os._exit`` and the command's status.
    """
    try:
        main()
        status: object = 0
    except SystemExit as stop:
        status = stop.code
    if status is None:
        status = 0
    elif not isinstance(status, int):  # sys.exit("message"): printed, status 1, as the interpreter does
        print(status, file=sys.stderr)
        status = 1
    atexit._run_exitfuncs()  # noqa: SLF001 - the handlers os._exit would skip
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe or stream: nothing more can reach it
            pass
    os._exit(status)


if __name__ == "__main__":
    run()
