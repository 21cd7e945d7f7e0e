"""What `posebridge inspect` shows: counts, rejects, distributions, mask coverage, a full
verification, and a contact sheet of samples with the person mask outlined and the 2D skeleton
drawn thin over it."""

from __future__ import annotations

import dataclasses
import io
import json
import tarfile
import zlib
from pathlib import Path, PurePosixPath

import numpy as np
from PIL import Image, ImageDraw
from rich.markup import escape
from rich.table import Table

from generator.camera import camera_center, fov_from_focal
from generator.masks import MaskError, decode_mask_png, mask_outline
from generator.skeleton import BONES, joint_colour_rgb
from generator.store import (
    ARRAY_DEFAULTS,
    IMAGE_EXTENSIONS,
    MANIFEST_NAME,
    PAIRS_CACHE_NAME,
    DatasetReader,
    Manifest,
    image_crc32,
    decode_image,
    frame_key,
    frame_members,
    scan_dataset,
)
from generator.storage import open_storage

from .collector import header_arrays, header_strings
from .protocol import FrameHeader


@dataclasses.dataclass
class DatasetSummary:
    manifest: Manifest
    frames_stored: int  # frames in sound shards on disk (not the manifest's count)
    shards: int  # sound shards
    bytes_on_disk: int
    rejects: dict[str, int]  # summed over all runs
    distributions: dict[str, np.ndarray]  # name -> (p5, p50, p95, min, max)
    visibility: dict[str, float]  # fraction of joints outside / occluded / visible
    sources: dict[str, int]  # subject or "prior" -> frames
    actions: dict[str, int]
    masks: dict[str, float] = dataclasses.field(default_factory=dict)  # coverage: see summarize_dataset
    complete: bool = False  # every frame id 0..N-1 is in a sound shard on disk
    missing: str = ""  # the missing frame ids as ranges ("frames 8..15")
    damaged: list[str] = dataclasses.field(default_factory=list)  # "<file>: <problem>" per damaged shard
    lost: list[str] = dataclasses.field(default_factory=list)  # shards listed in the manifest but gone


_SUMMARY_KEYS = ("joints_2d", "joints_3d", "K", "R", "t", "image_size", "visibility", "subject", "action", "image_bytes", "mask_pixels")


def summarize_dataset(folder: str | Path) -> DatasetSummary:
    """Counts and distributions of what a dataset folder really holds: its sound shards, checked
    (scan_dataset, tar indexes included); damaged and lost shards are listed, not read. Only a
    damaged manifest raises (StoreError). No image is decoded.

    Mask coverage comes from the person-pixel counts the collector recorded: the fraction of
    frames with a mask, and the mean, median and zero-count of the person's share of the image.
    """
    folder = open_storage(folder)
    scan = scan_dataset(folder, walk_tars=True, keep=_SUMMARY_KEYS)
    manifest = scan.manifest
    rejects: dict[str, int] = {}
    for run in manifest.runs:
        for k, v in run.rejects.items():
            rejects[k] = rejects.get(k, 0) + v
    sound = scan.sound
    state = dict(
        complete=scan.complete,
        missing=scan.missing_text(),
        damaged=scan.damaged_problems(),
        lost=scan.lost_problems(),
    )
    size = sum(c.tar_bytes + folder.size(f"{c.name}.npz") for c in sound)
    if not sound:
        return DatasetSummary(manifest, 0, 0, 0, rejects, {}, {}, {}, {}, {}, **state)
    a = {k: np.concatenate([c.arrays[k] for c in sound]) for k in _SUMMARY_KEYS}
    j2, j3 = a["joints_2d"], a["joints_3d"]
    inside = a["visibility"] > 0
    height_px = np.where(inside, j2[..., 1], np.nan)
    with np.errstate(all="ignore"):
        person_px = np.nanmax(height_px, axis=1) - np.nanmin(height_px, axis=1)
    axis_z = a["R"][:, 2, 2]  # world z of the optical axis
    values = {
        "pelvis depth (mm)": j3[:, 0, 2],
        "camera height (mm)": camera_center(a["R"].astype(np.float64), a["t"].astype(np.float64))[:, 2],
        "camera pitch down (deg)": np.degrees(-np.arcsin(np.clip(axis_z, -1, 1))),
        "FOV, long side (deg)": fov_from_focal(a["K"][:, 0, 0], a["image_size"].max(axis=1)),
        "person height in image (px)": person_px[np.isfinite(person_px)],
        "joints in image (of 17)": inside.sum(axis=1).astype(np.float64),
        "image size (KB)": a["image_bytes"] / 1024.0,
    }
    has_mask = a["mask_pixels"] >= 0
    person = a["mask_pixels"][has_mask] / a["image_size"][has_mask].prod(axis=1)
    masks = {"frames with a mask": float(has_mask.mean())}
    if has_mask.any():
        values["person pixels (% of image)"] = 100.0 * person
        masks.update({"mean person fraction": float(person.mean()), "median person fraction": float(np.median(person)), "empty masks": float((person == 0).mean())})
    with np.errstate(all="ignore"):
        distributions = {k: np.percentile(v, [5, 50, 95, 0, 100]) if len(v) else np.full(5, np.nan) for k, v in values.items()}
    vis = a["visibility"]
    visibility = {name: float((vis == code).mean()) for code, name in ((0, "outside"), (1, "occluded"), (2, "visible"))}

    def counts(names: np.ndarray) -> dict[str, int]:
        u, c = np.unique(names, return_counts=True)
        order = np.argsort(-c, kind="stable")
        return {str(u[i]): int(c[i]) for i in order}

    return DatasetSummary(manifest, len(j2), len(sound), size, rejects, distributions, visibility, counts(a["subject"]), counts(a["action"]), masks, **state)


def verify_dataset(folder: str | Path, decode: bool = True) -> tuple[int, list[str]]:
    """Re-read every shard independently (Python's tarfile) and cross-check it; (frames checked, problems).

    First the checks every reader makes (manifest checksum and config hash, each .npz whole
    against its recorded sha256, each tar's size and index); then, per sound shard: each frame's
    tar members (`frame_members`: header, image, and the mask when there is one) in frame-id
    order, each JSON a valid frame header of this run's seed, each image's and mask's CRC-32 and
    (with decode) their pixels' size and the mask's 0/1 values, the .npz rows equal to the JSON
    values, the stored offsets; the manifest's complete flag against the disk, and pairs.npz
    against the shards. Every problem names its file; nothing raises.
    """
    try:
        folder = open_storage(folder)
        scan = scan_dataset(folder, walk_tars=True, keep=None)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return 0, [str(e)]
    manifest = scan.manifest
    problems = scan.problems()
    if manifest.complete and not scan.complete and not problems:
        problems.append(f"{MANIFEST_NAME}: says complete, but {scan.missing_text()} are not in sound shards")
    checked = 0
    for check in scan.sound:
        tar_path = PurePosixPath(f"{check.name}.tar")
        arrays = check.arrays
        ids = arrays["frame_id"]
        has_mask = arrays["mask_offset"] >= 0
        try:
            # A local tar is read in place; an object is fetched whole (one GET, not many ranged reads).
            source = dict(name=folder.file(tar_path.name)) if folder.local else dict(fileobj=io.BytesIO(folder.read_bytes(tar_path.name)))
            with tarfile.open(**source) as tar:
                members = tar.getmembers()
                per_frame = [frame_members(i, str(e), m) for i, e, m in zip(ids, arrays["image_ext"], has_mask)]
                if [m.name for m in members] != [n for names in per_frame for n in names]:
                    problems.append(f"{tar_path.name}: members are not {{key}}.json + {{key}}.<image> [+ {{key}}.mask.png] for frame ids {ids[0]}..{ids[-1]} in order")
                    continue
                start = 0
                for row, names in enumerate(per_frame):
                    checked += 1
                    problems += _check_frame(tar, members[start : start + len(names)], arrays, row, manifest, tar_path, decode)
                    start += len(names)
        except Exception as e:  # noqa: BLE001 - tarfile raises many types for a damaged file
            problems.append(f"{tar_path.name}: unreadable tar ({type(e).__name__}: {e})")
    if scan.complete and folder.local:
        problems += _check_pairs_cache(folder.path, scan)
    return checked, problems


def _check_frame(tar, members, arrays, row, manifest, tar_path, decode) -> list[str]:
    """Every .npz value of one frame against its JSON header, image and mask in the tar."""
    json_member, image_member, *mask_member = members
    where = f"{tar_path.name}:{image_member.name}"
    raw_header = tar.extractfile(json_member).read()
    if zlib.crc32(raw_header) != arrays["header_crc32"][row]:
        return [f"{tar_path.name}:{json_member.name}: CRC-32 mismatch (damaged)"]
    try:
        header = FrameHeader.model_validate_json(raw_header)
    except ValueError as e:
        return [f"{tar_path.name}:{json_member.name}: not a valid frame header ({str(e).splitlines()[0]})"]
    image = tar.extractfile(image_member).read()
    out = []
    if header.frame_id != arrays["frame_id"][row] or header.seed != manifest.config.get("seed", header.seed):
        out.append(f"{where}: JSON frame id/seed {header.frame_id}/{header.seed} do not match")
    if image_member.offset_data != arrays["image_offset"][row] or image_member.size != arrays["image_bytes"][row]:
        out.append(f"{where}: stored image offset/length disagree with the tar")
    ext = image_member.name.rsplit(".", 1)[1]
    try:
        crc = image_crc32(image, ext)
    except Exception as e:  # noqa: BLE001 - a damaged .npy does not parse
        crc = None
        out.append(f"{where}: does not decode ({type(e).__name__}: {e})")
    if crc is not None and (crc != arrays["image_crc32"][row] or (header.image.encoding != "raw" and crc != header.image.crc32)):
        out.append(f"{where}: CRC-32 mismatch")
    expected = {**header_arrays(header), **dict(zip(("subject", "sequence", "action"), header_strings(header)))}
    expected["image_ext"] = IMAGE_EXTENSIONS[header.image.encoding]
    for key, value in expected.items():
        stored = arrays[key][row]
        if not np.array_equal(stored, np.asarray(value, dtype=stored.dtype)):
            out.append(f"{tar_path.name}: {key} of frame {header.frame_id} in the .npz differs from the JSON")
    if decode and crc is not None:
        try:
            pixels = decode_image(image, ext)
            if pixels.shape[:2] != (header.image.shape[0], header.image.shape[1]):
                out.append(f"{where}: decodes to {pixels.shape}, header says {list(header.image.shape)}")
        except Exception as e:  # noqa: BLE001
            out.append(f"{where}: does not decode ({e})")
    if mask_member:
        out += _check_mask_member(tar, mask_member[0], header, arrays, row, tar_path, decode)
    elif header.mask is not None:
        out.append(f"{where}: the header describes a mask but the shard has no {frame_members(header.frame_id, 'x', True)[-1]}")
    else:
        out += [f"{tar_path.name}: {key} of frame {header.frame_id} is {arrays[key][row]}, but the frame has no mask"
                for key, value in ARRAY_DEFAULTS.items() if arrays[key][row] != value]
    return out


def _check_mask_member(tar, member, header, arrays, row, tar_path, decode) -> list[str]:
    where = f"{tar_path.name}:{member.name}"
    if header.mask is None:
        return [f"{where}: the frame's header has no mask"]
    data = tar.extractfile(member).read()
    out = []
    if member.offset_data != arrays["mask_offset"][row] or member.size != arrays["mask_bytes"][row]:
        out.append(f"{where}: stored mask offset/length disagree with the tar")
    crc = zlib.crc32(data)
    if crc != header.mask.crc32 or crc != arrays["mask_crc32"][row]:
        out.append(f"{where}: CRC-32 mismatch")
    if decode:
        try:
            mask = decode_mask_png(data, tuple(header.mask.shape))
            if int(np.count_nonzero(mask)) != arrays["mask_pixels"][row]:
                out.append(f"{where}: {np.count_nonzero(mask)} person pixels, the .npz says {arrays['mask_pixels'][row]}")
        except MaskError as e:
            out.append(f"{where}: {e}")
    return out


def _check_pairs_cache(folder: Path, scan) -> list[str]:
    """pairs.npz (the memory-mapped copy of a complete dataset) must equal the shards."""
    from generator.pairs_io import read_pairs_arrays
    from generator.store import _PAIRS_KEYS

    cache = folder / PAIRS_CACHE_NAME
    if not cache.exists():
        return []
    try:
        cached = read_pairs_arrays(cache, mmap=False)
    except Exception as e:  # noqa: BLE001 - reported, not raised
        return [f"{PAIRS_CACHE_NAME}: unreadable ({str(e).splitlines()[0] if str(e) else type(e).__name__}); delete it, the next generate writes it again"]
    for key in (*_PAIRS_KEYS, "frame_id"):
        stored = np.concatenate([c.arrays[key] for c in scan.sound])
        value = cached.get(key)
        if value is None or np.asarray(value).shape != stored.shape or not np.array_equal(np.asarray(value), stored):
            return [f"{PAIRS_CACHE_NAME}: {key!r} differs from the shards (stale or damaged); delete it, the next generate writes it again"]
    return []


# ------------------------------------------------------------------------------------------------
# contact sheet

MASK_OUTLINE_RGB = (255, 225, 0)  # yellow, drawn just outside the person's pixels
_OCCLUDED_RGB = (255, 160, 0)


def draw_frame_overlay(img: Image.Image, j2: np.ndarray, vis: np.ndarray, scale: float, mask: np.ndarray | None) -> None:
    """Draw on a frame's (resized) image: the person mask's outline, then the 2D skeleton thin
    enough that the body under it stays visible: 1-px bones in their side's colour
    (skeleton.SIDE_COLOURS_RGB: left blue, right red, centre green), dimmed where an end is
    occluded, and a 1-px orange dot on each occluded joint. `scale` maps image pixels to `img`."""
    if mask is not None:
        small = np.asarray(Image.fromarray(mask).resize(img.size, Image.NEAREST))
        outline = mask_outline(small)
        pixels = np.array(img)
        pixels[outline] = (0.3 * pixels[outline] + 0.7 * np.array(MASK_OUTLINE_RGB)).astype(np.uint8)
        img.paste(Image.fromarray(pixels))
    draw = ImageDraw.Draw(img)
    p = j2 * scale
    for child, parent in BONES:
        if vis[child] and vis[parent]:
            colour = np.array(joint_colour_rgb(child))
            if min(vis[child], vis[parent]) < 2:
                colour = colour // 2 + 40
            draw.line([tuple(p[parent]), tuple(p[child])], fill=tuple(int(c) for c in colour), width=1)
    for x, y in p[vis == 1]:
        draw.point((float(x), float(y)), fill=_OCCLUDED_RGB)


def contact_sheet(folder: str | Path, out: str | Path, samples: int = 16, columns: int = 4, tile: int = 192) -> Path:
    """A PNG grid of `samples` frames spread over the dataset, each with its person mask outlined
    and its 2D skeleton drawn thin over it (`draw_frame_overlay`)."""
    reader = DatasetReader(folder, ("joints_2d", "visibility"), warn=False)  # the caller reports missing frames
    total = len(reader)
    picks = np.unique(np.linspace(0, total - 1, min(samples, total)).round().astype(int))
    rows = -(-len(picks) // columns)
    sheet = Image.new("RGB", (columns * tile, rows * tile), (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    for n, k in enumerate(picks.tolist()):
        pixels = reader.image(k)
        h, w = pixels.shape[:2]
        scale = tile / max(w, h)
        img = Image.fromarray(pixels[..., :3] if pixels.ndim == 3 else pixels).convert("RGB").resize((max(1, round(w * scale)), max(1, round(h * scale))))
        draw_frame_overlay(img, reader.arrays["joints_2d"][k], reader.arrays["visibility"][k], scale, reader.mask(k))
        x0, y0 = (n % columns) * tile, (n // columns) * tile
        sheet.paste(img, (x0, y0))
        draw.text((x0 + 3, y0 + 2), str(int(reader.arrays["frame_id"][k])), fill=(255, 255, 255))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def summary_json(summary: DatasetSummary) -> str:
    """The summary as JSON (for scripts: `posebridge inspect DIR --json`)."""
    return json.dumps(
        {
            "frames": summary.manifest.frames,
            "frames_stored": summary.frames_stored,
            "complete": summary.complete,
            "missing": summary.missing if not summary.complete else "",
            "damaged": summary.damaged,
            "lost": summary.lost,
            "shards": summary.shards,
            "bytes": summary.bytes_on_disk,
            "rejects": summary.rejects,
            "distributions": {k: dict(zip(("p5", "p50", "p95", "min", "max"), map(float, v))) for k, v in summary.distributions.items()},
            "visibility": summary.visibility,
            "masks": summary.masks,
            "subjects": summary.sources,
            "actions": summary.actions,
        },
        indent=2,
    )


def print_dataset_summary(console, s: DatasetSummary) -> None:
    """The tables of `posebridge inspect`: counts, rejects, joints, mask coverage, sources and distributions."""
    m = s.manifest
    head = Table(title=f"dataset {m.config.get('player_kind', '?')} seed {m.config.get('seed')}", show_header=False)
    head.add_row("frames", f"{s.frames_stored} / {m.frames}" + (" (complete)" if s.complete else f" [yellow](incomplete: {s.missing} missing)[/]"))
    for problem in s.damaged:
        head.add_row("[red]damaged shard[/]", escape(problem))
    for problem in s.lost:
        head.add_row("[red]lost shard[/]", escape(problem))
    head.add_row("shards", f"{s.shards} of up to {m.shard_size} frames, {s.bytes_on_disk / 2**20:.1f} MiB")
    head.add_row("runs", ", ".join(f"{r.run_id} {r.status} (+{r.frames_stored})" for r in m.runs[-5:]))
    head.add_row("rejected messages", ", ".join(f"{k} {v}" for k, v in sorted(s.rejects.items())) or "0")
    if s.visibility:
        head.add_row("joints", ", ".join(f"{k} {v:.1%}" for k, v in s.visibility.items()))
        text = f"{s.masks['frames with a mask']:.1%} of frames"
        if "mean person fraction" in s.masks:
            text += (f"; the person covers {s.masks['mean person fraction']:.1%} of the image on average"
                     f" (median {s.masks['median person fraction']:.1%}), {s.masks['empty masks']:.1%} of masks empty")
        head.add_row("person masks", text)
        head.add_row("subjects", ", ".join(f"{k} {v}" for k, v in list(s.sources.items())[:6]) + (" ..." if len(s.sources) > 6 else ""))
        head.add_row("actions", ", ".join(f"{k} {v}" for k, v in list(s.actions.items())[:6]) + (" ..." if len(s.actions) > 6 else ""))
    console.print(head)
    if s.distributions:
        t = Table(title="distributions")
        for col in ("", "p5", "median", "p95", "min", "max"):
            t.add_column(col, justify="right" if col else "left")
        for name, v in s.distributions.items():
            t.add_row(name, *(f"{x:,.1f}" for x in v))
        console.print(t)
