"""`posebridge train --executor ray`: the same training run under Ray Train's TorchTrainer.

Every worker runs `train_run` itself, as a torchrun rank does: Ray Train starts the workers,
sets up the process group (gloo on CPUs, NCCL on GPUs) and the rank variables, and the trainer
joins that group instead of making one (train/trainer.py `_init_distributed`). So a Ray run and a
torchrun run of the same config train the same model (tests/test_ray.py). Rank 0 writes the run
directory, which must be on storage every worker's node can reach when they are on several nodes.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from .config import TrainConfig

log = logging.getLogger(__name__)


def _loop(loop_config: dict) -> None:
    """One Ray Train worker: the torchrun rank's code, then a report from rank 0."""
    import ray.train

    from .trainer import train_run

    os.environ.update(loop_config.get("env", {}))
    cfg = TrainConfig.model_validate_json(loop_config["config"])
    train_run(cfg, loop_config["out"], resume=loop_config["resume"], show_progress=False, overwrite=loop_config["overwrite"])
    ray.train.report({"rank": ray.train.get_context().get_world_rank()})


def train_on_ray(
    config: TrainConfig,
    out: str | Path,
    workers: int,
    *,
    resume: bool = False,
    overwrite: bool = False,
    use_gpu: bool = False,
    ray_address: str | None = None,
    storage_path: str | None = None,
) -> dict:
    """Train with `workers` Ray Train workers (one GPU each with `use_gpu`); returns the run's
    metrics.json. Joins `ray_address` unless this process already joined a cluster."""
    try:
        import ray
        from ray.train import RunConfig, ScalingConfig
        from ray.train.torch import TorchConfig, TorchTrainer
    except ImportError as e:  # pragma: no cover - the extra is installed in the dev environment
        raise ImportError("--executor ray needs Ray Train: pip install 'posebridge[cluster]'") from e
    if config.batch_size % workers:
        raise ValueError(f"batch size {config.batch_size} is not divisible by the {workers} workers")
    if not ray.is_initialized():
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    out = str(Path(out).resolve())
    env = {k: v for k, v in os.environ.items() if k.startswith("AWS_")}  # s3:// --data on every node
    trainer = TorchTrainer(
        _loop,
        train_loop_config={"config": config.model_dump_json(), "out": out, "resume": resume, "overwrite": overwrite, "env": env},
        torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
        scaling_config=ScalingConfig(num_workers=workers, use_gpu=use_gpu),
        run_config=RunConfig(name="posebridge-train", storage_path=storage_path or tempfile.mkdtemp(prefix="posebridge-ray-train-")),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    from .trainer import RunDir

    return RunDir(Path(out)).read_metrics()
