"""Background photos from a user's folder: listing, decoding, and the crop a scene asks for.

The folder is listed once (sorted, recursively); each file's header is read up front so that a
folder without a single readable image fails at start-up with the folder's name. Pixels are
decoded on first use, downscaled to at most `max_side`, and the renderer keeps them as textures.
A scene picks a photo by a number in [0, 1) (photo floor(u * n) of the listing), so the same
scene shows the same photo as long as the folder's contents do not change.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

log = logging.getLogger(__name__)

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff", ".ppm", ".gif"})


class PhotoFolderError(ValueError):
    """The photo folder is missing or holds no readable image."""


def photo_crop_rect(photo_size: tuple[int, int], out_size: tuple[int, int], scale: float, position) -> tuple[float, float, float, float]:
    """The crop (u0, v0, du, dv), in texture coordinates of a photo of `photo_size` [w, h], with the
    output's aspect: `scale` times the largest such crop, placed at `position` (x, y in [0, 1]) of
    the slack, so (0, 0) is the top-left corner and (1, 1) the bottom-right one.
    """
    w, h = photo_size
    aspect = out_size[0] / out_size[1]
    crop_w, crop_h = (h * aspect, float(h)) if w / h > aspect else (float(w), w / aspect)
    crop_w, crop_h = crop_w * scale, crop_h * scale
    x0 = position[0] * (w - crop_w)
    y0 = position[1] * (h - crop_h)
    return x0 / w, y0 / h, crop_w / w, crop_h / h


class PhotoLibrary:
    """The images of one folder, decoded lazily to RGB uint8 arrays no larger than `max_side`."""

    def __init__(self, folder: Path | str, max_side: int = 1024):
        self.folder = Path(folder)
        self.max_side = int(max_side)
        if not self.folder.is_dir():
            raise PhotoFolderError(f"background photo folder {self.folder} does not exist or is not a folder")
        candidates = sorted(p for p in self.folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        self.paths: list[Path] = []
        self.sizes: list[tuple[int, int]] = []
        failures = []
        for path in candidates:
            try:
                with Image.open(path) as im:
                    size = im.size
            except (OSError, UnidentifiedImageError, ValueError) as e:
                failures.append(f"{path.name}: {e}")
                continue
            self.paths.append(path)
            self.sizes.append(size)
        if failures:
            log.warning("%s: skipped %d unreadable image(s), e.g. %s", self.folder, len(failures), failures[0])
        if not self.paths:
            detail = f"; {len(failures)} failed to open, e.g. {failures[0]}" if failures else ""
            raise PhotoFolderError(
                f"background photo folder {self.folder} holds no readable image "
                f"(looked for {', '.join(sorted(IMAGE_SUFFIXES))}){detail}"
            )
        self._bad: set[int] = set()

    def __len__(self) -> int:
        return len(self.paths)

    def index(self, u: float) -> int:
        """The photo a scene's number u in [0, 1) picks."""
        return min(int(u * len(self.paths)), len(self.paths) - 1)

    def load(self, index: int) -> tuple[int, np.ndarray]:
        """(index actually used, RGB uint8 (h, w, 3)); an undecodable file is logged, skipped for
        good, and the next readable photo is used instead."""
        n = len(self.paths)
        for k in range(n):
            i = (index + k) % n
            if i in self._bad:
                continue
            try:
                return i, self._decode(self.paths[i])
            except (OSError, UnidentifiedImageError, ValueError) as e:
                log.warning("background photo %s cannot be decoded (%s); skipping it", self.paths[i], e)
                self._bad.add(i)
        raise PhotoFolderError(f"background photo folder {self.folder}: none of its {n} images could be decoded")

    def _decode(self, path: Path) -> np.ndarray:
        with Image.open(path) as im:
            im.draft("RGB", (self.max_side, self.max_side))  # JPEG: decode at a reduced scale
            im = ImageOps.exif_transpose(im).convert("RGB")
            if max(im.size) > self.max_side:
                im.thumbnail((self.max_side, self.max_side), Image.Resampling.LANCZOS)
            return np.asarray(im, dtype=np.uint8)
