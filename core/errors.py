"""The error type for input a user can fix (a bad file, a bad option): the CLI shows it as one line.

Anything else that escapes is an internal error and keeps its traceback.
"""

from __future__ import annotations


class UserError(ValueError):
    """Input a user can fix; the message names the file (and line) and the reason."""
