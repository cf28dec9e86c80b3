"""The real MediaPipe detector on a few frames of the shipped clip, and videos without a person."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mediapipe", reason="video extra not installed (pip install 'bonelift[video]')")
import cv2  # noqa: E402  (after the skip: opencv comes with the video extra)
from pipeline_fixtures import write_demo_frames  # noqa: E402

from bonelift.errors import DataError  # noqa: E402
from bonelift.pipeline import DEMO_CLIP, lift  # noqa: E402
from bonelift.pipeline.detect import detect  # noqa: E402
from bonelift.pipeline.frames import open_frames  # noqa: E402
from bonelift.pipeline.lift import _to_h36m  # noqa: E402
from bonelift.skeletons import H36M17, MEDIAPIPE33  # noqa: E402


def test_demo_clip_is_shipped_with_its_licence() -> None:
    assert DEMO_CLIP.is_file() and (DEMO_CLIP.parent / "LICENSE-sports2d_demo.txt").is_file()
    src = open_frames(DEMO_CLIP)
    assert src.fps == pytest.approx(30.0) and 60 <= src.num_frames <= 150 and (src.width, src.height) == (640, 360)


def test_mediapipe_is_imported_without_pyplot_or_sounddevice_which_stay_importable() -> None:
    """MediaPipe imports pyplot (drawing) and sounddevice (audio) at load; the detector keeps them out until someone
    uses them, and then they are the real modules."""
    code = ("import sys; from bonelift.pipeline.detect import _mediapipe_pose; _mediapipe_pose(); "
            "late = [m for m in ('matplotlib', 'matplotlib.pyplot', 'sounddevice') if m in sys.modules]; "
            "assert not late, late; "
            "from mediapipe.python.solutions import drawing_utils as du; import matplotlib.pyplot as plt; "
            "assert du.plt.figure is plt.figure and sys.modules['matplotlib.pyplot'] is plt; "
            "import matplotlib; assert sys.modules['matplotlib'] is matplotlib and matplotlib.pyplot is plt; "
            "print('ok')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-2000:]


def test_mediapipe_finds_the_walker_on_the_demo_clip() -> None:
    src = open_frames(DEMO_CLIP)
    track, seconds = detect(src, max_frames=6, progress=False)
    assert track.layout == MEDIAPIPE33 and track.num_frames == 6 and track.detected.all() and seconds > 0
    assert (track.keypoints[..., 0] > 0).all() and (track.keypoints[..., 0] < src.width).all()
    assert ((track.confidence >= 0) & (track.confidence <= 1)).all()
    h36m = _to_h36m(track).keypoints
    # an upright person: head above thorax above pelvis above knees above feet (image y grows downwards)
    y = {n: h36m[:, H36M17.index(n), 1] for n in ("Head", "Thorax", "Hip", "LKnee", "LFoot")}
    assert (y["Head"] < y["Thorax"]).all() and (y["Thorax"] < y["Hip"]).all() and (y["Hip"] < y["LKnee"]).all()
    assert (y["LKnee"] < y["LFoot"]).all()
    height = (y["LFoot"] - y["Head"]).mean()
    assert 80 < height < 360, f"person is {height:.0f} px tall"


def _write_video(path: Path, frames: list[np.ndarray], fps: float = 30.0) -> Path:
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (w, h))
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def test_video_without_a_person_is_a_clear_error(tmp_path: Path, tiny_checkpoint: Path) -> None:
    video = _write_video(tmp_path / "wall.mp4", [np.full((120, 160, 3), 90 + 3 * i, np.uint8) for i in range(8)])
    with pytest.raises(DataError, match="wall.mp4: no person found in any of its 8 frames"):
        lift(video, tmp_path / "out", model=tiny_checkpoint, progress=False)
    assert {p.name for p in tmp_path.iterdir()} == {"wall.mp4"}


@pytest.mark.slow
def test_image_folder_input(tmp_path: Path, tiny_checkpoint: Path) -> None:
    frames = write_demo_frames(tmp_path / "frames")
    summary = lift(frames, tmp_path / "out", model=tiny_checkpoint, fps=10, progress=False)
    assert summary.frames == 3 and summary.detected == 3 and (tmp_path / "out" / "overlay.mp4").stat().st_size > 0


_PARALLEL_CHECK = """
import json, sys
import numpy as np
from bonelift.pipeline import DEMO_CLIP
from bonelift.pipeline.detect import detect
from bonelift.pipeline.frames import open_frames
src = open_frames(DEMO_CLIP)
par, _ = detect(src, max_frames=12, workers=2, progress=False)   # forked workers: frames 0-5 and 6-11
seq, _ = detect(src, max_frames=12, workers=1, progress=False)
d = np.linalg.norm(par.keypoints - seq.keypoints, axis=-1)
print(json.dumps({"frames": par.num_frames, "detected": int(par.detected.sum()),
                  "first_half": float(d[:6].max()), "second_half": float(d[6:].mean())}))
"""


@pytest.mark.slow
def test_two_detection_processes_match_one(tmp_path: Path) -> None:
    """Run in a fresh interpreter: a process that already ran a MediaPipe graph never forks workers."""
    import json
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src"), "OMP_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, "-c", _PARALLEL_CHECK], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["frames"] == 12 and result["detected"] == 12
    assert result["first_half"] < 1e-6  # the first worker tracks exactly like a single process
    # the second starts with a fresh detection and no smoothing history: the same person, a few px apart
    # (measured ~6 px on these frames, where the walker enters behind the tree; she is ~200 px tall)
    assert result["second_half"] < 12.0
