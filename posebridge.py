"""The `posebridge` command: a thin click layer over the library functions in each package.

Subcommands are imported lazily, so `posebridge pairs` does not pay for importing torch or Qt.
Each package owns its commands in its own `cli.py`; this table only names them.
"""

from __future__ import annotations

import importlib
import logging

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
    "train-image": "train.image.cli:train_image",
    "evaluate-image": "train.image.cli:evaluate_image",
    "predict": "train.image.cli:predict",
    "view": "pyside.cli:view",
    "demo": "train.cli:demo",
}


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when invoked (or listed in --help).

    It is also where bad input becomes a one-line error, for every command
    (`generator.cli_support.user_errors`, imported only when a command runs).
    """

    def invoke(self, ctx: click.Context):
        from generator.cli_support import user_errors

        return user_errors(super().invoke)(ctx)

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
@click.option("--s3-endpoint-url", metavar="URL", help="S3 endpoint for s3:// datasets (default: $AWS_ENDPOINT_URL, else AWS).")
@click.option("--storage-option", "storage_options", multiple=True, metavar="KEY=VALUE",
              help="An fsspec option for s3:// datasets, e.g. key=..., secret=..., anon=true (credentials default to the AWS environment).")
def main(verbose: int, s3_endpoint_url: str | None = None, storage_options: tuple[str, ...] = ()) -> None:
    """Synthetic 2D/3D human keypoints and the stereo 2D->3D label generator."""
    from rich.logging import RichHandler

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(show_path=False)], force=True)
    if s3_endpoint_url or storage_options:
        from generator.storage import parse_storage_options, set_default_options

        set_default_options("s3", endpoint_url=s3_endpoint_url, **parse_storage_options(storage_options))


if __name__ == "__main__":
    main()
