"""The generator's commands: a thin click layer over generator.pairs and friends."""

from __future__ import annotations

from pathlib import Path

import click

from .cli_support import overwrite_option, user_errors


@click.command()
@click.option("--source", required=True, help="Mocap clips: a folder or file (BVH, DeepMimic), 'bundled' or 'prior'.")
@click.option("--n", "n", type=click.IntRange(min=1), required=True, help="Number of pairs.")
@click.option("--seed", type=int, default=0, show_default=True, help="Same seed, same pairs, bit for bit.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output pairs v1 file (.npz).")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML file mapping onto PairsConfig.")
@click.option("--baseline-mm", type=float, help="Stereo baseline of the right view (default 500).")
@click.option("--image-size", type=(click.IntRange(min=1), click.IntRange(min=1)), metavar="W H", help="One image size for every camera (FOV ranges kept).")
@click.option("--exclude-subject", "exclude_subjects", multiple=True, help="Leave out this performer's clips (repeatable), e.g. cmu_38.")
@overwrite_option("pairs file")
@user_errors
def pairs(source: str, n: int, seed: int, out: Path, config_path: Path | None, baseline_mm: float | None, image_size, exclude_subjects, overwrite: bool) -> None:
    """Generate N 2D/3D keypoint pairs from mocap (or the pose prior) under random cameras."""
    import time

    from .outputs import claim_output

    claim_output(out, what="pairs file", folder=False, overwrite=overwrite, resume_flag=None)

    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from .config_file import ConfigError
    from .pairs import load_pairs_config, write_pairs_file
    from .pairs_summary import SummaryAccumulator, print_summary
    from .poses import PoseSourceError, load_pose_source

    console = Console(stderr=True)
    try:
        config = load_pairs_config(config_path, {"baseline_mm": baseline_mm})
    except ConfigError as e:
        raise click.BadParameter(str(e), param_hint="--config / --baseline-mm") from e
    if image_size is not None:
        config = config.model_copy(update={"camera": config.camera.with_image_size(*image_size)})
    try:
        bank = load_pose_source(source, seed=seed, exclude_subjects=exclude_subjects)
    except PoseSourceError as e:  # the --source argument names nothing usable
        raise click.BadParameter(str(e), param_hint="--source") from e
    # A clip that cannot be read (BVHParseError, DeepMimicFormatError, ...) or a camera rule no camera
    # meets (CameraRuleError) reaches posebridge's one-line error handler with its own message.
    console.print(f"[bold]{source}[/]: {len(bank):,} poses from {len(bank.clips)} clips")

    start = time.perf_counter()
    with Progress(
        TextColumn("generating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=console, transient=True
    ) as bar:
        task = bar.add_task("pairs", total=n)
        summary = SummaryAccumulator()
        progress = lambda done: bar.update(task, completed=done)  # noqa: E731
        stats = write_pairs_file(out, bank, n, seed, config, progress=progress, on_chunk=summary.add)
    elapsed = time.perf_counter() - start
    console.print(f"wrote {out} ({out.stat().st_size / 1e6:,.1f} MB) in {elapsed:.2f} s ({n / elapsed:,.0f} pairs/s, writing included)")
    print_summary(Console(), summary.result(stats), title=str(out))


@click.command("export-body")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output glTF binary (.glb).")
@click.option("--phenotype", type=click.FloatRange(0.0, 1.0), nargs=6, metavar="G A M W H P",
              help="Anny phenotype: gender, age, muscle, weight, height, proportions, each in [0, 1] (default all 0.5).")
@click.option("--identity-seed", type=click.IntRange(min=0), help="Export identity --index of the player pool drawn with this seed.")
@click.option("--index", type=click.IntRange(min=0), default=0, show_default=True, help="Which identity of the pool.")
@click.option("--identities", type=click.IntRange(min=1), help="Pool size the seed was used with (default: HumanConfig's).")
def export_body(out: Path, phenotype, identity_seed: int | None, index: int, identities: int | None) -> None:
    """Export one human body (mesh, 104-bone skin, h36m17 definitions) as glTF 2.0 for Unity."""
    import numpy as np
    from rich.console import Console

    from .body.gltf import BodyExportError, export_body as write, pool_phenotype
    from .body.model import PHENOTYPE_LABELS

    if phenotype and identity_seed is not None:
        raise click.UsageError("give either --phenotype or --identity-seed/--index, not both")
    try:
        values = np.asarray(phenotype, dtype=np.float64) if phenotype else (
            pool_phenotype(identity_seed, index, identities) if identity_seed is not None else None)
        path = write(out, values)
    except BodyExportError as e:
        raise click.BadParameter(str(e), param_hint="--out / --phenotype / --index") from e
    shown = values if values is not None else np.full(len(PHENOTYPE_LABELS), 0.5)
    Console(stderr=True).print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): "
                               + ", ".join(f"{k} {v:.3f}" for k, v in zip(PHENOTYPE_LABELS, shown)))
