"""The `posebridge` command: a thin click layer over the library functions in each package.

Subcommands are imported lazily, so `posebridge pairs` does not pay for importing torch or Qt.
Each package owns its commands in its own `cli.py`; this table only names them.
"""

from __future__ import annotations

import functools
import importlib
import logging
import sys

import click

__version__ = "0.1.0"

# name -> "module:attribute" of a click command.
COMMANDS: dict[str, str] = {
    "pairs": "generator.cli:pairs",
    "export-body": "generator.cli:export_body",
    "generate": "bridge.cli:generate",
    "inspect": "bridge.cli:inspect",
    "export": "bridge.cli:export",
    "schema": "bridge.cli:schema",
    "keys": "bridge.cli:keys",
    "train": "train.cli:train",
    "evaluate": "train.cli:evaluate",
    "label": "train.cli:label",
    "import-videopose3d": "train.cli:import_videopose3d_command",
    "view": "pyside.cli:view",
    "demo": "train.cli:demo",
}


# Exceptions that mean bad input (a file, a flag, a config), not a bug: every command reports them
# as one line, "Error: <message>", exit status 1. Readers raise ValueError subclasses whose message
# names the file, key or line (PairsFormatError, BVHParseError, DeepMimicFormatError, ...); OSError
# covers missing and unreadable paths. Entries are "module:Class", matched only once that module is
# loaded (an exception of a module never imported cannot occur), so this costs no imports.
USER_ERRORS: tuple[str, ...] = ("builtins:ValueError", "builtins:OSError", "generator.store:StoreError")


def is_user_error(error: BaseException) -> bool:
    """True when `error` is bad input that a command reports in one line (see USER_ERRORS)."""
    for spec in USER_ERRORS:
        module, name = spec.split(":")
        cls = getattr(sys.modules.get(module), name, None)
        if isinstance(cls, type) and isinstance(error, cls):
            return True
    return False


def user_error_message(error: BaseException) -> str:
    """The one-line form of a user error: its message, or its type when it has none."""
    text = str(error).strip()
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        text = f"{error.filename}: {error.strerror}"
    return text or type(error).__name__


def report_user_errors(fn):
    """Decorate a command (or a group's invoke): a `USER_ERRORS` exception escaping it becomes a
    `click.ClickException`, i.e. "Error: <message>" and exit status 1. With -vv the traceback is kept."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except click.ClickException:
            raise
        except Exception as e:
            if not is_user_error(e) or logging.getLogger().isEnabledFor(logging.DEBUG):
                raise
            raise click.ClickException(user_error_message(e)) from e

    return wrapper


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked (or listed in --help).

    It is also where bad input becomes a one-line error, for every command (`report_user_errors`).
    """

    def invoke(self, ctx: click.Context):
        return report_user_errors(super().invoke)(ctx)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(COMMANDS))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in COMMANDS:
            module, attr = COMMANDS[name].split(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="posebridge")
@click.option("-v", "--verbose", count=True, help="More log output (-v info, -vv debug).")
def main(verbose: int) -> None:
    """Synthetic 2D/3D human keypoints and the stereo 2D->3D label generator."""
    from rich.logging import RichHandler

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(show_path=False)], force=True)


if __name__ == "__main__":
    main()
