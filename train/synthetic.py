"""On-the-fly training data: `--data synthetic:SOURCE[?OPTIONS][:WEIGHT]`.

Fresh keypoint pairs are made inside the training loop by the vectorized pair generator
(generator/pairs.py): every sample is a new pose draw under a new camera, and no file is written.
The pose bank is loaded once per process; each (seed, epoch, source, rank) stream is the pair
generator seeded from those four numbers, so an epoch is reproducible on its own (resume is bit
for bit), and under DDP every rank draws its own stream.

SOURCE is what `posebridge pairs --source` takes: a mocap file or folder, `bundled` or `prior`.
OPTIONS, URL-query style (`&`-separated, so quote the argument in a shell):
- `config=PAIRS.yaml`: a PairsConfig file (cameras, augmentation, baseline), as `pairs --config`;
- `exclude=cmu_05,cmu_131`: leave out these performers (e.g. the people held out for evaluation);
- `prior_size=N`, `fps=F`: as in `load_pose_source`.

    posebridge train --data 'synthetic:bundled?exclude=cmu_05:0.5' --data prior.npz:0.5 ...
"""

from __future__ import annotations

import dataclasses
from urllib.parse import parse_qsl

import numpy as np

from generator.pairs import BLOCK_SIZE, PairGenerator, load_pairs_config
from generator.poses import load_pose_source

PREFIX = "synthetic:"
_OPTIONS = ("config", "exclude", "prior_size", "fps")


def is_synthetic(text: str) -> bool:
    return str(text).startswith(PREFIX)


@dataclasses.dataclass(frozen=True)
class SyntheticSpec:
    """The part of a `--data synthetic:...` argument before the weight."""

    source: str
    config: str | None = None
    exclude: tuple[str, ...] = ()
    prior_size: int = 200_000
    fps: float = 30.0

    @staticmethod
    def parse(text: str) -> "SyntheticSpec":
        """`synthetic:SOURCE[?key=value&...]`; ValueError naming the bad part."""
        if not is_synthetic(text):
            raise ValueError(f"--data {text!r}: a synthetic source starts with {PREFIX!r}")
        body = text[len(PREFIX) :]
        source, _, query = body.partition("?")
        if not source:
            raise ValueError(f"--data {text!r}: name a pose source after {PREFIX!r} (a mocap folder, 'bundled' or 'prior')")
        values: dict = {}
        for key, value in parse_qsl(query, keep_blank_values=True, strict_parsing=False):
            if key not in _OPTIONS:
                raise ValueError(f"--data {text!r}: unknown option {key!r} (known: {', '.join(_OPTIONS)})")
            try:
                if key == "exclude":
                    values[key] = tuple(s for s in value.split(",") if s)
                elif key == "prior_size":
                    values[key] = int(value)
                elif key == "fps":
                    values[key] = float(value)
                else:
                    values[key] = value or None
            except ValueError:
                raise ValueError(f"--data {text!r}: option {key}={value!r} is not a number") from None
        if query and not values:
            raise ValueError(f"--data {text!r}: cannot read the options {query!r} (write key=value&key=value)")
        return SyntheticSpec(source, **values)


class SyntheticSource:
    """A pose bank and a pairs config, ready to make streams (built once per process)."""

    def __init__(self, spec: SyntheticSpec, seed: int = 0):
        self.spec = spec
        self.bank = load_pose_source(spec.source, seed=seed, fps=spec.fps, prior_size=spec.prior_size, exclude_subjects=spec.exclude)
        # Training reads no provenance strings; leaving them out saves a third of the work.
        config = load_pairs_config(spec.config).model_copy(update={"provenance": False})
        self._generator = PairGenerator(self.bank, config, seed=0)

    def __len__(self) -> int:
        """Rows of one pass: none, it never ends (the trainer needs --steps-per-epoch)."""
        raise TypeError("a synthetic source has no length")

    def stream(self, seed: tuple[int, ...], rank: int = 0) -> "SyntheticStream":
        return SyntheticStream(self, seed, rank)


class SyntheticStream:
    """An endless stream of new pairs for one (seed, epoch, source, rank); `take(n)` as RowStream's."""

    def __init__(self, source: SyntheticSource, seed: tuple[int, ...], rank: int = 0):
        self.generator = _with_seed(source._generator, _stream_seed(seed, rank))
        self._buffer = self.generator.allocate(BLOCK_SIZE)
        self._block = 0
        self._pos = BLOCK_SIZE  # empty: the first take() fills block 0
        self.made = 0  # samples generated so far (whole blocks)

    def _refill(self) -> None:
        self.generator.fill(self._buffer, self._block * BLOCK_SIZE, strings=False)
        self._block += 1
        self._pos = 0
        self.made += BLOCK_SIZE

    def take(self, n: int) -> dict[str, np.ndarray | None]:
        """The next `n` pairs as training rows (joints_2d, joints_3d, K, joints_2d_right, baseline_mm)."""
        from .data import concat_rows, rows_of

        parts = []
        while n > 0:
            if self._pos >= BLOCK_SIZE:
                self._refill()
            k = min(n, BLOCK_SIZE - self._pos)
            rows = rows_of(self._buffer, slice(self._pos, self._pos + k))
            parts.append({key: None if v is None else np.array(v) for key, v in rows.items()})  # the buffer is reused
            self._pos += k
            n -= k
        return parts[0] if len(parts) == 1 else concat_rows(parts)


def _stream_seed(seed: tuple[int, ...], rank: int) -> int:
    """The pair generator's seed for a stream: a hash of (seed, epoch, source, rank)."""
    return int(np.random.SeedSequence([*(int(s) for s in seed), int(rank), 4]).generate_state(1, dtype=np.uint64)[0] >> 1)


def _with_seed(generator: PairGenerator, seed: int) -> PairGenerator:
    """A generator sharing `generator`'s precomputed bank and tables, drawing with `seed`."""
    import copy

    other = copy.copy(generator)
    other.seed = int(seed)
    return other
