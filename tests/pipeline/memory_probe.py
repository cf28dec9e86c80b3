"""Peak memory of lifting one long keypoint file, run in a fresh process by `test_pipeline_memory.py`.

Usage: python memory_probe.py KEYPOINTS CHECKPOINT; prints one JSON line: the resident-set growth (MB) of
`lifters.lift_track` and of a naive single pass of the same network over the whole clip, the longest input a
network call saw, and the seconds. Linux only (the peak is reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np
import torch

from bonelift.cameras import normalize_screen
from bonelift.pipeline import lifters
from bonelift.pipeline.gaps import fill_gaps
from bonelift.pipeline.keypoint_io import read_people


def _mb(field: str) -> float:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field)) / 1024


def _growth(run) -> tuple[float, float]:
    """(peak resident MB above the current resident size while `run()` runs, seconds)."""
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # resets the peak (VmHWM) to the current resident size
    before, t0 = _mb("VmRSS"), time.perf_counter()
    run()
    return _mb("VmHWM") - before, time.perf_counter() - t0


def main(keypoints: str, checkpoint: str) -> dict:
    torch.set_num_threads(1)
    track = fill_gaps(read_people(keypoints)[0], 20)
    lifter = lifters.load_lifter(checkpoint)
    longest = [0]
    lifter.model.register_forward_pre_hook(lambda m, args: longest.__setitem__(0, max(longest[0], args[0].shape[1])))
    short = fill_gaps(read_people(keypoints)[0], 20)
    short.keypoints, short.confidence, short.status = track.keypoints[:200], track.confidence[:200], track.status[:200]
    lifters.lift_track(lifter, short, progress=False)  # warm-up: allocator pools, lazy initialisation
    out = []
    grown, seconds = _growth(lambda: out.append(lifters.lift_track(lifter, track, progress=False)))
    nan_frames = int(np.isnan(out[0]).any(axis=(1, 2)).sum())
    chunk_input = longest[0]
    x = torch.as_tensor(normalize_screen(track.keypoints, track.width, track.height), dtype=torch.float32)[None]
    c = torch.as_tensor(track.confidence, dtype=torch.float32)[None]
    with torch.no_grad():
        naive, _ = _growth(lambda: lifter.model(x, c, dense=True))
    return {"frames": len(track.keypoints), "growth_mb": grown, "naive_growth_mb": naive, "seconds": seconds,
            "longest_input": chunk_input, "nan_frames": nan_frames, "output_mb": out[0].nbytes / 2**20}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], sys.argv[2])))
