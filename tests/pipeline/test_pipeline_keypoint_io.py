"""Readers of 2D keypoint files (OpenPose, AlphaPose/COCO, MMPose JSON; npz; CSV) and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from bonelift.errors import DataError
from bonelift.pipeline.keypoint_io import read_keypoints
from bonelift.skeletons import COCO17, H36M17, MEDIAPIPE33, OPENPOSE25, convert


def _coco_people(frames: int = 3, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.uniform(10, 600, (frames, 17, 2)), rng.uniform(0.1, 1.0, (frames, 17))


def _flat(kp: np.ndarray, conf: np.ndarray) -> list[float]:
    return np.concatenate([kp, conf[:, None]], axis=1).ravel().tolist()


def test_openpose_folder_picks_the_best_person(tmp_path: Path) -> None:
    kp, conf = _coco_people()
    for t in range(3):
        people = [{"pose_keypoints_2d": _flat(kp[t], conf[t])}, {"pose_keypoints_2d": _flat(kp[t] + 5, conf[t] * 0.1)}]
        if t == 1:
            people = []  # nobody in this frame
        (tmp_path / f"frame_{t:012d}_keypoints.json").write_text(json.dumps({"version": 1.3, "people": people}))
    track = read_keypoints(tmp_path, image_size=(640, 480), fps=25)
    assert track.layout == COCO17 and track.num_frames == 3 and (track.width, track.height, track.fps) == (640, 480, 25)
    np.testing.assert_allclose(track.keypoints[[0, 2]], kp[[0, 2]])
    assert np.isnan(track.keypoints[1]).all() and list(track.status) == [0, 2, 0]


def test_openpose_body25_with_undetected_joints(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    kp, conf = rng.uniform(10, 600, (2, 25, 2)), rng.uniform(0.1, 1.0, (2, 25))
    kp[1, 17], conf[1, 17] = 0.0, 0.0  # OpenPose writes an undetected joint (right ear) as 0, 0, 0
    for t in range(2):
        (tmp_path / f"f{t}_keypoints.json").write_text(
            json.dumps({"people": [{"pose_keypoints_2d": _flat(kp[t], conf[t])}]})
        )
    track = read_keypoints(tmp_path, image_size=(640, 480))
    assert track.layout == OPENPOSE25 and list(track.status) == [0, 2]
    assert np.isnan(track.keypoints[1, 17]).all() and np.isfinite(track.keypoints[1, :17]).all()
    h36m, _ = convert(track.keypoints[:1], OPENPOSE25, H36M17)
    np.testing.assert_allclose(h36m[0, H36M17.index("Hip")], (kp[0, 9] + kp[0, 12]) / 2)  # hip centre, not MidHip
    np.testing.assert_allclose(h36m[0, H36M17.index("LFoot")], kp[0, 14])  # ankle


def test_alphapose_results_are_ordered_by_image(tmp_path: Path) -> None:
    kp, conf = _coco_people(11)
    dets = [
        {"image_id": f"{t}.jpg", "category_id": 1, "keypoints": _flat(kp[t], conf[t]), "score": 2.0} for t in range(11)
    ]
    path = tmp_path / "alphapose-results.json"
    path.write_text(json.dumps(dets[::-1]))  # written out of order; '10.jpg' must come after '9.jpg'
    with pytest.warns(UserWarning, match="image size unknown"):
        track = read_keypoints(path)
    np.testing.assert_allclose(track.keypoints, kp)
    np.testing.assert_allclose(track.confidence, conf)
    assert track.width >= kp[..., 0].max() and track.height >= kp[..., 1].max()


def test_coco_annotations_carry_the_image_size(tmp_path: Path) -> None:
    kp, conf = _coco_people(2)
    doc = {
        "images": [{"id": 7, "width": 1280, "height": 720}, {"id": 8, "width": 1280, "height": 720}],
        "annotations": [{"image_id": 7 + t, "keypoints": _flat(kp[t], np.full(17, 2.0))} for t in range(2)],
    }
    path = tmp_path / "coco.json"
    path.write_text(json.dumps(doc))
    track = read_keypoints(path)
    assert (track.width, track.height) == (1280, 720)
    np.testing.assert_allclose(track.keypoints, kp)
    assert (track.confidence == 1.0).all()  # COCO visibility flag 2 is clipped to a confidence of 1


def test_mmpose_predictions(tmp_path: Path) -> None:
    kp, conf = _coco_people(2)
    frames = [
        {"frame_id": t, "instances": [{"keypoints": kp[t].tolist(), "keypoint_scores": conf[t].tolist()}]}
        for t in range(2)
    ]
    path = tmp_path / "mmpose.json"
    path.write_text(json.dumps({"meta_info": {}, "instance_info": frames}))
    track = read_keypoints(path, image_size=(640, 640))
    np.testing.assert_allclose(track.keypoints, kp)
    np.testing.assert_allclose(track.confidence, conf)


def test_npz_with_layout_size_and_fps(tmp_path: Path) -> None:
    kp = np.random.default_rng(0).uniform(0, 300, (4, 33, 3))
    path = tmp_path / "kp.npz"
    np.savez(path, keypoints=kp, width=320, height=240, fps=50.0, layout="mediapipe33")
    track = read_keypoints(path)
    assert track.layout == MEDIAPIPE33 and (track.width, track.height, track.fps) == (320, 240, 50.0)
    np.testing.assert_allclose(track.confidence, np.clip(kp[..., 2], 0, 1))


def test_csv_with_joint_names_in_any_order(tmp_path: Path) -> None:
    kp = np.random.default_rng(0).uniform(0, 300, (3, 17, 2))
    order = list(range(17))[::-1]
    header = ["frame"] + [f"{H36M17.joints[j]}_{a}" for j in order for a in ("x", "y", "conf")]
    rows = [",".join(header)]
    for t in range(3):
        cells = [str(t)] + [v for j in order for v in (f"{kp[t, j, 0]:.6f}", f"{kp[t, j, 1]:.6f}", "0.5")]
        if t == 2:
            cells[1] = ""  # an empty cell makes the frame missing
        rows.append(",".join(cells))
    path = tmp_path / "kp.csv"
    path.write_text("\n".join(rows) + "\n")
    track = read_keypoints(path, image_size=(400, 400))
    assert track.layout == H36M17
    np.testing.assert_allclose(track.keypoints[:2], kp[:2], atol=1e-6)
    assert list(track.status) == [0, 0, 2]


@pytest.mark.parametrize("joints", [21, 16])
def test_wrong_joint_count_is_a_data_error_naming_the_file(tmp_path: Path, joints: int) -> None:
    path = tmp_path / "hand.npz"
    np.savez(path, keypoints=np.ones((3, joints, 2)))
    with pytest.raises(DataError, match=f"hand.npz: has {joints} joints per frame"):
        read_keypoints(path)
    with pytest.raises(DataError, match=f"has {joints} joints per frame but layout coco17 has 17"):
        read_keypoints(path, layout="coco17")


@pytest.mark.parametrize(("name", "text", "problem"), [
    ("bad.json", "this is not json", "not a readable JSON file"),
    ("odd.json", json.dumps({"hello": 1}), "unrecognised JSON"),
    ("short.csv", "a,b\n1,2\n", "no '<joint>_x, <joint>_y' columns"),
    ("nobody.json", json.dumps({"people": []}), "no person in any frame"),
])
def test_malformed_files(tmp_path: Path, name: str, text: str, problem: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    with pytest.raises(DataError, match=problem) as info:
        read_keypoints(path, image_size=(10, 10))
    assert info.value.source == str(path)
