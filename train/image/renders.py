"""Rendered datasets for the image network's experiments: a training set without some people,
and a test set of only those people, made with the built-in player (`posebridge generate`)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console


def bundled_subjects() -> list[str]:
    """Every performer of the bundled mocap (generator/data/mocap)."""
    from generator.poses import load_pose_source

    return sorted({c.subject for c in load_pose_source("bundled").clips})


def render_dataset(out: str | Path, frames: int, image_size: int = 256, seed: int = 0, workers: int = 2,
                   exclude: list[str] | tuple[str, ...] = (), only: list[str] | tuple[str, ...] | None = None,
                   show_progress: bool = False, console: Console | None = None, identity_seed: int = 0) -> Path:  # fmt: skip
    """Render (or finish) `frames` frames of the bundled mocap into `out`, leaving out the people in
    `exclude`, or keeping only those in `only`, with bodies from the pool of `identity_seed`. A
    complete folder is left as it is."""
    from bridge.generate import load_generate_config, run_generate
    from bridge.players import BuiltinLauncher

    out = Path(out)
    if only is not None:
        exclude = [s for s in bundled_subjects() if s not in set(only)]
    cfg = load_generate_config(None, {
        "frames": frames, "workers": workers, "seed": seed, "shard_size": min(1000, frames),
        "player.scene.image_size": [image_size, image_size], "player.pose_exclude_subjects": list(exclude),
        "player.scene.human.identity_seed": identity_seed,
    })  # fmt: skip
    run_generate(cfg, out, BuiltinLauncher.from_config(cfg, out / ".run"), console=console or Console(quiet=True), show_progress=show_progress)
    return out
