"""Worker pools for batch runs: this process, local spawned processes, or (in :mod:`pipeline.cluster`) Dask.

Each pool wraps a ``concurrent.futures`` executor with a number of slots and
can replace an executor that broke.
"""

from __future__ import annotations

import multiprocessing
from concurrent.futures import BrokenExecutor, Executor, Future, ProcessPoolExecutor


class WorkerPool:
    """An executor with a number of slots, that can be replaced when it breaks."""

    slots: int
    executor: Executor

    def renew(self) -> None:
        """Replace a broken executor."""
        raise BrokenExecutor("this pool cannot be renewed")

    def close(self, *, cancel: bool) -> None:
        self.executor.shutdown(wait=not cancel)


class _InProcessExecutor(Executor):
    """Runs each call at submission, in this process (``workers=1``)."""

    def submit(self, fn, /, *args, **kwargs) -> Future:
        future: Future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as exc:
            future.set_exception(exc)
        return future


class InProcessPool(WorkerPool):
    def __init__(self) -> None:
        self.slots = 1
        self.executor = _InProcessExecutor()


class LocalPool(WorkerPool):
    """``workers`` spawned processes (no fork: torch and mediapipe hold threads)."""

    def __init__(self, workers: int) -> None:
        self.slots = workers
        self.executor = self._start()

    def _start(self) -> ProcessPoolExecutor:
        return ProcessPoolExecutor(max_workers=self.slots, mp_context=multiprocessing.get_context("spawn"))

    def renew(self) -> None:
        self.close(cancel=True)
        self.executor = self._start()

    def close(self, *, cancel: bool) -> None:
        if not cancel:
            self.executor.shutdown(wait=True)
            return
        # A pool has no public way to stop a running call; terminate its processes.
        processes = list((getattr(self.executor, "_processes", None) or {}).values())
        self.executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:
            process.terminate()
        for process in processes:
            process.join(timeout=10)
