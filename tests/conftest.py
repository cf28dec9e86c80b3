"""Synthetic Human3.6M-like fixtures: plausible skeletons, four cameras, files in every supported format."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from bonelift.cameras import H36M_CAMERA_IDS
from bonelift.skeletons import H36M17, H36M32_TO_17

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"

# A standing pose (metres, z up, facing -y, knees and elbows slightly bent) in H36M17 order.
REST_POSE = np.array(
    [
        [0.0, 0.0, 0.95], [-0.13, 0.0, 0.95], [-0.13, -0.03, 0.5], [-0.13, 0.0, 0.07],
        [0.13, 0.0, 0.95], [0.13, -0.03, 0.5], [0.13, 0.0, 0.07], [0.0, 0.0, 1.18],
        [0.0, 0.0, 1.43], [0.0, -0.05, 1.53], [0.0, 0.0, 1.65], [0.15, 0.0, 1.40],
        [0.18, -0.08, 1.13], [0.20, -0.25, 1.00], [-0.15, 0.0, 1.40], [-0.18, -0.08, 1.13], [-0.20, -0.25, 1.00],
    ]
)


def random_poses(n: int, rng: np.random.Generator, offset: tuple[float, float] = (0.0, 0.0)) -> np.ndarray:
    """(n, 17, 3) world poses: the rest pose, jittered, rotated about z and walked around the floor."""
    poses = REST_POSE[None] + rng.normal(0, 0.02, (n, 17, 3))
    yaw = rng.uniform(-np.pi, np.pi) + np.linspace(0, 1.0, n)
    c, s = np.cos(yaw), np.sin(yaw)
    rot = np.stack(
        [np.stack([c, -s, 0 * c], -1), np.stack([s, c, 0 * c], -1), np.stack([0 * c, 0 * c, 1 + 0 * c], -1)], -2
    )
    poses = poses @ np.swapaxes(rot, -1, -2)
    poses[..., 0] += offset[0] + np.linspace(0, 0.3, n)[:, None]
    poses[..., 1] += offset[1]
    return poses.astype(np.float32)


def _look_at(centre: np.ndarray, target: np.ndarray) -> np.ndarray:
    """World -> camera rotation for a camera at `centre` looking at `target` (y down, z forward)."""
    z = target - centre
    z /= np.linalg.norm(z)
    x = np.cross(z, [0, 0, 1.0])
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    return np.stack([x, y, z])


def write_cameras(path: Path, subjects: list[str]) -> None:
    with h5py.File(path, "w") as fh:
        for s in subjects:
            for i, cam_id in enumerate(H36M_CAMERA_IDS):
                ang = i * np.pi / 2 + 0.3
                centre = np.array([4.5 * np.cos(ang), 4.5 * np.sin(ang), 1.6])
                R = _look_at(centre, np.array([0.0, 0.0, 1.0]))
                g = fh.create_group(f"subject{s[1:]}/camera{i + 1}")
                g["R"] = R.T  # stored transposed, as in the real file
                g["T"] = (centre * 1000).reshape(3, 1)  # millimetres
                g["f"] = np.array([[1145.0], [1144.0]])
                g["c"] = np.array([[512.0], [515.0]])
                g["k"] = np.array([[-0.2], [0.24], [-0.003]])
                g["p"] = np.array([[-0.0014], [-0.001]])
                g["Name"] = np.array([[ord(ch)] for ch in cam_id], dtype=np.float64)


TAKES = ("Directions 1", "Walking", "Photo 1")


def make_h36m(root: Path, subjects: list[str], fmt: str = "npz17", frames: int = 40, seed: int = 0) -> dict:
    """Write a tiny Human3.6M in format `fmt` ("npz17", "videopose", "archive"); return the world poses."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    write_cameras(root / "cameras.h5", subjects)
    world = {s: {t: random_poses(frames, rng) for t in TAKES} for s in subjects}
    # Detections: projected GT plus noise, in MPII order, like the Stacked Hourglass file.
    from bonelift.cameras import load_h36m_cameras
    from bonelift.skeletons import MPII16

    cams = load_h36m_cameras(root / "cameras.h5")
    mpii_from_h36m = [H36M17.index(n) for n in MPII16.joints]
    det = {
        s: {
            t: {c: (cams[s][c].project(cams[s][c].world_to_camera(p.astype(np.float64)))[:, mpii_from_h36m]
                    + rng.normal(0, 3, (frames, 16, 2))).astype(np.float32)
                for c in H36M_CAMERA_IDS}
            for t, p in takes.items()
        }
        for s, takes in world.items()
    }
    if fmt == "npz17":
        np.savez(root / "data_3d_h36m_17j.npz", positions_3d=np.array(world, dtype=object))
        sh = {s: {t.replace(" ", "_"): v for t, v in takes.items()} for s, takes in det.items()}
        np.savez(root / "data_2d_h36m_sh_pt_mpii_16j.npz", positions_2d=np.array(sh, dtype=object))
    elif fmt == "videopose":
        full = {}
        for s, takes in world.items():
            full[s] = {}
            for t, p in takes.items():
                p32 = np.zeros((frames, 32, 3), np.float32)
                p32[:, list(H36M32_TO_17)] = p
                full[s][t] = p32
        np.savez(root / "data_3d_h36m.npz", positions_3d=np.array(full, dtype=object))
        vp = {s: {t: [takes[t][c] for c in H36M_CAMERA_IDS] for t in takes} for s, takes in det.items()}
        meta = {"num_joints": 16, "keypoints_symmetry": [[3, 4, 5, 13, 14, 15], [2, 1, 0, 12, 11, 10]]}
        np.savez(root / "data_2d_h36m_sh_pt_mpii.npz", positions_2d=np.array(vp, dtype=object), metadata=meta)
    elif fmt == "archive":
        for s, takes in world.items():
            for t, p in takes.items():
                p32 = np.zeros((frames, 32, 3))
                p32[:, list(H36M32_TO_17)] = p * 1000.0
                d = root / s / "MyPoses" / "3D_positions"
                d.mkdir(parents=True, exist_ok=True)
                with h5py.File(d / f"{t}.h5", "w") as fh:
                    fh["3D_positions"] = p32.reshape(frames, 96).T
                d2 = root / s / "StackedHourglass"
                d2.mkdir(parents=True, exist_ok=True)
                for c in H36M_CAMERA_IDS:
                    with h5py.File(d2 / f"{t.replace(' ', '_')}.{c}.h5", "w") as fh:
                        fh["poses"] = det[s][t][c]
    else:
        raise ValueError(fmt)
    return {"world": world, "detections": det}


@pytest.fixture
def h36m_root(tmp_path: Path) -> Path:
    root = tmp_path / "h36m"
    make_h36m(root, ["S1", "S9"])
    return root


def real_data_or_skip(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"benchmark data not present at {path}")
    return path
