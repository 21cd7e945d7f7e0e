"""The image network: a person crop in, h36m17 2D and root-relative 3D out (the paper's baseline).

One concept per module:

- `backbone` ResNets in plain torch; `model` the integral 2D + 3D read-out; `losses` the masked losses;
- `records` the common per-person form of every source; `joints` each dataset's map to h36m17;
  `matfile` MATLAB v5 files; importers `rendered`, `coco`, `mpii`, `lsp` (with its splits and
  pseudo-3D labels); `sources` the `--data` detection;
- `augment` crops and augmentation; `dataset` per-batch mixing and the DataLoader path;
- `config` presets (cpu-small, gpu-full); `checkpoint`; `trainer`; `evaluate` (PCK, MPJPE);
  `predict` (`ImagePoseEstimator`); `figures`; `renders` (rendered sets for experiments);
  `ablation` (the domain-gap experiment); `demo` (its part of `posebridge demo`); `cli`.
"""
