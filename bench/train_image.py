"""Image-network training throughput: the full loop against the model alone, in the same run.

Full loop: `posebridge train-image`'s own code path (MixtureSampler -> DataLoader workers that
read, decode, crop and augment -> the batched colour step -> forward, backward, AdamW) on a mix of
rendered frames and real photos (LSPET's train split when /work/shared has it, else the vendored
COCO and MPII fixtures). Model alone: the same model, optimizer and step function on batches
already in memory (taken from the same loader beforehand). The ratio full / model says how much
the data path slows training down; it must stay >= 0.8. Rounds alternate (model, full, model,
full, ...) so a change in machine load hits both; the medians are reported.

    python bench/train_image.py [--config cpu-small] [--steps 30] [--rounds 3] [--workers 1] [--threads 2]
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from train.image.config import resolve_image_config  # noqa: E402
from train.image.dataset import CropDataset, MixtureSampler, make_loader  # noqa: E402
from train.image.renders import render_dataset  # noqa: E402
from train.image.trainer import build_model, open_training_sources, resolve_device, train_step  # noqa: E402
from train.label import REAL_DATA_DIR  # noqa: E402

LSPET = Path("/work/shared/data/images/lspet")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="cpu-small")
    ap.add_argument("--steps", type=int, default=30, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--workers", type=int)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--device")
    ap.add_argument("--renders", type=Path, help="a rendered dataset folder (default: 600 frames at 256x256 rendered here)")
    ap.add_argument("--real", type=Path, default=LSPET if LSPET.is_dir() else None, help="an LSP-format folder (default: LSPET when present)")
    args = ap.parse_args()
    logging.basicConfig(level=logging.WARNING)

    with tempfile.TemporaryDirectory() as tmp:
        renders = args.renders or render_dataset(Path(tmp) / "renders", 600, image_size=256, seed=5)
        real = [f"{args.real}:0.4"] if args.real else [f"{REAL_DATA_DIR / 'coco' / 'test_coco.json'}:0.2", f"{REAL_DATA_DIR / 'mpii' / 'test_mpii.json'}:0.2"]
        cfg = resolve_image_config(args.config, {"data": [f"{renders}:0.6", *real], "workers": args.workers, "threads": args.threads, "device": args.device,
                                                 "steps_per_epoch": args.steps, "epochs": 1000})  # fmt: skip
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        device = resolve_device(cfg.device)
        sources, weights = open_training_sources(cfg)
        model = build_model(cfg, device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        sampler = MixtureSampler([len(s) for s in sources], weights, cfg.batch_size, args.steps, cfg.seed)
        loader = make_loader(CropDataset(sources, cfg.net.input_size, cfg.augment, cfg.seed), sampler, cfg.workers, cfg.prefetch)
        sampler.set_epoch(0)
        cached = list(loader)[:8]  # in-memory batches for the model-alone rounds (also warms the workers)
        step = 0

        def model_round() -> float:
            nonlocal step
            t = time.perf_counter()
            for k in range(args.steps):
                train_step(model, optimizer, cached[k % len(cached)], cfg, step, device)
                step += 1
            return args.steps * cfg.batch_size / (time.perf_counter() - t)

        def full_round(epoch: int) -> float:
            nonlocal step
            sampler.set_epoch(epoch)
            t = time.perf_counter()
            for batch in loader:
                train_step(model, optimizer, batch, cfg, step, device)
                step += 1
            return args.steps * cfg.batch_size / (time.perf_counter() - t)

        model_round()  # warm-up
        model_rates, full_rates = [], []
        for r in range(args.rounds):
            model_rates.append(model_round())
            full_rates.append(full_round(r + 1))
        m, f = statistics.median(model_rates), statistics.median(full_rates)
        print(f"config {cfg.preset}: {cfg.net.input_size}x{cfg.net.input_size} crops, batch {cfg.batch_size}, {cfg.workers} worker(s), "
              f"{cfg.threads} torch thread(s), device {device}; data: {', '.join(s.describe() for s in sources)}")  # fmt: skip
        print("| what | samples/s (median of rounds) | rounds |")
        print("| --- | ---: | --- |")
        print(f"| model alone (in-memory batches: colour step, forward, backward, AdamW) | {m:.1f} | {', '.join(f'{x:.1f}' for x in model_rates)} |")
        print(f"| full loop (read, decode, crop, augment in workers + the above) | {f:.1f} | {', '.join(f'{x:.1f}' for x in full_rates)} |")
        print(f"ratio full / model = {f / m:.2f} (goal >= 0.8)")


if __name__ == "__main__":
    main()
