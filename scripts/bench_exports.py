"""Export speed of a 10-minute keypoint clip (36,000 frames at 60 fps, one person, synthetic walker): every default
output of `lift` (npz, JSON, CSV, BVH, viewer, TRC, C3D, MOT, angle CSV) in the world frame, timed per writer.

Run: `PYTHONPATH=src python scripts/bench_exports.py [--frames N] [--people P] [--repeat R] [--profile]`; prints
frames/s. `--repeat`: each writer's least CPU time over R runs (a shared machine's load only ever adds time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.walker: the synthetic walker

from bonelift.pipeline.lift import export_all  # noqa: E402
from bonelift.world import estimate_world  # noqa: E402
from tests.walker import walk  # noqa: E402


def clip_people(frames: int, people: int, fps: float = 60.0) -> list:
    """`people` synthetic walkers seen by a camera 1.6 m up, pitched 10 degrees: camera-frame Poses3D."""
    from bonelift.pipeline.export import Poses3D
    from bonelift.pipeline.track import DETECTED

    pitch = np.radians(10.0)
    c, s = np.cos(pitch), np.sin(pitch)
    cam_from_world = np.array([[1, 0, 0], [0, -c, s], [0, -s, -c]]) @ np.diag([1.0, 1.0, -1.0])
    out = []
    for k in range(people):
        world = np.tile(walk(600, fps=fps, start=(-1.0 + k, 4.0)), (-(-frames // 600), 1, 1))[:frames]
        cam = (world - np.array([0.0, 1.6, 0.0])) @ cam_from_world.T
        root = cam[:, 0].copy()
        kp = cam[..., :2] / cam[..., 2:] * 1000 + np.array([960.0, 540.0])
        status = np.full(frames, DETECTED, np.int8)
        out.append(Poses3D(cam - root[:, None], kp, np.ones((frames, 17)), status, fps, 1920, 1080, "synthetic",
                           k, root))
    frame = estimate_world([(p.joints, p.trajectory) for p in out], fps)
    for p in out:
        p.world = frame
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=36000)
    ap.add_argument("--people", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    people = clip_people(a.frames, a.people)
    runs = []
    for _ in range(max(a.repeat, 1)):
        with tempfile.TemporaryDirectory() as tmp:
            prof = cProfile.Profile() if a.profile else None
            wall, cpu = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            seconds = export_all(people[0], people, Path(tmp), biomech=True)
            if prof:
                prof.disable()
            runs.append((time.perf_counter() - wall, time.process_time() - cpu, seconds))
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    seconds = {name: min(r[2][name] for r in runs) for name in runs[0][2]}
    for name, sec in seconds.items():
        print(f"  {name:<16} {sec:6.3f} s")
    print(f"{a.frames} frames, {a.people} people, least of {len(runs)}: {wall:.2f} s wall ({a.frames / wall:,.0f} frames/s), "
          f"{cpu:.2f} s CPU ({a.frames / cpu:,.0f} frames/s)")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
