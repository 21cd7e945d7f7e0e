"""What every `posebridge` command shares: one-line errors and the --overwrite flag."""

from __future__ import annotations

import functools
import logging
from pathlib import Path

import click

from .errors import UserError

log = logging.getLogger(__name__)

# Errors that are the user's input or environment, never a bug: shown as one line, exit status 1.
# ValueError covers the readers' format errors (PairsFormatError, BVHParseError, ConfigError, ...)
# whose messages name the file, key or line; OSError missing files, permissions and full disks;
# UserError the store's and the output rule's refusals.
USER_ERRORS = (UserError, ValueError, OSError)


def user_error_message(error: BaseException) -> str:
    """The one-line form of a user error: its message, or its type when it has none."""
    text = str(error).strip()
    if "Original Traceback" in text:  # raised in a DataLoader worker: its message carries the worker's traceback
        text = text.splitlines()[-1]
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    return " ".join(text.split()) or type(error).__name__


def user_errors(fn):
    """Decorate a command (or the group's invoke): USER_ERRORS become `Error: <message>` and exit
    status 1 (click.ClickException) instead of a traceback; with -vv the traceback is kept."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except USER_ERRORS as e:
            if logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            raise click.ClickException(user_error_message(e)) from e

    return wrapper


class DatasetLocation(click.ParamType):
    """A dataset folder (a Path; with `exists`, it must be a folder) or an fsspec URL such as
    s3://bucket/prefix (kept as a str; generator/storage.py)."""

    name = "DIR|URL"

    def __init__(self, exists: bool):
        self.exists = exists

    def convert(self, value, param, ctx):
        from .storage import is_remote

        if isinstance(value, str) and is_remote(value):
            return value.rstrip("/")
        text = str(value)
        path = click.Path(exists=self.exists, file_okay=False, path_type=Path).convert(text[len("file://") :] if text.startswith("file://") else text, param, ctx)
        return path


DATASET = DatasetLocation(exists=True)
NEW_DATASET = DatasetLocation(exists=False)


def overwrite_option(what: str):
    """The --overwrite flag of a command whose output is a `what`."""
    return click.option("--overwrite", is_flag=True, help=f"Replace an existing {what} at --out (refused without it).")
