"""The fast keypoint-pair generator: poses from a bank under random cameras, as pairs v1.

Per sample: a pose is drawn from the bank (mirrored with some probability), its bones are
scaled for body-shape variety, a camera is drawn around it with the rejection rule of
docs/conventions.md (a rejected sample gets new cameras, then a new pose), and the camera-frame
joints, their pixels in the left and right views, the visibility, K and the image size are
written out. Without rendering there is no occlusion test: visibility is 2 for joints in the
image and 0 for the others.

Speed and determinism come from the same structure: samples are made in fixed blocks of
`BLOCK_SIZE`, each with its own generator seeded from (seed, block index), in float32, in a
joint-major layout (17, 3, block) where every numpy operation runs over long contiguous rows.
A block is always made whole (and cut at N), so the output does not depend on the chunk size
used for writing, and the first samples of a longer run equal a shorter run's.

Global yaw needs no switch here: camera azimuths are drawn relative to each pose's facing, so
the profile's azimuth range already spins the camera around the person.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .augment import BoneScaleConfig, mirror, sample_bone_scales
from .camera import (
    DEFAULT_BASELINE_MM,
    in_image_components,
    intrinsics_matrix,
    orbit_camera_components,
    project_components,
    right_view_u,
    transform_components,
)
from .config_file import load_config
from .camera_sampler import (
    CameraRuleError,
    CameraSamplerConfig,
    CameraTables,
    camera_above_floor,
    camera_rule,
    draw_camera_params,
    frame_subjects,
    min_in_frame_count,
)
from .pairs_io import VISIBILITY_VISIBLE, Pairs, PairsWriter
from .poses import PoseBank
from .skeleton import NUM_JOINTS, ROOT, bones_from_joints, facing_yaw, joints_from_bones

log = logging.getLogger(__name__)

BLOCK_SIZE = 8192  # samples per random stream and per compute pass; changing it changes the output
_MAX_POSE_ROUNDS = 100  # pose replacements per block before the config is declared unframeable


class PairAugmentConfig(BaseModel):
    """Pose augmentation for pairs: mirroring and bone-length scaling (yaw: see the module doc)."""

    model_config = ConfigDict(extra="forbid")

    mirror_probability: float = Field(0.5, ge=0.0, le=1.0)
    bone_scale: BoneScaleConfig | None = Field(default_factory=BoneScaleConfig)  # None: bank bone lengths


class PairsConfig(BaseModel):
    """Everything that shapes the generated pairs besides the pose source, N and the seed."""

    model_config = ConfigDict(extra="forbid")

    camera: CameraSamplerConfig = Field(default_factory=CameraSamplerConfig)
    augment: PairAugmentConfig = Field(default_factory=PairAugmentConfig)
    baseline_mm: float = DEFAULT_BASELINE_MM
    # Write the subject/sequence/action/camera strings (about a third of the file on the bundled clips).
    provenance: bool = True
    # Samples generated and handed to the writer at a time (rounded up to whole blocks); it sets
    # the memory held and the progress granularity, never the values.
    chunk_size: int = Field(8 * BLOCK_SIZE, gt=0)

    @field_validator("baseline_mm")
    @classmethod
    def _nonzero(cls, v: float) -> float:
        if v == 0 or not np.isfinite(v):
            raise ValueError("must be a finite, non-zero distance in mm (the right camera sits +b along x)")
        return v

    def chunk_samples(self) -> int:
        return -(-self.chunk_size // BLOCK_SIZE) * BLOCK_SIZE


def load_pairs_config(path: str | os.PathLike | None, overrides: dict | None = None) -> PairsConfig:
    """A PairsConfig from a YAML file (None: the defaults) with dotted-key `overrides` on top;
    every problem (unknown key, bad value) is named by its key path."""
    return load_config(PairsConfig, path, overrides, what="pairs config")


@dataclasses.dataclass
class PairStats:
    """Counts from a generation run: how hard the rejection rule had to work."""

    samples: int = 0  # samples made (whole blocks: a cut final block counts in full)
    camera_draws: int = 0  # cameras drawn in all (accepted + rejected)
    pose_draws: int = 0  # poses drawn in all (samples + replaced)

    @property
    def camera_rejection_rate(self) -> float:
        return 1.0 - self.samples / self.camera_draws if self.camera_draws else 0.0

    @property
    def pose_rejection_rate(self) -> float:
        return 1.0 - self.samples / self.pose_draws if self.pose_draws else 0.0

    def add(self, other: "PairStats") -> None:
        self.samples += other.samples
        self.camera_draws += other.camera_draws
        self.pose_draws += other.pose_draws


class PairGenerator:
    """A bank, a config and a seed made ready for fast sampling: `fill` writes any block-aligned range.

    Built once (it precomputes the bank's bone vectors, mirrored copies, facings and the camera
    tables), then used for every block of the stream.
    """

    def __init__(self, bank: PoseBank, config: PairsConfig, seed: int):
        if len(bank) == 0:
            raise ValueError("the pose bank is empty")
        self.bank = bank
        self.config = config
        self.seed = int(seed)
        joints = np.asarray(bank.joints, dtype=np.float32)
        if config.augment.mirror_probability > 0:
            joints = np.concatenate([joints, mirror(joints)])  # rows M.. are the mirrored poses
        self.num_poses = len(bank)
        # Pelvis-relative bone vectors, one row of 51 per pose (the root bone is 0): where the
        # person stands does not matter, since the camera is placed relative to the pelvis.
        bones = bones_from_joints(joints)
        bones[:, ROOT] = 0.0
        self.bones = np.ascontiguousarray(bones.reshape(len(joints), 3 * NUM_JOINTS), dtype=np.float32)
        self.facing = facing_yaw(joints).astype(np.float32)
        self.tables = CameraTables(config.camera, np.float32)
        self.need = min_in_frame_count(config.camera)
        self.baseline = np.float32(config.baseline_mm)
        # Provenance strings per clip and per camera profile, gathered per sample.
        self.names = {
            "subject": np.array([c.subject for c in bank.clips]),
            "sequence": np.array([c.name for c in bank.clips]),
            "action": np.array([c.action for c in bank.clips]),
            "camera": np.array([p.name for p in config.camera.profiles]),
        }

    def allocate(self, n: int) -> Pairs:
        """Empty in-memory output for n samples (per-sample K and image size; strings with `provenance`)."""
        strings = self.names if self.config.provenance else {}
        return Pairs(
            joints_2d=np.empty((n, NUM_JOINTS, 2), np.float32),
            joints_3d=np.empty((n, NUM_JOINTS, 3), np.float32),
            K=np.empty((n, 3, 3), np.float32),
            image_size=np.empty((n, 2), np.int32),
            visibility=np.empty((n, NUM_JOINTS), np.uint8),
            joints_2d_right=np.empty((n, NUM_JOINTS, 2), np.float32),
            baseline_mm=np.array(self.baseline, dtype=np.float32),
            **{key: np.empty(n, dtype=names.dtype) for key, names in strings.items()},
        )

    # -- stages, on columns of the joint-major layout ----------------------------------------------
    def _draw_poses(self, rng: np.random.Generator, k: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """k poses: pelvis-relative joints (17, 3, k), bank rows (k,) (M.. = mirrored), facing yaw (k,)."""
        rows = rng.integers(0, self.num_poses, k)
        p = self.config.augment.mirror_probability
        if p > 0:
            rows += self.num_poses * (rng.random(k, dtype=np.float32) < p)
        joints = np.ascontiguousarray(self.bones.take(rows, axis=0).T).reshape(NUM_JOINTS, 3, k)
        if self.config.augment.bone_scale is not None:
            joints *= sample_bone_scales(rng, k, self.config.augment.bone_scale, np.float32, bone_axis=0)[:, None, :]
        joints_from_bones(joints, joint_axis=0, out=joints)
        return joints, rows, self.facing.take(rows)

    def _view(self, rng: np.random.Generator, joints: np.ndarray, facing: np.ndarray) -> "_Views":
        """One random camera per column of `joints` (17, 3, k), and what it sees."""
        k = joints.shape[2]
        cam = draw_camera_params(rng, k, self.tables)
        frame_subjects(cam, joints.min(axis=0), joints.max(axis=0), np.zeros((3, 1), np.float32))
        # The camera looks at pelvis + offset; with the joints pelvis-relative, that target is the offset.
        R, t = orbit_camera_components(cam.look_at_offset, cam.distance, cam.azimuth + facing, cam.elevation, cam.roll)
        # Camera height above the pelvis: the look-at offset plus d sin(elevation) (see orbit_camera).
        camera_z = cam.look_at_offset[2] + cam.distance * np.sin(cam.elevation)
        v = _Views(
            above_floor=camera_above_floor(camera_z, joints[:, 2], self.config.camera, joint_axis=0),
            joints_3d=np.empty((NUM_JOINTS, 3, k), np.float32),
            joints_2d=np.empty((NUM_JOINTS, 2, k), np.float32),
            joints_2d_right=np.empty((NUM_JOINTS, 2, k), np.float32),
            inside=np.empty((NUM_JOINTS, k), bool),
            focal=cam.focal,
            cx=cam.cx,
            cy=cam.cy,
            image_size=cam.image_size,
            profile=cam.profile,
        )
        xyz = v.joints_3d.transpose(1, 0, 2)  # (3, 17, k) views
        uv = v.joints_2d.transpose(1, 0, 2)
        transform_components(joints.transpose(1, 0, 2), R, t, out=xyz)
        project_components(xyz[0], xyz[1], xyz[2], cam.focal, cam.focal, cam.cx, cam.cy, out=uv)
        right_view_u(uv[0], xyz[2], cam.focal, self.baseline, out=v.joints_2d_right[:, 0])
        v.joints_2d_right[:, 1] = uv[1]
        width = cam.image_size[:, 0].astype(np.float32)
        height = cam.image_size[:, 1].astype(np.float32)
        in_image_components(uv[0], uv[1], width, height, xyz[2], out=v.inside)
        return v

    def _accepted(self, views: "_Views") -> np.ndarray:
        count = np.add.reduce(views.inside.view(np.uint8), axis=0, dtype=np.uint8)
        in_front = np.logical_and.reduce(views.joints_3d[:, 2] > 0, axis=0)  # pairs v1 holds no joint behind the camera
        return (count >= self.need) & in_front & views.above_floor

    def block(self, index: int) -> tuple["_Views", np.ndarray, PairStats]:
        """Block `index` of the stream: its views (every sample accepted), bank rows (M.. = mirrored), stats."""
        rng = np.random.default_rng(np.random.SeedSequence(self.seed, spawn_key=(index,)))
        n = BLOCK_SIZE
        joints, rows, facing = self._draw_poses(rng, n)
        views = self._view(rng, joints, facing)
        stats = PairStats(samples=n, camera_draws=n, pose_draws=n)
        todo = np.flatnonzero(~self._accepted(views))
        for pose_round in range(_MAX_POSE_ROUNDS):
            for _ in range(self.config.camera.max_rounds - 1):
                if todo.size == 0:
                    return views, rows, stats
                redraw = self._view(rng, np.ascontiguousarray(joints[:, :, todo]), facing[todo])
                stats.camera_draws += todo.size
                views.put(todo, redraw)
                todo = todo[~self._accepted(redraw)]
            if todo.size == 0:
                return views, rows, stats
            if pose_round == 0 and todo.size == n:  # not one of n x max_rounds cameras met the rule
                raise self._rule_error(index, n, stats.camera_draws)
            # Still rejected after max_rounds cameras: replace the pose.
            new_joints, rows[todo], facing[todo] = self._draw_poses(rng, todo.size)
            joints[:, :, todo] = new_joints
            redraw = self._view(rng, new_joints, facing[todo])
            stats.pose_draws += todo.size
            stats.camera_draws += todo.size
            views.put(todo, redraw)
            todo = todo[~self._accepted(redraw)]
        if todo.size == 0:
            return views, rows, stats
        raise self._rule_error(index, todo.size, stats.camera_draws)

    def _rule_error(self, index: int, failed: int, draws: int) -> CameraRuleError:
        return CameraRuleError(
            f"camera rule cannot be met: {camera_rule(self.config.camera)}; {failed:,} of {BLOCK_SIZE:,} samples of "
            f"block {index} found no camera meeting it in {draws:,} draws. Lower camera.min_in_frame_fraction or camera.min_camera_height_mm, or widen "
            "the camera ranges (distance, field of view)"
        )

    def fill(self, out: Pairs, start: int = 0, strings: bool | None = None) -> PairStats:
        """Write samples [start, start + len(out)) of the stream into `out` (start block-aligned).

        `strings` (default: the config's `provenance`) fills the provenance strings too.
        """
        strings = self.config.provenance if strings is None else strings
        if start % BLOCK_SIZE:
            raise ValueError(f"start {start} is not a multiple of BLOCK_SIZE {BLOCK_SIZE}")
        stats = PairStats()
        n = len(out)
        for offset in range(0, n, BLOCK_SIZE):
            views, rows, block_stats = self.block((start + offset) // BLOCK_SIZE)
            take = min(BLOCK_SIZE, n - offset)
            views.write_into(out, slice(offset, offset + take))
            if strings:
                clip = self.bank.clip_index.take(rows[:take] % self.num_poses)
                for key in ("subject", "sequence", "action"):
                    getattr(out, key)[offset : offset + take] = self.names[key].take(clip)
                out.camera[offset : offset + take] = self.names["camera"].take(views.profile[:take])
            stats.add(block_stats)
        return stats


@dataclasses.dataclass
class _Views:
    """What one batch of cameras sees, in the joint-major layout (columns are samples)."""

    above_floor: np.ndarray  # bool (k,): the camera clears the pose's lowest joint (camera_above_floor)
    joints_3d: np.ndarray  # (17, 3, k) camera frame, mm
    joints_2d: np.ndarray  # (17, 2, k) left view, px
    joints_2d_right: np.ndarray  # (17, 2, k)
    inside: np.ndarray  # bool (17, k): in the left image, in front of the camera
    focal: np.ndarray  # (k,) px
    cx: np.ndarray
    cy: np.ndarray
    image_size: np.ndarray  # int32 (k, 2)
    profile: np.ndarray  # int (k,)

    def put(self, columns: np.ndarray, other: "_Views") -> None:
        """Replace the samples at `columns` with `other`'s."""
        for f in dataclasses.fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name == "image_size":
                a[columns] = b
            else:
                a[..., columns] = b

    def write_into(self, out: Pairs, s: slice) -> None:
        """Copy the first samples into out[s] in the sample-major layout of pairs v1."""
        take = s.stop - s.start
        k = self.focal.shape[0]
        for key in ("joints_3d", "joints_2d", "joints_2d_right"):
            src = getattr(self, key)
            np.copyto(getattr(out, key)[s].reshape(take, -1), src.reshape(-1, k)[:, :take].T)
        np.multiply(self.inside[:, :take].T, VISIBILITY_VISIBLE, out=out.visibility[s], casting="unsafe")
        focal = self.focal[:take]
        intrinsics_matrix(focal, focal, self.cx[:take], self.cy[:take], dtype=np.float32, out=out.K[s])
        out.image_size[s] = self.image_size[:take]


def generate_pairs(bank: PoseBank, n: int, seed: int, config: PairsConfig | None = None) -> Pairs:
    """n pairs in memory (pairs v1 arrays). The same (bank, n, seed, config) gives the same bits."""
    gen = PairGenerator(bank, config or PairsConfig(), seed)
    out = gen.allocate(int(n))
    gen.fill(out)
    return out


def _per_sample_arrays(pairs: Pairs) -> dict[str, np.ndarray]:
    """The keys the writer stores by rows (the shared baseline and the tags are 0-d)."""
    return {key: value for key, value in pairs.arrays().items() if value.ndim >= 1}


def write_pairs_file(
    path: str | os.PathLike,
    bank: PoseBank,
    n: int,
    seed: int,
    config: PairsConfig | None = None,
    progress: Callable[[int], None] | None = None,
    on_chunk: Callable[[Pairs], None] | None = None,
) -> PairStats:
    """Generate n pairs chunk by chunk into a pairs v1 file (the same bits as `generate_pairs`).

    A three-stage pipeline over `PIPELINE_BUFFERS` chunk buffers: this thread generates chunk
    i + 2 while one thread checksums chunk i + 1 and another writes chunk i (numpy, zlib and
    os.pwrite release the GIL), so generation, CRC and the disk overlap on the cores, and a write
    held back by the kernel's writeback (the disk) leaves the CPUs to the other two stages.
    Memory: the chunk buffers, whatever n is. `progress(samples_done)` is called after each
    chunk, and `on_chunk(chunk)` sees each chunk's pairs (read-only, e.g. a SummaryAccumulator).
    Returns the run's rejection counts.
    """
    config = config or PairsConfig()
    n = int(n)
    gen = PairGenerator(bank, config, seed)
    step = config.chunk_samples()
    buffers = [gen.allocate(min(step, n)) for _ in range(min(PIPELINE_BUFFERS, -(-n // step)))]
    pending: list[tuple[Future, Future] | None] = [None] * len(buffers)
    stats = PairStats()
    with (
        PairsWriter(path, n) as writer,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="pairs-crc") as crc_pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="pairs-writer") as write_pool,
    ):
        writer.set_constant("baseline_mm", np.float32(config.baseline_mm))
        for key, value in _per_sample_arrays(buffers[0]).items():
            writer.allocate(key, value.dtype, value.shape[1:])
        for i, start in enumerate(range(0, n, step)):
            slot = i % len(buffers)
            _wait(pending[slot])  # the buffer is free again (and a CRC or write error surfaces here)
            take = min(step, n - start)
            chunk = buffers[slot] if take == len(buffers[slot]) else buffers[slot].select(slice(0, take), copy=False)
            stats.add(gen.fill(chunk, start))
            if on_chunk is not None:
                on_chunk(chunk)
            arrays = _per_sample_arrays(chunk)
            # Each pool runs its jobs in order, so the running CRCs see the chunks in sample order.
            pending[slot] = (crc_pool.submit(writer.add_crc, start, arrays), write_pool.submit(writer.write, start, arrays, False))
            if progress is not None:
                progress(start + take)
        for jobs in pending:
            _wait(jobs)
    log.info("%s: %d pairs, camera rejection %.1f %%", path, n, 100 * stats.camera_rejection_rate)
    return stats


PIPELINE_BUFFERS = 3  # chunk buffers: one generated, one checksummed, one written at a time


def _wait(jobs: tuple[Future, ...] | None) -> None:
    for job in jobs or ():
        job.result()
