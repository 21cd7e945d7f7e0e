"""The error type the CLI shows as one line."""

from __future__ import annotations


class UserError(Exception):
    """Bad input, a damaged file or a refused action: every command prints the message as one
    line (`Error: ...`, exit status 1) instead of a traceback (generator/cli_support.py)."""
