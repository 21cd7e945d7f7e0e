"""Built-in player frame rate: scene sampling + render + readback + visibility + ground truth + JPEG + mask PNG.

The timed "full" loop is what one player process does per frame before it sends: draw a scene
from the bundled mocap (`sample_scene`), render it and read back the image, the person mask and
the joints' depth (`MannequinRenderer.render`, which also derives visibility), compute the
ground truth (`scene_ground_truth`), encode a JPEG at quality 90 with Pillow and the mask as a
PNG (`encode_mask_png`). In the same run, the reference loop renders the same scenes bare: draw
the same instances and read back the colour image, nothing else; a third loop adds the mask
readback to it, which isolates what the mask costs the GPU side. Rounds alternate between the
loops; the script prints the median rate of each, the ratio, and where the full loop's time goes.

    python bench/render.py [--frames 400] [--rounds 3] [--size 256] [--photo-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.masks import encode_mask_png  # noqa: E402
from generator.player import encode_image  # noqa: E402
from generator.poses import load_pose_source  # noqa: E402
from generator.render import MannequinRenderer, mannequin_primitives  # noqa: E402
from generator.scene import SceneConfig, sample_scene, scene_ground_truth  # noqa: E402

SEED = 7
STAGES = ("sample_scene", "render + visibility", "ground truth", "jpeg q90", "mask png")


def full_loop(renderer: MannequinRenderer, config: SceneConfig, bank, first: int, frames: int, stage_s: dict) -> float:
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
        encode_image(frame.rgb, "jpeg", jpeg_quality=90)
        t4 = time.perf_counter()
        encode_mask_png(frame.mask)
        t5 = time.perf_counter()
        for name, dt in zip(STAGES, (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4)):
            stage_s[name] += dt
    return frames / (time.perf_counter() - t_start)


def bare_loop(renderer: MannequinRenderer, prepared: list, mask: bool = False) -> float:
    """Frames per second of draw + colour readback (+ mask readback) of pre-built instances."""
    gl = renderer.gl
    t_start = time.perf_counter()
    for scene, prims in prepared:
        gl.draw(scene.K, scene.R, scene.t, prims, scene.lighting, scene.background)
        gl.read_rgb()
        if mask:
            gl.read_mask()
    return len(prepared) / (time.perf_counter() - t_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--photo-dir", type=Path, default=None)
    args = parser.parse_args()

    bank = load_pose_source("bundled")
    background = {"photo_dir": args.photo_dir} if args.photo_dir else {}
    config = SceneConfig(image_size=(args.size, args.size), background=background)
    full_rates, bare_rates, masked_rates = [], [], []
    stage_s = dict.fromkeys(STAGES, 0.0)
    with MannequinRenderer(args.size, args.size, photo_dir=args.photo_dir) as renderer:
        full_loop(renderer, config, bank, 10**6, 30, dict.fromkeys(STAGES, 0.0))  # warm up
        for r in range(args.rounds):
            first = r * args.frames
            full_rates.append(full_loop(renderer, config, bank, first, args.frames, stage_s))
            scenes = [sample_scene(config, bank, SEED, f) for f in range(first, first + args.frames)]
            prepared = [(s, mannequin_primitives(s)[0]) for s in scenes]
            bare_rates.append(bare_loop(renderer, prepared))
            masked_rates.append(bare_loop(renderer, prepared, mask=True))
        gl_name = renderer.gl.describe()

    full, bare, masked = statistics.median(full_rates), statistics.median(bare_rates), statistics.median(masked_rates)
    total = sum(stage_s.values())
    print(f"renderer: {gl_name} ({os.cpu_count()} cores, LP_NUM_THREADS={os.environ.get('LP_NUM_THREADS', 'default')})")
    print(f"scenes: bundled mocap ({len(bank)} poses), {args.size}x{args.size}, backgrounds {list(config.background.active_weights())}")
    print(f"full (scene + render + readbacks + visibility + ground truth + JPEG q90 + mask PNG): {full:7.1f} frames/s")
    print(f"reference, bare render + colour readback of the same scenes:                      {bare:7.1f} frames/s")
    print(f"bare render + colour and mask readbacks:                                           {masked:7.1f} frames/s")
    print(f"ratio full / bare: {full / bare:.2f}; the mask readback costs {1e3 * (1 / masked - 1 / bare):.3f} ms a frame")
    print("full loop time by stage: " + ", ".join(f"{k} {1e3 * v / (args.rounds * args.frames):.2f} ms ({100 * v / total:.0f} %)" for k, v in stage_s.items()))


if __name__ == "__main__":
    main()
