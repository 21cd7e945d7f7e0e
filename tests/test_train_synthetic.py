"""On-the-fly training data (`--data synthetic:...`): parsing, determinism by (seed, epoch, rank),
mixing with files at the stated weights, and training from it through the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from generator.camera import project_points
from generator.pairs import BLOCK_SIZE, PairGenerator, load_pairs_config
from generator.pairs_io import Pairs, save_pairs
from posebridge import main
from train.checkpoint import load_checkpoint
from train.config import TrainConfig
from train.data import DataSpec, MixedBatches, open_source, source_rows
from train.synthetic import SyntheticSource, SyntheticSpec, _stream_seed
from train.trainer import train_run

torch.set_num_threads(1)
PRIOR = "synthetic:prior?prior_size=3000"


@pytest.fixture(scope="module")
def prior_source() -> SyntheticSource:
    return open_source(PRIOR, seed=0)


def test_spec_parsing_and_errors(tmp_path):
    assert DataSpec.parse(f"{PRIOR}:0.25") == DataSpec(PRIOR, 0.25)
    assert DataSpec.parse("synthetic:bundled") == DataSpec("synthetic:bundled", 1.0)
    spec = SyntheticSpec.parse("synthetic:bundled?exclude=cmu_05,cmu_131&config=p.yaml&fps=15")
    assert spec == SyntheticSpec("bundled", config="p.yaml", exclude=("cmu_05", "cmu_131"), fps=15.0)
    with pytest.raises(ValueError, match="unknown option 'size'"):
        SyntheticSpec.parse("synthetic:prior?size=3")
    with pytest.raises(ValueError, match="prior_size='x' is not a number"):
        SyntheticSpec.parse("synthetic:prior?prior_size=x")
    with pytest.raises(ValueError, match="name a pose source"):
        SyntheticSpec.parse("synthetic:?fps=3")
    # The held-out people really are left out of the bank.
    source = open_source("synthetic:bundled?exclude=cmu_05,cmu_131")
    assert {"cmu_05", "cmu_131"}.isdisjoint({c.subject for c in source.bank.clips}) and len(source.bank) > 1000
    assert source_rows(source) is None
    # A pairs config file is honoured (here: a different baseline).
    (tmp_path / "p.yaml").write_text("baseline_mm: 123.0\n")
    rows = open_source(f"synthetic:prior?prior_size=500&config={tmp_path}/p.yaml").stream((0, 0, 0)).take(10)
    assert np.all(rows["baseline_mm"] == 123.0)


def test_stream_is_fresh_valid_pairs_deterministic_by_seed_epoch_and_rank(prior_source):
    take = 3 * BLOCK_SIZE // 2 + 17  # crosses block boundaries at an odd offset
    a = prior_source.stream((0, 1, 0), rank=0)
    first = [a.take(1000) for _ in range(take // 1000)]
    rows = {k: np.concatenate([f[k] for f in first]) for k in first[0]}
    # Valid pairs: the 2D is the projection of the 3D through K, the right view is the baseline's.
    np.testing.assert_allclose(rows["joints_2d"], project_points(rows["joints_3d"].astype(np.float64), rows["K"].astype(np.float64)), atol=0.05)
    assert rows["joints_2d_right"] is not None and np.all(rows["baseline_mm"] == 500.0)
    # Every sample new: no two rows share a 3D pose (new pose draws, new cameras).
    assert len(np.unique(rows["joints_3d"].reshape(len(rows["joints_3d"]), -1), axis=0)) == len(rows["joints_3d"])
    # The same (seed, epoch, source, rank) gives the same bits, whatever the take sizes.
    again = prior_source.stream((0, 1, 0), rank=0).take(len(rows["joints_2d"]))
    for k in rows:
        np.testing.assert_array_equal(rows[k], again[k])
    # It is the pair generator's stream under the stream's own seed.
    gen = PairGenerator(prior_source.bank, load_pairs_config(None).model_copy(update={"provenance": False}), _stream_seed((0, 1, 0), 0))
    reference = gen.allocate(BLOCK_SIZE)
    gen.fill(reference)
    np.testing.assert_array_equal(rows["joints_3d"][:BLOCK_SIZE], reference.joints_3d)
    # Another rank, epoch or seed: another stream.
    for seed, rank in (((0, 1, 0), 1), ((0, 2, 0), 0), ((1, 1, 0), 0), ((0, 1, 1), 0)):
        other = prior_source.stream(seed, rank=rank).take(1000)["joints_3d"]
        assert not np.any(np.all(other == rows["joints_3d"][:1000], axis=(1, 2))), (seed, rank)


def _first_pixel(rows, rng):
    return {"uv": rows["joints_2d"].reshape(len(rows["joints_2d"]), -1).copy()}


def test_mixing_with_a_file_follows_the_weights_on_the_stream(prior_source, tmp_path):
    pairs = _file_pairs(5000)
    path = save_pairs(tmp_path / "file.npz", pairs)
    file_rows = {row.tobytes(): i for i, row in enumerate(pairs.joints_2d.reshape(5000, -1))}
    sources = [open_source(path), prior_source]
    batch, steps = 100, 200
    stream = MixedBatches(sources, [0.7, 0.3], batch, _first_pixel, seed=3)
    uv = np.concatenate([stream.next()["uv"] for _ in range(steps)])
    # Measured from the rows themselves (is the row one of the file's?), not from the `source` labels.
    row = np.array([file_rows.get(r.tobytes(), -1) for r in uv])
    from_file = row >= 0
    assert from_file.sum() == 0.7 * batch * steps and (~from_file).sum() == 0.3 * batch * steps
    assert np.all(from_file.reshape(steps, batch).sum(axis=1) == 70)  # in every batch
    # The file part passes over every file row once per pass; the synthetic part is all new pairs.
    np.testing.assert_array_equal(np.sort(row[from_file][:5000]), np.arange(5000))
    assert len(np.unique(uv[~from_file], axis=0)) == (~from_file).sum()
    # The same seed and epoch give the same mixed stream; a weight of 1:3 gives a quarter.
    again = MixedBatches(sources, [0.7, 0.3], batch, _first_pixel, seed=3)
    np.testing.assert_array_equal(np.concatenate([again.next()["uv"] for _ in range(steps)]), uv)
    quarter = MixedBatches(sources, [1.0, 3.0], 64, _first_pixel, seed=3)
    uv = np.concatenate([quarter.next()["uv"] for _ in range(50)])
    assert sum(r.tobytes() in file_rows for r in uv) == 16 * 50


def test_training_from_synthetic_data_alone_or_mixed_is_reproducible(tmp_path):
    tiny = dict(net={"width": 32, "blocks": 1, "dropout": 0.0}, batch_size=64, threads=1, stats_samples=500)
    with pytest.raises(ValueError, match="only synthetic data sources: give --steps-per-epoch"):
        train_run(TrainConfig(data=[PRIOR], model="single", epochs=1, **tiny), tmp_path / "none", show_progress=False)
    save_pairs(tmp_path / "file.npz", _file_pairs(2000))
    cfg = TrainConfig(data=[f"{PRIOR}:0.5", f"{tmp_path}/file.npz:0.5"], model="single", epochs=2, steps_per_epoch=30, **tiny)
    runs = [train_run(cfg, tmp_path / f"run{i}", show_progress=False) for i in range(2)]
    metrics = [r.read_metrics() for r in runs]
    assert metrics[0]["history"][-1]["loss"] < metrics[0]["history"][0]["loss"]  # it learns
    a, b = (load_checkpoint(r.path).model_state for r in runs)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def _file_pairs(n: int) -> Pairs:
    """Real pairs from another bank and seed than the synthetic streams'."""
    from generator.pairs import generate_pairs
    from generator.poses import load_pose_source

    return generate_pairs(load_pose_source("prior", seed=5, prior_size=2000), n, seed=9)


def test_cli_trains_from_synthetic_data(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--data", "synthetic:bundled?exclude=cmu_05", "--model", "single", "--epochs", "1", "--steps-per-epoch", "5",
            "--width", "32", "--blocks", "1", "--batch-size", "64", "--threads", "1", "--no-progress", "--out", str(out)]  # fmt: skip
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["data"] == ["synthetic:bundled?exclude=cmu_05"] and metrics["steps"] == 5
    bad = CliRunner().invoke(main, ["train", "--data", "synthetic:bundled?exclude=nobody", "--steps-per-epoch", "5", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 1 and "nobody" in bad.output and "Traceback" not in bad.output
