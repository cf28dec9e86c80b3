"""The HTML viewer: self-contained, and it draws the skeleton in a real (headless) browser."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from pipeline_fixtures import walking_poses

from bonelift.pipeline.export import Poses3D
from bonelift.pipeline.render import LEFT_RGB, PERSON_RGB, RIGHT_RGB
from bonelift.pipeline.viewer import write_html


def _page(tmp_path: Path, two: bool = False) -> Path:
    joints = walking_poses(20)
    joints[5] = np.nan
    status = np.zeros(20, np.int8)
    status[5] = 2
    poses = Poses3D(joints, np.zeros((20, 17, 2)), np.ones((20, 17)), status, 30.0, 640, 480, "walk.mp4")
    # a second person standing 300 px (1.25 m in the 3D view) to the right, present on every frame
    other = Poses3D(walking_poses(20, seed=4), np.full((20, 17, 2), 300.0), np.ones((20, 17)), np.zeros(20, np.int8),
                    30.0, 640, 480, "walk.mp4", 1)
    path = tmp_path / "viewer.html"
    write_html(poses, path, people=[poses, other] if two else None)
    return path


def test_page_is_self_contained(tmp_path: Path) -> None:
    text = _page(tmp_path).read_text()
    assert "http://" not in text and "https://" not in text and "<script src" not in text and "@import" not in text
    assert '"frames":[[[0.0000,0.0000,0.0000]' in text and ",null," in text  # poses embedded, missing frame as null


def _chromium() -> str | None:
    return next((b for b in ("chromium", "chromium-browser", "google-chrome") if shutil.which(b)), None)


@pytest.mark.skipif(
    _chromium() is None, reason="chromium not installed (apt-get install -y chromium); viewer not rendered"
)
@pytest.mark.parametrize("two", [False, True])
def test_page_draws_the_skeleton_in_headless_chromium(tmp_path: Path, two: bool) -> None:
    page = _page(tmp_path, two)

    def bone_pixels(frame: int) -> list[int]:
        shot = tmp_path / f"shot{frame}.png"
        cmd = [
            _chromium(),
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--no-first-run",
            f"--user-data-dir={tmp_path / 'profile'}",
            "--window-size=800,700",
            "--virtual-time-budget=1000",
            f"--screenshot={shot}",
            f"{page.as_uri()}#frame={frame}",
        ]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)
        from PIL import Image

        img = np.asarray(Image.open(shot).convert("RGB")).astype(int)
        return [int((np.abs(img - np.array(c)).sum(-1) < 60).sum()) for c in (LEFT_RGB, RIGHT_RGB, PERSON_RGB[0])]

    left, right, other = bone_pixels(0)
    assert left > 200 and right > 200, f"bone pixels left {left}, right {right}"
    assert (other > 200) == two, f"second person's pixels {other}"
    # frame 5: the main person is missing, nothing in its colours; the second person is still drawn
    assert bone_pixels(5)[:2] == [0, 0] and (bone_pixels(5)[2] > 200) == two
