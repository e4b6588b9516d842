"""Dask distributed backend for batch runs: the cluster's executor in place of the local pool.

The scheduler address is what ``dask scheduler`` prints (``tcp://host:8786``).
Every worker must have this package (and the extras the job needs) installed
and must see the clips at the same paths as the machine that starts the run;
only paths and small JSON results travel. Outcomes come back to the parent,
which alone writes the run state.
"""

from __future__ import annotations

from sgdtam_pipe.extractors.base import require
from sgdtam_pipe.pipeline.pools import WorkerPool

WAIT_FOR_WORKERS_S = 60.0


class DaskPool(WorkerPool):
    """A ``concurrent.futures`` executor on a Dask cluster (``Client.get_executor``).

    ``slots`` is the cluster's total worker threads when the run starts. A
    worker lost mid-clip is handled by Dask (it retries elsewhere, then
    raises ``KilledWorker``, which the batch records in stage ``worker``).
    """

    def __init__(self, address: str, *, wait_for_workers_s: float = WAIT_FOR_WORKERS_S) -> None:
        distributed = require("distributed", "cluster")
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

    def close(self, *, cancel: bool) -> None:
        try:
            self.executor.shutdown(wait=not cancel)
        finally:
            self.client.close()
