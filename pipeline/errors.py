"""Errors that carry the pipeline stage where a clip failed."""

from __future__ import annotations


class StageError(Exception):
    """A clip that failed in a named stage (``media``, ``text``, ``audio``, ``video``, ``model``...).

    ``reason`` is one line meant for a results table; ``str()`` is
    ``"<stage>: <reason>"``. The error pickles by its two fields, so it
    survives the trip back from a worker process.
    """

    def __init__(self, stage: str, reason: str) -> None:
        self.stage = stage
        self.reason = " ".join(str(reason).split())
        super().__init__(f"{stage}: {self.reason}")

    def __reduce__(self):
        return (type(self), (self.stage, self.reason))
