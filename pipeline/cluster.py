"""Dask distributed backend for batch runs: the cluster's executor in place of the local pool.

The scheduler address is what ``dask scheduler`` prints (``tcp://host:8786``).
Every worker must have this package (and the extras the job needs) installed
and must see the clips at the same paths as the machine that starts the run;
only paths and small JSON results travel. Outcomes come back to the parent,
which alone writes the run state.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from concurrent.futures import CancelledError, Future, InvalidStateError
from typing import Any, Callable

from sgdtam_pipe.extractors.base import require
from sgdtam_pipe.pipeline.pools import ClipTimeout, WorkerPool

WAIT_FOR_WORKERS_S = 60.0
_QUIET = ("distributed.client", "distributed.comm")  # a lost scheduler is reported by the batch, in one line


class DaskPool(WorkerPool):
    """A ``concurrent.futures`` executor on a Dask cluster (``Client.get_executor``).

    ``slots`` is the cluster's total worker threads when the run starts. A
    worker lost mid-clip is handled by Dask (it retries elsewhere, then
    raises ``KilledWorker``, which the batch records in stage ``worker``).
    ``timeout`` counts from submission (one call per slot is handed over at
    a time, so that is about when it starts); a call past it fails with
    :class:`ClipTimeout` and is cancelled, though a Dask worker thread
    stuck in native code stays busy until its process is restarted.
    """

    depth = 1

    def __init__(self, address: str, *, wait_for_workers_s: float = WAIT_FOR_WORKERS_S,
                 timeout: float | None = None) -> None:
        distributed = require("distributed", "cluster")
        self.address, self.timeout = address, timeout
        try:
            self.client = distributed.Client(address, set_as_default=False, timeout=wait_for_workers_s)
        except OSError as exc:
            raise ConnectionError(f"cannot reach the Dask scheduler at {address}: {exc}") from exc
        try:
            self.client.wait_for_workers(1, timeout=wait_for_workers_s)
        except TimeoutError as exc:
            self.client.close()
            raise ConnectionError(f"the Dask scheduler at {address} has no workers "
                                  f"(waited {wait_for_workers_s:.0f} s)") from exc
        self.slots = max(1, sum(self.client.nthreads().values()))
        self.executor = self.client.get_executor(pure=False)
        self._levels = {name: logging.getLogger(name).level for name in _QUIET}
        for name in _QUIET:
            logging.getLogger(name).setLevel(logging.CRITICAL)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future:
        inner = self.executor.submit(fn, *args)
        if self.timeout is None:
            return inner
        outer: Future = Future()
        outer.set_running_or_notify_cancel()
        timer = threading.Timer(self.timeout, _expire, args=(inner, outer, self.timeout))
        timer.daemon = True
        inner.add_done_callback(lambda done: (timer.cancel(), _copy(done, outer)))
        timer.start()
        return outer

    def lost(self) -> str | None:
        """A client that is not ``running`` lost its scheduler (Dask cancels every task it held)."""
        return None if self.client.status == "running" else f"lost the Dask scheduler at {self.address}"

    def close(self, *, cancel: bool) -> None:
        try:
            self.executor.shutdown(wait=not cancel)
        finally:
            self.client.close()
            for name, level in self._levels.items():
                logging.getLogger(name).setLevel(level)


def _copy(done: Future, outer: Future) -> None:
    """Give ``outer`` the outcome of ``done`` unless the time limit settled it first."""
    with contextlib.suppress(InvalidStateError):
        if done.cancelled():
            outer.set_exception(CancelledError())
        elif done.exception() is not None:
            outer.set_exception(done.exception())
        else:
            outer.set_result(done.result())


def _expire(inner: Future, outer: Future, seconds: float) -> None:
    """Fail ``outer`` with :class:`ClipTimeout` and cancel the cluster's task."""
    with contextlib.suppress(InvalidStateError):
        outer.set_exception(ClipTimeout(seconds))
    inner.cancel()
