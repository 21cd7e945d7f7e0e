"""`posebridge view`: open the desktop viewer on a pairs file or a dataset folder."""

from __future__ import annotations

import click

from generator.cli_support import DatasetLocation, user_errors


class _PathOrUrl(DatasetLocation):
    """A pairs .npz or a dataset folder (a path that exists), or a dataset URL."""

    def convert(self, value, param, ctx):
        from generator.storage import is_remote

        if isinstance(value, str) and is_remote(value):
            return value.rstrip("/")
        return click.Path(exists=True).convert(value, param, ctx)


PATH_OR_URL = _PathOrUrl(exists=True)


@click.command()
@click.argument("path", type=PATH_OR_URL)
@click.option("--index", default=0, show_default=True, help="Sample to show first.")
@click.option("--screenshot", type=click.Path(dir_okay=False), help="Save a PNG of the window and exit (works headless).")
@user_errors
def view(path: str, index: int, screenshot: str | None) -> None:
    """Browse PATH (a pairs .npz or a dataset folder): image + 2D skeleton beside the 3D pose."""
    from .viewer import run_viewer

    raise SystemExit(run_viewer(path, index=index, screenshot=screenshot))
