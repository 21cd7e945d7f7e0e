"""What checking a dataset folder costs: the per-shard checks every reader and resume make.

Builds a dataset of N frames (synthetic frames through the real collector and store, 64x64 JPEGs,
shards of 1000), then times, best of 5: `scan_dataset` as every reader runs it (each .npz read
whole, CRC-checked, hashed and validated; each tar's size), with `walk_tars` as a resume runs it
(plus every tar member header), and `verify_dataset` (everything re-read and decoded). References
in the same run: reading the same .npz bytes from the page cache, and `np.load` of every key (what
the readers did before the checks).

    python bench/store_check.py [--frames 20000] [--shard-size 1000]
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bridge.collector import Collector, Expectations  # noqa: E402
from bridge.dataset_report import verify_dataset  # noqa: E402
from bridge.synthetic import encode_image, synthetic_frame, synthetic_image  # noqa: E402
from generator.store import DatasetStore, scan_dataset  # noqa: E402

RUN_ID, SEED, SIZE = "bench", 7, (64, 64)


def build(folder: Path, frames: int, shard_size: int) -> None:
    rng = np.random.default_rng(SEED)
    images = [encode_image(synthetic_image(rng, *SIZE), "jpeg") for _ in range(8)]
    store = DatasetStore.open(folder, {"bench": True}, frames=frames, shard_size=shard_size, run_id=RUN_ID)
    collector = Collector(store, Expectations(run_id=RUN_ID, seed=SEED, frames=frames, image_size=SIZE))
    for i in range(frames):
        msg = synthetic_frame(rng, run_id=RUN_ID, player_id="p", seq=i, frame_id=i, seed=SEED, image=images[i % 8], image_size=SIZE)
        if not collector.handle(msg):
            raise SystemExit(f"frame {i} rejected: {dict(collector.stats.rejects)}")
    collector.flush()
    store.close()


def best(fn, repeat: int = 5) -> float:
    fn()
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument("--shard-size", type=int, default=1000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "ds"
        build(folder, args.frames, args.shard_size)
        npzs = sorted(folder.glob("shard-*.npz"))
        npz_mb = sum(p.stat().st_size for p in npzs) / 1e6

        def read_bytes():
            for p in npzs:
                p.read_bytes()

        def np_load_all():
            for p in npzs:
                with np.load(io.BytesIO(p.read_bytes()), allow_pickle=False) as z:
                    {k: z[k] for k in z.files}

        rows = [
            ("read the .npz bytes (reference)", best(read_bytes)),
            ("np.load every key (reference: the readers before)", best(np_load_all)),
            ("scan_dataset: what every reader checks", best(lambda: scan_dataset(folder, keep=()))),
            ("scan_dataset(walk_tars=True): what a resume checks", best(lambda: scan_dataset(folder, walk_tars=True, keep=()))),
            ("verify_dataset (inspect --verify)", best(lambda: verify_dataset(folder), repeat=1)),
        ]
    per = 1000 / args.frames
    print(f"{args.frames} frames in {len(npzs)} shards, {npz_mb:.1f} MB of .npz")
    print("| what | ms per 1000 frames | ratio to np.load |")
    print("| --- | --- | --- |")
    for name, seconds in rows:
        print(f"| {name} | {seconds * 1e3 * per:.2f} | {seconds / rows[1][1]:.2f} |")


if __name__ == "__main__":
    main()
