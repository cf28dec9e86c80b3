"""Peak memory of writing every export of a long clip, run in a fresh process by `test_pipeline_memory.py`.

Usage: python export_memory_probe.py FRAMES PEOPLE OUT; prints one JSON line: the resident-set growth (MB) while
`lift.export_all` writes into OUT, above the resident size with the clip's arrays already made, and the bytes
written. Linux only (the peak is reset through /proc/self/clear_refs).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests.walker
sys.path.insert(0, str(Path(__file__).resolve().parent))  # memory_probe

from memory_probe import _growth  # noqa: E402

from bonelift.pipeline.lift import export_all  # noqa: E402
from tests.walker import filmed_people  # noqa: E402


def main(frames: int, people: int, out: Path) -> dict:
    clip = filmed_people(frames, people)
    export_all(clip[0], clip, out)  # warm-up: imports, lookup tables, allocator pools
    grown, seconds = _growth(lambda: export_all(clip[0], clip, out))
    return {"frames": frames, "people": people, "growth_mb": grown, "seconds": seconds,
            "written_mb": sum(f.stat().st_size for f in out.iterdir()) / 2**20}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))))
