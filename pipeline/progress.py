"""Progress for long work, as a :data:`~sgdtam_pipe.core.hooks.Hook`: a bar on a terminal, log lines off one.

Work reports ``hook(step, info)``; ``info`` may hold ``done`` and ``total``
(counts, or seconds of media as floats), ``unit`` (what is counted, e.g. ``"rows"``, ``"s"``) and ``message`` (shown
beside the bar, or in the log line). On a terminal each step gets a tqdm bar
with rate and ETA. Off a terminal (a log file, CI) a plain line goes to stderr
when a step starts, when it ends, and at least every ``log_every`` seconds in
between, so a long run is never silent; a step reported with neither ``done`` nor ``total``
and no bar open (a stage starting) is one line in both cases. A step starts again when ``done``
goes back (the next clip). ``quiet`` shows nothing.
Results never go through here: they belong on stdout.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Mapping, TextIO

LOG_EVERY_S = 30.0
"""Seconds between log lines off a terminal (well inside the one-line-a-minute promise)."""


@dataclass
class ProgressHook:
    """Callable hook; call :meth:`close` when the work ends (also ends any open bar)."""

    quiet: bool = False
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    log_every: float = LOG_EVERY_S
    interactive: bool | None = None
    _bars: dict[str, Any] = field(default_factory=dict)
    _last_log: dict[str, float] = field(default_factory=dict)
    _started: dict[str, float] = field(default_factory=dict)
    _last_done: dict[str, float] = field(default_factory=dict)
    _lock: threading.RLock = field(default_factory=threading.RLock)  # the stages of a clip report from their threads

    def __post_init__(self) -> None:
        if self.interactive is None:
            self.interactive = bool(getattr(self.stream, "isatty", lambda: False)())

    def __call__(self, step: str, info: Mapping[str, Any]) -> None:
        if self.quiet:
            return
        with self._lock:
            self._report(step, info)

    def _report(self, step: str, info: Mapping[str, Any]) -> None:
        done, total = info.get("done"), info.get("total")
        if self.interactive and done is None and total is None and step not in self._bars:  # a stage starting
            from tqdm import tqdm

            tqdm.write(_log_line(step, None, None, info, 0.0), file=self.stream)
        elif self.interactive:
            self._bar(step, done, total, info)
        else:
            self._log(step, done, total, info)

    def _bar(self, step: str, done: int | None, total: int | None, info: Mapping[str, Any]) -> None:
        from tqdm import tqdm

        bar = self._bars.get(step)
        if bar is None or (total is not None and bar.total != total) or (done is not None and done < bar.n):
            if bar is not None:
                bar.close()
            bar = tqdm(total=total, desc=step, unit=info.get("unit", "it"), file=self.stream,
                       dynamic_ncols=True, leave=True)
            self._bars[step] = bar
        if done is not None:
            bar.update(done - bar.n)
        if info.get("message"):
            bar.set_postfix_str(str(info["message"]), refresh=False)
        if total is not None and done is not None and done >= total:
            bar.close()
            del self._bars[step]

    def _log(self, step: str, done: int | None, total: int | None, info: Mapping[str, Any]) -> None:
        now = time.monotonic()
        previous = self._last_done.get(step)
        first = step not in self._started or (done is not None and previous is not None and done < previous)
        if done is not None:
            self._last_done[step] = done
        if first:
            self._started[step] = now
        finished = total is not None and done is not None and done >= total
        if not (first or finished or now - self._last_log.get(step, 0.0) >= self.log_every):
            return
        self._last_log[step] = now
        self.stream.write(_log_line(step, done, total, info, now - self._started[step]) + "\n")
        self.stream.flush()

    def close(self) -> None:
        with self._lock:
            for bar in self._bars.values():
                bar.close()
            self._bars.clear()


def _log_line(step: str, done: int | None, total: int | None, info: Mapping[str, Any], elapsed: float) -> str:
    stamp = time.strftime("%H:%M:%S")
    parts = [f"{stamp} [{step}]"]
    unit = info.get("unit", "")
    if done is not None:
        parts.append(f"{_count(done)}/{_count(total)} {unit}".rstrip() if total else f"{_count(done)} {unit}".rstrip())
        if elapsed > 0 and done:
            rate = done / elapsed
            parts.append(f"{rate:.2f} {unit or 'it'}/s")
            if total and done < total:
                parts.append(f"eta {_clock((total - done) / rate)}")
    if info.get("message"):
        parts.append(str(info["message"]))
    return "  ".join(parts)


def _count(value: float) -> str:
    """Whole counts as they are, seconds of media to the tenth."""
    return f"{value:.1f}" if isinstance(value, float) else str(value)


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
