"""Training throughput: samples/s of the real training loop at batch 1024 on 2 CPU threads.

The timed loop is `train_run` itself (streaming a memory-mapped pairs file, featurization with
noise and mirroring, forward, backward, Adam, max-norm), for the stereo generator (two 1024-wide
MLPs, 4.3 M parameters each) and the single-view baseline (one). Measured in the same run:
- the same MLPs (BatchNorm, dropout) trained on random tensors already in memory: the ratio
  loop / MLPs is the cost of everything around the networks (data, coding, losses, max-norm);
- plain MLPs with only the same Linear layers: the matrix-product floor, so loop / Linear also
  counts what BatchNorm and dropout cost;
- the data path alone: samples per second of the streaming mixer + featurization, from the file
  and from on-the-fly pairs (`--data synthetic:prior`: the pair generator inside the loop, new
  poses and cameras for every sample), each against what the stereo loop consumes;
- the stereo training loop fed by on-the-fly pairs instead of the file.

    python bench/train.py [--steps 12] [--threads 2] [--batch 1024]
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from generator.pairs import generate_pairs  # noqa: E402
from generator.pairs_io import save_pairs  # noqa: E402
from generator.poses import load_pose_source  # noqa: E402
from train.config import TrainConfig  # noqa: E402
from train.data import MixedBatches, open_source  # noqa: E402
from train.models import MartinezMLP, NetConfig  # noqa: E402
from train.trainer import feature_transform, train_run  # noqa: E402


def _plain_mlp(in_dim: int, out_dim: int, width: int, blocks: int) -> nn.Sequential:
    layers: list[nn.Module] = [nn.Linear(in_dim, width), nn.ReLU()]
    for _ in range(2 * blocks):
        layers += [nn.Linear(width, width), nn.ReLU()]
    return nn.Sequential(*layers, nn.Linear(width, out_dim))


def _bare_rate(shapes: list[tuple[int, int]], batch: int, steps: int, net: NetConfig, plain: bool) -> float:
    """Samples/s of forward+backward+Adam on random in-memory tensors: of the lifter's own MLPs
    (BatchNorm, dropout), or of plain MLPs with the same Linear layers (`plain`)."""
    mlps = [_plain_mlp(i, o, net.width, net.blocks) if plain else MartinezMLP(i, o, net) for i, o in shapes]
    params = [p for m in mlps for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=1e-3)
    data = [(torch.randn(batch, i), torch.randn(batch, o)) for i, o in shapes]

    def step() -> None:
        loss = sum(((m(x) - y) ** 2).mean() for m, (x, y) in zip(mlps, data))
        opt.zero_grad()
        loss.backward()
        opt.step()

    for _ in range(2):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * batch / (time.perf_counter() - t)


def _loop_rate(kind: str, data: Path | str, out: Path, batch: int, steps: int, threads: int) -> float:
    """Samples/s of the second epoch of a real training run (the first warms up)."""
    cfg = TrainConfig(data=[str(data)], model=kind, epochs=2, steps_per_epoch=steps, batch_size=batch, threads=threads, stats_samples=20_000)
    run = train_run(cfg, out / kind, show_progress=False)
    return run.read_metrics()["history"][-1]["samples_per_s"]


def _loader_rate(data: Path | str, batch: int, steps: int) -> float:
    """Samples/s of the mixer + featurization alone, from a pairs file or a `synthetic:` source."""
    batches = MixedBatches([open_source(data)], [1.0], batch, feature_transform(TrainConfig()))
    batches.next()
    t = time.perf_counter()
    for _ in range(steps):
        batches.next()
    return steps * batch / (time.perf_counter() - t)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=12, help="timed steps per measurement")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=1024)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    net = NetConfig()

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        data = save_pairs(tmp / "pairs.npz", generate_pairs(load_pose_source("prior", prior_size=20_000), 100_000, seed=0))
        stereo = _loop_rate("stereo", data, tmp, args.batch, args.steps, args.threads)
        single = _loop_rate("single", data, tmp, args.batch, args.steps, args.threads)
        loader = _loader_rate(data, args.batch, 16 * args.steps)
        synthetic = "synthetic:prior?prior_size=20000"
        fly_loader = _loader_rate(synthetic, args.batch, 16 * args.steps)
        fly_stereo = _loop_rate("stereo", synthetic, tmp / "fly", args.batch, args.steps, args.threads)
    rates = {
        (name, plain): _bare_rate(shapes, args.batch, args.steps, net, plain)
        for name, shapes in (("stereo", [(34, 34), (68, 51)]), ("single", [(34, 51)]))
        for plain in (False, True)
    }

    print(f"batch {args.batch}, {args.threads} CPU threads, width {net.width}, {net.blocks} residual blocks")
    print("samples/s            training loop   same MLPs, no data   Linear layers only   loop/MLPs   loop/Linear")
    for name, loop in (("stereo", stereo), ("single", single)):
        mlp, lin = rates[(name, False)], rates[(name, True)]
        print(f"{name:<20} {loop:13,.0f}   {mlp:18,.0f}   {lin:18,.0f}   {loop / mlp:9.2f}   {loop / lin:11.2f}")
    print(f"data path alone (stream + featurize): {loader:9,.0f} samples/s = {loader / stereo:.0f}x the stereo loop")
    print(f"on-the-fly pairs (generate + featurize): {fly_loader:9,.0f} pairs/s = {fly_loader / stereo:.0f}x the stereo loop")
    print(f"stereo loop fed on the fly: {fly_stereo:9,.0f} samples/s = {fly_stereo / stereo:.2f}x the loop fed by the file")


if __name__ == "__main__":
    main()
