"""Peak memory of reading each hostile file of issue 25 (docs/reliability.md, "Bounded memory"): every file is
built in a temporary folder, then read by a fresh process through the reader a user's command would use; prints
one Markdown row per file: size on disk, outcome, peak resident memory (VmHWM, Linux) and the same for a process
that only imports bonelift. Usage: PYTHONPATH=src python scripts/hostile_memory.py"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests.test_reliability import _Alloc, _header_only_npz, _zeros_bomb  # noqa: E402

PROBE = """
import sys
from bonelift.errors import DataError
from bonelift.pipeline.keypoint_io import read_keypoints
from bonelift.datasets.common import load_pickled_npz
reader = {"keypoints": read_keypoints, "dataset": lambda p: load_pickled_npz(p, "positions_3d"),
          "none": lambda p: None}[sys.argv[1]]
try:
    reader(sys.argv[2])
    outcome = "read"
except DataError as exc:
    outcome = "DataError: " + str(exc).split(": ", 1)[1][:60]
with open("/proc/self/status") as fh:
    peak = next(int(line.split()[1]) for line in fh if line.startswith("VmHWM")) // 1024
print(f"{peak}\\t{outcome}")
"""


def _shared_lists() -> list:
    x: list = [np.zeros((1, 17, 3))]
    for _ in range(40):
        x = [x, x]
    return x


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        (t / "deep.json").write_text("[" * 200_000 + "]" * 200_000)
        with open(t / "big.json", "w") as fh:
            fh.write("[")
            fh.truncate(40 * 2**20)
        np.savez(t / "alloc.npz", positions_3d=np.array({"S1": {"Walking": _Alloc(10**13)}}, dtype=object))
        np.savez(t / "lists.npz", positions_3d=np.array({"S1": {"Walking": _shared_lists()}}, dtype=object))
        cases = [
            ("(imports only)", "none", t / "deep.json"),
            ("keypoint npz of deflated zeros (1.5 GB declared)", "keypoints",
             _zeros_bomb(t / "bomb.npz", (2_830_000, 33, 2))),
            ("npz declaring 10^7 x 10^6 x 2 float64", "keypoints",
             _header_only_npz(t / "huge.npz", {"keypoints": (10**7, 10**6, 2)})),
            ("dataset pickle of bytearray(10^13)", "dataset", t / "alloc.npz"),
            ("dataset pickle of shared nested lists (2^40 leaves)", "dataset", t / "lists.npz"),
            ("JSON nested 200,000 deep", "keypoints", t / "deep.json"),
            ("JSON of 40 MB (sparse)", "keypoints", t / "big.json"),
        ]
        print("| file | size on disk | outcome | peak RSS (MB) |\n|---|---|---|---|")
        for name, reader, path in cases:
            out = subprocess.run([sys.executable, "-c", PROBE, reader, str(path)], capture_output=True, text=True,
                                 check=True)
            peak, outcome = out.stdout.strip().split("\t")
            size = "-" if reader == "none" else f"{path.stat().st_size:,} B"
            print(f"| {name} | {size} | {outcome} | {peak} |")


if __name__ == "__main__":
    main()
