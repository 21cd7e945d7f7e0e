"""Built-in player frame rate: scene sampling + render + readbacks + visibility + ground truth + JPEG + mask PNG.

The timed "full" loop is what one player process does per frame before it sends: draw a scene
from the bundled mocap (`sample_scene`: pose, body identity and its retargeting, clothing, camera,
light, background, occluders), render it and read back the image, the person mask and the joints'
depth (`renderer.render`, which also derives visibility), compute the ground truth
(`scene_ground_truth`), apply the camera effects and encode a JPEG at the frame's quality, and the
mask as a PNG. In the same run, the
reference loop draws the same scenes bare: the skinned body (or the mannequin's instances) over
the background, and reads back the colour image, nothing else. Rounds alternate between the
loops; the script prints the median rate of each, the ratio, and where the full loop's time goes.
`--players 2` then runs the full loop in two processes at once (each its own renderer, as two
player processes would) and prints their summed rate; every process reports its peak memory.

    python bench/render.py [--body human|mannequin] [--frames 400] [--rounds 3] [--size 256] [--players 2] [--photo-dir DIR]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import resource
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.masks import encode_mask_png  # noqa: E402
from generator.player import encode_image, scene_renderer  # noqa: E402
from generator.poses import load_pose_source  # noqa: E402
from generator.render import mannequin_primitives  # noqa: E402
from generator.render.post import apply_post_effects  # noqa: E402
from generator.render.mannequin import occluder_primitives  # noqa: E402
from generator.scene import SceneConfig, sample_scene, scene_ground_truth  # noqa: E402

SEED = 7
STAGES = ("sample_scene", "render + visibility", "ground truth", "post + jpeg", "mask png")


def full_loop(renderer, config: SceneConfig, bank, first: int, frames: int, stage_s: dict) -> float:
    """Frames per second of the player's per-frame work; adds each stage's seconds to stage_s."""
    t_start = time.perf_counter()
    for f in range(first, first + frames):
        t0 = time.perf_counter()
        scene = sample_scene(config, bank, SEED, f)
        t1 = time.perf_counter()
        frame = renderer.render(scene)
        t2 = time.perf_counter()
        scene_ground_truth(scene)
        t3 = time.perf_counter()
        encode_image(apply_post_effects(frame.rgb, scene.post), "jpeg", jpeg_quality=scene.post.jpeg_quality or 90)
        t4 = time.perf_counter()
        encode_mask_png(frame.mask)
        t5 = time.perf_counter()
        for name, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            stage_s[name] += dt
    return frames / (time.perf_counter() - t_start)


def bare_loop(renderer, scenes: list) -> float:
    """Frames per second of the bare draw of prepared scenes plus the colour readback."""
    gl = renderer.gl
    human = hasattr(renderer, "bodies")
    prepared = [occluder_primitives(s.occluders) if human else mannequin_primitives(s)[0] for s in scenes]
    t_start = time.perf_counter()
    for scene, prims in zip(scenes, prepared):
        body = (lambda s=scene: renderer._draw_body(s)) if human else None
        gl.draw(scene.K, scene.R, scene.t, prims, scene.lighting, scene.background, body)
        gl.read_rgb()
    return len(scenes) / (time.perf_counter() - t_start)


def _config(args) -> SceneConfig:
    background = {"photo_dir": args.photo_dir} if args.photo_dir else {}
    return SceneConfig(image_size=(args.size, args.size), background=background, body_model=args.body)


def _player(args, index: int, out) -> None:
    """One of --players processes: the full loop on its own frames; sends (frames/s, peak MiB)."""
    config = _config(args)
    bank = load_pose_source("bundled")
    with scene_renderer(config) as renderer:
        full_loop(renderer, config, bank, 10**6 + 1000 * index, 20, dict.fromkeys(STAGES, 0.0))  # warm up
        out.put((full_loop(renderer, config, bank, 10**7 * (index + 1), args.frames, dict.fromkeys(STAGES, 0.0)), _peak_mib()))


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--body", choices=["human", "mannequin"], default="human")
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--players", type=int, default=2, help="processes for the concurrent run (0: skip it)")
    parser.add_argument("--photo-dir", type=Path, default=None)
    args = parser.parse_args()

    bank = load_pose_source("bundled")
    config = _config(args)
    full_rates, bare_rates = [], []
    stage_s = dict.fromkeys(STAGES, 0.0)
    with scene_renderer(config) as renderer:
        full_loop(renderer, config, bank, 10**6, 30, dict.fromkeys(STAGES, 0.0))  # warm up
        for r in range(args.rounds):
            first = r * args.frames
            full_rates.append(full_loop(renderer, config, bank, first, args.frames, stage_s))
            bare_rates.append(bare_loop(renderer, [sample_scene(config, bank, SEED, f) for f in range(first, first + args.frames)]))
        gl_name = renderer.gl.describe()
    single_peak = _peak_mib()

    full, bare = statistics.median(full_rates), statistics.median(bare_rates)
    total = sum(stage_s.values())
    print(f"renderer: {gl_name} ({os.cpu_count()} cores, LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'default')}); body: {args.body}")
    print(f"scenes: bundled mocap ({len(bank)} poses), {args.size}x{args.size}, backgrounds {list(config.background.active_weights())}")
    print(f"full (scene + render + readbacks + visibility + ground truth + post + JPEG + mask PNG): {full:7.1f} frames/s")
    print(f"reference, bare draw + colour readback of the same scenes:                        {bare:7.1f} frames/s")
    print(f"ratio full / bare: {full / bare:.2f}")
    print("full loop time by stage: " + ", ".join(f"{k} {1e3 * v / (args.rounds * args.frames):.2f} ms ({100 * v / total:.0f} %)" for k, v in stage_s.items()))
    print(f"peak memory of this process: {single_peak:.0f} MiB")
    if args.players > 0:
        ctx = multiprocessing.get_context("spawn")
        out = ctx.Queue()
        procs = [ctx.Process(target=_player, args=(args, i, out)) for i in range(args.players)]
        for p in procs:
            p.start()
        results = [out.get() for _ in procs]
        for p in procs:
            p.join()
        rates = [r for r, _ in results]
        print(f"{args.players} player processes at once: {sum(rates):.1f} frames/s in all ({', '.join(f'{r:.1f}' for r in rates)}); "
              f"peak memory {', '.join(f'{m:.0f}' for _, m in results)} MiB")


if __name__ == "__main__":
    main()
