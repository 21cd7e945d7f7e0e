"""What every `posebridge` command shares: one-line errors and the --overwrite flag."""

from __future__ import annotations

import functools
import logging

import click

from .errors import UserError

log = logging.getLogger(__name__)

# Errors that are the user's input or environment, never a bug: shown as one line, exit status 1.
# ValueError covers the readers' format errors (PairsFormatError, BVHParseError, ConfigError, ...),
# OSError missing files, permissions and full disks.
USER_ERRORS = (UserError, ValueError, OSError)


def user_errors(fn):
    """Turn USER_ERRORS into `Error: <message>` (click.ClickException) instead of a traceback;
    with -vv the traceback is logged as well."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except USER_ERRORS as e:
            log.debug("user error", exc_info=True)
            raise click.ClickException(str(e) or type(e).__name__) from e

    return wrapper


def overwrite_option(what: str):
    """The --overwrite flag of a command whose output is a `what`."""
    return click.option("--overwrite", is_flag=True, help=f"Replace an existing {what} at --out (refused without it).")
