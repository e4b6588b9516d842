"""Worker pools for batch runs: local worker processes, or (in :mod:`pipeline.cluster`) Dask.

A pool runs calls and hands back ``concurrent.futures`` futures. A call that
runs past the pool's ``timeout`` fails with :class:`ClipTimeout`; a local
worker process that dies fails its call with :class:`BrokenWorker`.

Local workers are spawned processes (no fork: torch and mediapipe hold
threads), one call at a time each, so a call stuck in native code can be
stopped by ending its process alone and a fresh worker takes its place.
Workers die with the process that started them, even a ``kill -9``'d one
(``PR_SET_PDEATHSIG`` on Linux, a parent-watching thread elsewhere), and
ignore Ctrl-C, which the parent handles.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
from concurrent.futures import BrokenExecutor, Future
from typing import Any, Callable

PARENT_POLL_S = 1.0
DEFAULT_CLIP_TIMEOUT_S = 1800.0
"""Per-clip time limit of ``batch`` and ``analyze`` (``--timeout``; 0 for none)."""


class ClipTimeout(Exception):
    """A call that ran past its pool's time limit; its worker was stopped."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        super().__init__(f"timed out after {seconds:g} s")

    def __reduce__(self):
        return (type(self), (self.seconds,))


class BrokenWorker(BrokenExecutor):
    """The worker process running a call died (a crash in native code, the OOM killer)."""


class WorkerPool:
    """Runs calls on ``slots`` workers; ``depth`` calls per slot may be handed over at once."""

    slots: int
    depth: int = 2

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        raise NotImplementedError

    def lost(self) -> str | None:
        """Why the pool as a whole is gone (a cluster's scheduler lost), or ``None`` while it works."""
        return None

    def close(self, *, cancel: bool) -> None:
        """Stop the workers; ``cancel`` ends calls in flight instead of waiting for them."""
        raise NotImplementedError


class LocalPool(WorkerPool):
    """``workers`` spawned processes, each fed by a thread of this process that enforces ``timeout``."""

    def __init__(self, workers: int, timeout: float | None = None) -> None:
        self.slots = workers
        self._tasks: queue.SimpleQueue = queue.SimpleQueue()
        self._lanes = [_Lane(self._tasks, timeout) for _ in range(workers)]

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        future: Future = Future()
        self._tasks.put((future, fn, args))
        return future

    def close(self, *, cancel: bool) -> None:
        if cancel:
            while not self._tasks.empty():
                self._tasks.get_nowait()[0].cancel()
        for _ in self._lanes:
            self._tasks.put(None)
        for lane in self._lanes:
            if cancel:
                lane.kill()
            lane.join()


class _Lane(threading.Thread):
    """Feeds calls one at a time to one worker process, replacing the process when it dies or times out."""

    def __init__(self, tasks: queue.SimpleQueue, timeout: float | None) -> None:
        super().__init__(daemon=True, name="batch-lane")
        self.tasks, self.timeout = tasks, timeout
        self.process: Any = None
        self.conn: Any = None
        self.start()

    def run(self) -> None:
        while (task := self.tasks.get()) is not None:
            future, fn, args = task
            if not future.set_running_or_notify_cancel():
                continue
            try:
                future.set_result(self._call(fn, args))
            except BaseException as exc:
                future.set_exception(exc)
        process = self.process
        if process is not None:
            self.conn.close()  # the worker reads EOF and exits
            process.join(timeout=10)
        self.kill()

    def _call(self, fn: Callable[..., Any], args: tuple) -> Any:
        if self.process is None:
            self._spawn()
        self.conn.send((fn, args))
        if not self.conn.poll(self.timeout):
            self.kill()
            raise ClipTimeout(self.timeout)
        try:
            ok, value = self.conn.recv()
        except (EOFError, OSError):
            self.kill()
            raise BrokenWorker("the worker process died") from None
        if not ok:
            raise value
        return value

    def _spawn(self) -> None:
        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, os.getpid()), daemon=True, name="batch-worker")
        self.process.start()
        child.close()

    def kill(self) -> None:
        """End the worker process now (a later call starts a fresh one)."""
        process, self.process = self.process, None
        if process is not None:
            process.kill()
            process.join(timeout=10)
            self.conn.close()


def serve(conn: Any, parent: int) -> None:
    """A worker's loop: run each ``(fn, args)`` received, send back ``(ok, result or exception)``."""
    die_with_parent(parent)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            fn, args = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply = (True, fn(*args))
        except Exception as exc:
            reply = (False, exc)
        try:
            conn.send(reply)
        except Exception as exc:  # a result or an error that does not pickle
            conn.send((False, RuntimeError(f"the worker could not send its reply back: {exc}")))


def die_with_parent(parent: int) -> None:
    """End this process when process ``parent`` ends, however it ends."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # it ended before the line above took effect
        os._exit(1)


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        threading.Event().wait(PARENT_POLL_S)
    os._exit(1)
