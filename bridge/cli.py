"""Commands of the bridge: `generate`, `inspect`, `export`, `schema`, `keys` (thin click wrappers)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from rich.console import Console

from generator.cli_support import DATASET, NEW_DATASET, overwrite_option, user_errors

console = Console(stderr=True)


def _image_size(_ctx, _param, value: str | None):
    if value is None:
        return None
    try:
        parts = [int(v) for v in value.lower().split("x")]
    except ValueError:
        raise click.BadParameter(f"{value!r}: give N (square) or WxH") from None
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) <= 0:
        raise click.BadParameter(f"{value!r}: give N (square) or WxH with positive numbers")
    return tuple(parts)


def _player_kinds() -> list[str]:
    from .players import PLAYER_KINDS

    return sorted(PLAYER_KINDS)


@click.command()
@click.option("--player", type=click.Choice(_player_kinds()), default="builtin", show_default=True, help="Which player renders the frames.")
@click.option("--frames", type=int, help="Frames in the dataset (frame ids 0..N-1). [config or 1000]")
@click.option("--workers", type=int, help="Player processes (0: wait for players started elsewhere). [config or 2]")
@click.option("--seed", type=int, help="Run seed: with the config it determines every frame. [config or 0]")
@click.option("--image-size", callback=_image_size, help="Rendered image size, N or WxH. [config or 256]")
@click.option("--out", "out", type=NEW_DATASET, required=True,
              help="Dataset folder or URL (s3://bucket/prefix): created, or resumed when made with the same arguments.")
@click.option("--config", "config_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="YAML generate config.")
@click.option("--endpoint", "endpoints", multiple=True, help="Collector bind endpoint(s), e.g. tcp://0.0.0.0:5557. [tcp://127.0.0.1:*]")
@click.option("--shard-size", type=int, help="Frames per shard. [config or 1000]")
@click.option("--pose-source", help="Poses: bundled, prior, or a mocap file/folder. [config or bundled]")
@click.option("--exclude-subject", "exclude_subjects", multiple=True, help="Leave out this performer's clips (repeatable), e.g. cmu_38.")
@click.option("--encoding", type=click.Choice(["jpeg", "png", "raw"]), help="Image encoding. [config or jpeg]")
@click.option("--photo-dir", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of background photos.")
@click.option("--body", "body_model", type=click.Choice(["human", "mannequin"]), help="Figure the built-in player draws. [config or human]")
@click.option("--identities", type=int, help="Human bodies per player (drawn once from the seeded shape distributions). [config or 64]")
@click.option("--identity-seed", type=int, help="Seed of the body pool; change it for bodies no other run used. [config or 0]")
@click.option("--curve-secret-key", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Enable CURVE: the collector's secret key file.")
@click.option("--curve-authorized-keys", type=click.Path(exists=True, file_okay=False, path_type=Path), help="Folder of player public keys allowed in.")
@click.option("--player-option", "player_options", multiple=True, metavar="KEY=VALUE", help="An option of the chosen player kind.")
@click.option("--run-id", help="Run id players must present (default: a fresh one); players started elsewhere need it.")
@click.option("--unity-exe", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="The Unity Linux player build (--player unity).")
@click.option("--control", type=click.Choice(["process", "mlagents"]), default="process", show_default=True,
              help="How builtin players are driven: started directly, or through ML-Agents like Unity players.")
@click.option("--no-progress", is_flag=True, help="No progress display (logs only).")
@click.option("--executor", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="local: player processes on this machine; ray: players as Ray actors, one collector per node (bridge/ray_executor.py).")
@click.option("--ray-address", help="Ray cluster to join (HOST:PORT or auto) with --executor ray. [a local one]")
@click.option("--ray-gpus-per-player", type=float, default=0.0, show_default=True, help="GPUs each player actor asks for (Unity players: 1); 0: one CPU each.")
@overwrite_option("dataset folder (even one made with other arguments)")
@user_errors
def generate(player, frames, workers, seed, image_size, out, config_path, endpoints, shard_size, pose_source, exclude_subjects, encoding, photo_dir,
             body_model, identities, identity_seed, curve_secret_key, curve_authorized_keys, player_options, run_id, no_progress, unity_exe=None,
             control="process", overwrite=False, executor="local", ray_address=None, ray_gpus_per_player=0.0) -> None:
    """Render a dataset with W player processes into sharded WebDataset tars, resuming DIR if it exists."""
    from .generate import load_generate_config, print_generate_summary, run_dir_for, run_generate
    from .players import launcher_class

    overrides = {
        "frames": frames,
        "workers": workers,
        "seed": seed,
        "shard_size": shard_size,
        "player.scene.image_size": list(image_size) if image_size else None,
        "player.pose_source": pose_source,
        "player.pose_exclude_subjects": list(exclude_subjects) or None,
        "player.encoding": encoding,
        "player.scene.background.photo_dir": str(photo_dir) if photo_dir else None,
        "player.scene.body_model": body_model,
        "player.scene.human.identities": identities,
        "player.scene.human.identity_seed": identity_seed,
        "transport.endpoints": list(endpoints) or None,
        "transport.curve.server_secret_key": str(curve_secret_key) if curve_secret_key else None,
        "transport.curve.authorized_keys": str(curve_authorized_keys) if curve_authorized_keys else None,
    }
    options = {}
    for item in player_options:
        key, sep, value = item.partition("=")
        if not sep:
            raise click.BadParameter(f"{item!r}: expected KEY=VALUE", param_hint="--player-option")
        options[key.replace("-", "_")] = value
    if unity_exe is not None:
        options["unity_exe"] = str(unity_exe)
    if control == "mlagents" and player == "builtin":
        player = "builtin-mlagents"
    config = load_generate_config(config_path, overrides)
    if executor == "ray":
        from .ray_executor import print_ray_summary, run_generate_ray

        if overwrite:
            raise click.BadParameter("--overwrite is not supported with --executor ray; remove the dataset first", param_hint="--overwrite")
        summary = run_generate_ray(config, out, player, options, run_id=run_id, ray_address=ray_address, gpus_per_player=ray_gpus_per_player)
        print_ray_summary(console, out, summary)
        if not summary.complete:
            sys.exit(1)
        return
    launcher = launcher_class(player).from_config(config, run_dir_for(out), **options)
    summary = run_generate(config, out, launcher, run_id=run_id, console=console, show_progress=not no_progress, overwrite=overwrite)
    print_generate_summary(console, summary)
    if not summary.complete:
        sys.exit(1)


@click.command()
@click.argument("folder", type=DATASET)
@click.option("--sheet", type=click.Path(dir_okay=False, path_type=Path), help="Contact sheet PNG. [FOLDER/contact_sheet.png; ./contact_sheet.png for a URL]")
@click.option("--samples", type=int, default=16, show_default=True, help="Frames on the contact sheet.")
@click.option("--verify", is_flag=True, help="Re-read every shard, check every image's CRC-32, decode it, cross-check JSON and arrays.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON on stdout.")
@user_errors
def inspect(folder: Path, sheet: Path | None, samples: int, verify: bool, as_json: bool) -> None:
    """Counts, rejects, distributions and a contact sheet of a dataset folder.

    Exit status 0 only when the dataset is complete and sound (and, with --verify, verified);
    1 when frames are missing or a shard is damaged, with the reason on the last line.
    """
    from rich.markup import escape

    from .dataset_report import contact_sheet, print_dataset_summary, summarize_dataset, summary_json, verify_dataset

    summary = summarize_dataset(folder)
    if as_json:
        click.echo(summary_json(summary))
    else:
        print_dataset_summary(console, summary)
    problems = summary.damaged + summary.lost
    if verify:  # before the contact sheet, which would stop at the first damaged image
        checked, problems = verify_dataset(folder, decode=True)
        for p in problems[:50]:
            console.print(f"[red]problem[/]: {escape(p)}", highlight=False)
        console.print(f"verified {checked} frames: " + ("[green]no problems[/]" if not problems else f"[red]{len(problems)} problem(s)[/]"))
    if summary.frames_stored and not summary.damaged and (not verify or not problems):
        default = Path("contact_sheet.png") if isinstance(folder, str) else folder / "contact_sheet.png"
        path = contact_sheet(folder, sheet or default, samples=samples)
        console.print(f"contact sheet: {path}")
    if problems:
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise click.ClickException(f"{folder}/{problems[0]}{more}; `posebridge generate` with the same arguments renders damaged or lost shards again")
    if not summary.complete:
        raise click.ClickException(
            f"{folder} is incomplete: {summary.frames_stored} of {summary.manifest.frames} frames ({summary.missing} missing); "
            f"rerun `posebridge generate` with the same arguments to finish it"
        )


@click.command()
@click.argument("folder", type=DATASET)
@click.option("--format", "fmt", type=click.Choice(["pairs"]), default="pairs", show_default=True)
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Output file (.npz), outside FOLDER.")
@click.option("--with-masks", is_flag=True, help="Also copy the person masks to OUT's folder, OUT_STEM_masks/{frame id:09d}.png.")
@overwrite_option("file")
@user_errors
def export(folder: Path, fmt: str, out: Path, with_masks: bool, overwrite: bool) -> None:
    """Export a dataset folder's keypoints: a pairs v1 .npz with visibility and the right view
    (its `frame_id` key names each row), and with --with-masks the person-mask PNGs beside it."""
    import numpy as np

    from generator.outputs import claim_output
    from generator.store import export_masks, export_pairs, scan_dataset

    claim_output(out, what="pairs file", folder=False, overwrite=overwrite, inputs=[folder], resume_flag=None)
    mask_dir = masks_folder(out)
    if with_masks:
        claim_output(mask_dir, what="mask folder", overwrite=overwrite, owned=("*.png",), inputs=[folder], resume_flag=None)
    scan = scan_dataset(folder, keep=())
    scan.raise_if_damaged()
    path = export_pairs(folder, out)
    with np.load(path) as z:  # the count really written
        written = len(z["frame_id"])
    if not scan.complete:
        lost = f"; {len(scan.lost)} shard(s) listed in the manifest are gone" if scan.lost else ""
        console.print(
            f"[yellow]note[/]: {folder} is incomplete ({scan.frames_stored} of {scan.manifest.frames} frames, {scan.missing_text()} missing{lost}); "
            f"exported what is stored"
        )
    console.print(f"wrote {path} ({written} pairs, frame-id order)")
    if with_masks:
        masks, missing = export_masks(folder, mask_dir)
        console.print(f"wrote {masks} person masks to {mask_dir}" + (f" ([yellow]{missing} frames have no mask[/])" if missing else ""))


def masks_folder(out: Path) -> Path:
    """Where `export --with-masks` puts the masks of OUT: a folder OUT_STEM_masks beside it."""
    return out.with_name(f"{out.stem}_masks")


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Folder to write into. [bridge/schema]")
@click.option("--check", is_flag=True, help="Only check that the committed schemas are current (exit 1 if not).")
@user_errors
def schema(out: Path | None, check: bool) -> None:
    """Export the wire protocol's JSON Schemas (the contract of the Unity player)."""
    from .protocol import SCHEMA_DIR, stale_schemas, write_schemas

    target = out or SCHEMA_DIR
    if check:
        stale = stale_schemas(target)
        if stale:
            raise click.ClickException(f"stale schemas in {target}: {', '.join(stale)}; run `posebridge schema`")
        console.print(f"schemas in {target} are current")
        return
    for path in write_schemas(target):
        console.print(f"wrote {path}")


@click.command()
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for the key files.")
@click.option("--name", required=True, help="Key name, e.g. collector or player-host1.")
@user_errors
def keys(out: Path, name: str) -> None:
    """Create a CurveZMQ key pair: NAME.key (public, share it) and NAME.key_secret (keep it)."""
    from .transport import generate_keys

    public, secret = generate_keys(out, name)  # refuses existing key files (FileExistsError)
    console.print(f"public key: {public}\nsecret key: {secret}")
