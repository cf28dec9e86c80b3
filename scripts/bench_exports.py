"""Export speed of a 10-minute keypoint clip (36,000 frames at 60 fps, one person, synthetic walker): every default
output of `lift` (npz, JSON, CSV, BVH, viewer, TRC, C3D, MOT, angle CSV) in the world frame, timed per writer.

Run: `PYTHONPATH=src python scripts/bench_exports.py [--frames N] [--people P] [--repeat R] [--threads N] [--profile]`;
prints frames/s. `--repeat`: each writer's least CPU time over R runs (a shared machine's load only ever adds time).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests.walker: the synthetic walker

from bonelift.pipeline.lift import EXPORT_THREADS, export_all  # noqa: E402
from tests.walker import filmed_people  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=36000)
    ap.add_argument("--people", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=EXPORT_THREADS, help="writers at a time (default: lift's)")
    ap.add_argument("--profile", action="store_true")
    a = ap.parse_args()
    people = filmed_people(a.frames, a.people)
    threads = 1 if a.profile else a.threads  # cProfile sees its own thread only
    runs = []
    for _ in range(max(a.repeat, 1)):
        with tempfile.TemporaryDirectory() as tmp:
            prof = cProfile.Profile() if a.profile else None
            wall, cpu = time.perf_counter(), time.process_time()
            if prof:
                prof.enable()
            seconds = export_all(people[0], people, Path(tmp), biomech=True, threads=threads)
            if prof:
                prof.disable()
            runs.append((time.perf_counter() - wall, time.process_time() - cpu, seconds))
    wall, cpu = min(r[0] for r in runs), min(r[1] for r in runs)
    seconds = {name: min(r[2][name] for r in runs) for name in runs[0][2]}
    for name, sec in seconds.items():
        print(f"  {name:<16} {sec:6.3f} s")
    print(f"{a.frames} frames, {a.people} people, {threads} threads, least of {len(runs)}: {wall:.2f} s wall "
          f"({a.frames / wall:,.0f} frames/s), {cpu:.2f} s CPU ({a.frames / cpu:,.0f} frames/s)")
    if prof:
        pstats.Stats(prof).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
