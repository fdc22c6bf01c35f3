"""Errors in the user's input or setup, as opposed to bugs.

Raise `UserError` (or a subclass) when a file, folder, params value or model the user
supplied cannot be used; the message names it and says why. `lsdc` (cli.main) prints such
an error as one line, ``lsdc <command>: <message>``, and exits with code 2, never a
traceback (`-v` logs the traceback at debug level).
"""

from __future__ import annotations


class UserError(ValueError):
    """An error in the user's input or setup; the message names the file and the reason."""


__all__ = ["UserError"]
