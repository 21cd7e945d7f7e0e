"""Lifting networks, geometric search, data mixing, training and evaluation (the paper's label generator).

Library entry points (the CLI in train/cli.py is a thin layer over them):

- `train.trainer.train_run(TrainConfig, out_dir, resume=False, overwrite=False) -> RunDir` (an existing run needs one of the two)
- `train.evaluate.evaluate_run(checkpoint, pairs_path, search="fast", noise_px=0.0) -> dict`
- `train.label.label_coco(checkpoint, coco_json, out_json, focal_px=None) -> LabelSummary`
- `train.figures.render_lifted_figure(labelled_json, image_dir, out_png)` and `plot_loss_curves`
- `train.search.geometric_search(pose_rel, pixels, K, method="fast"|"grid"|"none")`
- `train.inference.Lifter.load(run_dir).lift(pixels, K, search="fast")`
- `train.videopose3d.import_videopose3d(data_3d, data_2d, cameras_json, out_npz)`
- `train.accuracy.make_split_pairs(out_dir)` / `run_accuracy(out_dir)`: the held-out CMU experiment
"""
