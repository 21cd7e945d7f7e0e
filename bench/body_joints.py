"""How far the rendered body's h36m17 joints sit from the mocap skeleton's own joints, joint by joint.

Users mix `posebridge pairs` output (the mocap skeleton's joints) with exported renders (the body's
joints), so docs/conventions.md records this table. For every pose of the bundled mocap (or a
sample of it) and a body of the default identity pool, the body is posed exactly as the player
does (`scene._pose_human`: limb directions from the mocap, the body's own bone lengths, the lowest
ankle kept at its height). Printed per joint: the median and 90th percentile of the distance
between the body's joint and the mocap's, in the world (as rendered), pelvis-relative (as the lifter
sees them), and pelvis-relative after scaling the body to the mocap's size (least squares), which
leaves the differences of joint definition and proportion rather than of body size.

    python bench/body_joints.py [--poses 2000] [--seed 0]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from generator.body.pool import BodyPool  # noqa: E402
from generator.body.sampling import HumanConfig  # noqa: E402
from generator.poses import load_pose_source  # noqa: E402
from generator.scene import _pose_human  # noqa: E402
from generator.skeleton import JOINT_NAMES, ROOT  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--poses", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    bank = load_pose_source("bundled", seed=args.seed)
    pool = BodyPool.for_config(HumanConfig())
    rows = rng.choice(len(bank), size=min(args.poses, len(bank)), replace=False)
    world, rel, scaled = [], [], []
    for row in rows:
        target = bank.joints[row]
        _, _, body = _pose_human(rng, pool, target)
        world.append(np.linalg.norm(body - target, axis=1))
        b, t = body - body[ROOT], target - target[ROOT]
        rel.append(np.linalg.norm(b - t, axis=1))
        scaled.append(np.linalg.norm(b * (np.sum(b * t) / np.sum(b * b)) - t, axis=1))
    world, rel, scaled = np.array(world), np.array(rel), np.array(scaled)
    print(f"{len(rows)} bundled poses, {len(pool)} identities (HumanConfig defaults)")
    print("| joint | world median (mm) | world p90 | pelvis-relative median | p90 | size-aligned median | p90 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for j, name in enumerate(JOINT_NAMES):
        cells = [f"{np.median(a[:, j]):.0f} | {np.percentile(a[:, j], 90):.0f}" for a in (world, rel, scaled)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(f"| mean | {world.mean():.0f} | | {rel.mean():.0f} | | {scaled.mean():.0f} | |")


if __name__ == "__main__":
    main()
