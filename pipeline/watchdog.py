"""A watchdog process that ends a process stuck past its time limit, even inside native code.

A thread of the stuck process could not help: a decoder that hangs while
holding the GIL stops every thread. So the watchdog is a separate small
process: it waits on a pipe from the watched process; if the pipe closes
first (the work finished, or the process died), it exits quietly;
otherwise, at the deadline, it writes one line to stderr and kills the
watched process (``SIGKILL``: exit status 137 in a shell).
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import sys
from types import TracebackType


class Watchdog:
    """Kill this process with ``message`` on stderr unless the ``with`` block ends within ``seconds``."""

    def __init__(self, seconds: float, message: str) -> None:
        self.seconds, self.message = seconds, message
        self._process: subprocess.Popen | None = None

    def __enter__(self) -> "Watchdog":
        command = [sys.executable, "-m", "sgdtam_pipe.pipeline.watchdog", str(os.getpid()), repr(self.seconds),
                   self.message]
        self._process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        assert self._process is not None and self._process.stdin is not None
        self._process.stdin.close()  # the watchdog sees EOF and exits
        self._process.wait()


def watch(parent: int, seconds: float, message: str) -> None:
    """Wait for EOF on stdin; past ``seconds`` write ``message`` and kill ``parent``."""
    readable, _, _ = select.select([sys.stdin], [], [], seconds)
    if readable or os.getppid() != parent:
        return
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os.kill(parent, signal.SIGKILL)


if __name__ == "__main__":
    watch(int(sys.argv[1]), float(sys.argv[2]), sys.argv[3])
