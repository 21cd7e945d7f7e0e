"""DDP synchronizes: two gloo ranks that read different rows (and draw their own on-the-fly pairs)
end with the same model, and with the model one process gets from the same global batches
(tests/test_train_cli.py runs DDP under torchrun)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from generator.pairs_io import save_pairs
from train.checkpoint import load_checkpoint
from train.config import TrainConfig
from train.data import DataSpec, MixedBatches, open_source
from train.models import build_model
from train.trainer import _TrainStep, feature_transform, fit_statistics, learning_rate, stage_losses

from train_support import ddp_rank, free_port, make_pairs

WORLD = 2


def _one_process_on_the_global_batches(cfg: TrainConfig) -> dict[str, torch.Tensor]:
    """The trainer's steps in one process, each on the union of the ranks' local batches (the same
    rows, noise and mirroring: the ranks' streams are rebuilt here from their seeds)."""
    specs = [DataSpec.parse(d) for d in cfg.data]
    sources = [open_source(s.path, seed=cfg.seed) for s in specs]
    weights = [s.weight for s in specs]
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, cfg.net)
    fit_statistics(model, sources, weights, cfg)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    forward = _TrainStep(model)
    step = 0
    for epoch in range(cfg.epochs):
        stage = cfg.stage(epoch)
        ranks = [
            MixedBatches(sources, weights, cfg.batch_size // WORLD, feature_transform(cfg), cfg.seed, epoch, r, WORLD, cfg.block_rows, cfg.buffer_blocks)
            for r in range(WORLD)
        ]
        model.train()
        for _ in range(cfg.steps_per_epoch):
            local = [r.next() for r in ranks]
            assert not np.array_equal(local[0]["pose"], local[1]["pose"])  # the ranks train on different rows
            batch = {k: torch.from_numpy(np.concatenate([b[k] for b in local])) for k in local[0] if k != "source"}
            for group in optimizer.param_groups:
                group["lr"] = learning_rate(cfg, step, cfg.epochs * cfg.steps_per_epoch)
            losses = stage_losses(forward, model, batch, stage, cfg)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            for net in model.nets():
                net.apply_max_norm()
            step += 1
    return model.state_dict()


def _biases_before_batchnorm(model: nn.Module) -> set[str]:
    """State keys of the Linear biases that feed a BatchNorm: the normalization subtracts them again,
    so their gradient is zero up to rounding, and Adam (which divides by the gradient's size) moves
    them by up to lr per step in a direction set by rounding noise, in any one process as in DDP."""
    keys = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Sequential):
            for i in range(len(module) - 1):
                if isinstance(module[i], nn.Linear) and isinstance(module[i + 1], nn.BatchNorm1d):
                    keys.add(f"{name}.{i}.bias")
    return keys


@pytest.mark.timeout(180)
@pytest.mark.parametrize("kind", ["stereo", "single"])
def test_ddp_ranks_agree_with_each_other_and_with_one_process(kind, tmp_path):
    rng = np.random.default_rng(11)
    save_pairs(tmp_path / "a.npz", make_pairs(rng, 400, right_baseline_mm=500.0))
    save_pairs(tmp_path / "b.npz", make_pairs(rng, 200))
    # Dropout draws its masks per rank, so it is off; noise and mirroring stay on (the reference
    # draws the ranks' random numbers). Stereo: one epoch of each stage.
    cfg = TrainConfig(
        data=[f"{tmp_path}/a.npz:0.5", f"{tmp_path}/b.npz:0.25", "synthetic:prior?prior_size=500:0.25"], model=kind, net={"width": 32, "blocks": 1, "dropout": 0.0},
        epochs=2, steps_per_epoch=4, batch_size=64, block_rows=50, buffer_blocks=2, threads=1, stats_samples=400,
    )
    states = tmp_path / "states"
    states.mkdir()
    mp.spawn(ddp_rank, args=(WORLD, free_port(), cfg.model_dump_json(), str(tmp_path / "run"), str(states)), nprocs=WORLD, join=True)
    ranks = [torch.load(states / f"rank{r}.pt") for r in range(WORLD)]
    saved = load_checkpoint(tmp_path / "run").model_state
    for k in saved:  # weights and BatchNorm statistics alike
        assert torch.equal(ranks[0][k], ranks[1][k]), f"{k}: the ranks disagree"
        assert torch.equal(ranks[0][k], saved[k]), f"{k}: the checkpoint is not the ranks' model"

    ddp = ranks[0]
    one = _one_process_on_the_global_batches(cfg)
    fresh = build_model(cfg.model, cfg.net)
    start = fresh.state_dict()
    noise_driven = _biases_before_batchnorm(fresh)
    trained = {name for name, _ in fresh.named_parameters()} - noise_driven
    assert len(noise_driven) == (6 if kind == "stereo" else 3)
    steps = cfg.epochs * cfg.steps_per_epoch
    for k in one:
        if k.endswith("num_batches_tracked"):
            assert int(ddp[k]) == int(one[k]) == steps
        elif k in noise_driven or k.endswith("running_mean"):  # a running mean carries those biases
            bound = 2 * steps * cfg.lr
            assert float((ddp[k] - one[k]).abs().max()) <= bound, k
        else:  # weights, the other biases, BatchNorm's scale, shift and running variance, the z-scores
            assert k not in trained or not torch.equal(one[k], start[k]), f"{k} did not train"
            torch.testing.assert_close(ddp[k], one[k], rtol=1e-4, atol=1e-5, msg=lambda m: f"{k}: DDP differs from one process: {m}")
