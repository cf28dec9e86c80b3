"""Joint layouts (names, kinematic tree, left/right pairs, hard joints) and conversions between them.

Every other module refers to joints through these `Layout` objects, so a joint order is written
down exactly once. Joint names are shared across layouts where the anatomical point is the same
("Hip" is the pelvis everywhere), which is what makes name-based conversion possible.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np

from bonelift.errors import DataError

MM = 1000.0  # millimetres per metre: poses are metres inside bonelift, data files and result tables millimetres

# Limb names used by the bone-length tables (method 1, Table 2): (name, parent joint, child joint).
LIMBS: tuple[tuple[str, str, str], ...] = (
    ("left upper arm", "LShoulder", "LElbow"),
    ("left lower arm", "LElbow", "LWrist"),
    ("right upper arm", "RShoulder", "RElbow"),
    ("right lower arm", "RElbow", "RWrist"),
    ("left upper leg", "LHip", "LKnee"),
    ("left lower leg", "LKnee", "LFoot"),
    ("right upper leg", "RHip", "RKnee"),
    ("right lower leg", "RKnee", "RFoot"),
)

HARD_JOINT_NAMES = ("LElbow", "LWrist", "RElbow", "RWrist", "LKnee", "LFoot", "RKnee", "RFoot")


@dataclass(frozen=True)
class Layout:
    """A skeleton: joint names in storage order, parent of each joint (-1 for the root)."""

    name: str
    joints: tuple[str, ...]
    parents: tuple[int, ...]

    def __post_init__(self) -> None:
        if len(self.joints) != len(self.parents):
            raise ValueError(f"layout {self.name}: {len(self.joints)} joints but {len(self.parents)} parents")

    @property
    def num_joints(self) -> int:
        return len(self.joints)

    def index(self, joint: str) -> int:
        try:
            return self.joints.index(joint)
        except ValueError:
            raise KeyError(f"layout {self.name} has no joint {joint!r}") from None

    def indices(self, joints: tuple[str, ...] | list[str]) -> list[int]:
        return [self.index(j) for j in joints]

    @cached_property
    def bones(self) -> tuple[tuple[int, int], ...]:
        """(parent, child) pairs in storage order of the child."""
        return tuple((p, c) for c, p in enumerate(self.parents) if p >= 0)

    @cached_property
    def bone_ends(self) -> tuple[np.ndarray, np.ndarray]:
        """(B,) parent and (B,) child joint indices of `bones` (index arrays: `np.take` with them is several times
        faster than indexing with lists)."""
        return np.array([p for p, _ in self.bones], np.intp), np.array([c for _, c in self.bones], np.intp)

    @cached_property
    def bone_index(self) -> dict[tuple[int, int], int]:
        """(parent, child) -> index into `bones`."""
        return {bone: b for b, bone in enumerate(self.bones)}

    @cached_property
    def child_bone(self) -> dict[int, int]:
        """Child joint -> index of the bone that ends at it (every joint but the root ends one bone)."""
        return {c: b for b, (_, c) in enumerate(self.bones)}

    @cached_property
    def root(self) -> int:
        return self.parents.index(-1)

    @cached_property
    def left(self) -> tuple[int, ...]:
        """Joints on the subject's left, each paired with the entry of `right` at the same position."""
        return tuple(
            i for i, n in enumerate(self.joints) if _mirror(n) != n and n[0] == "L" and _mirror(n) in self.joints
        )

    @cached_property
    def right(self) -> tuple[int, ...]:
        return tuple(self.index(_mirror(self.joints[i])) for i in self.left)

    @cached_property
    def flip_permutation(self) -> np.ndarray:
        """Index array that swaps left and right joints (for horizontal-flip augmentation)."""
        perm = np.arange(self.num_joints)
        perm[list(self.left)] = self.right
        perm[list(self.right)] = self.left
        return perm

    @cached_property
    def mirrored_bones(self) -> tuple[tuple[int, int], ...]:
        """(left bone, right bone) index pairs into `bones`: bones whose joints are each other's mirror images."""
        index, flip = self.bone_index, self.flip_permutation
        return tuple((b, index[(int(flip[p]), int(flip[c]))]) for (p, c), b in index.items()
                     if c in self.left and (int(flip[p]), int(flip[c])) in index)

    @cached_property
    def hard_joints(self) -> tuple[int, ...]:
        """Elbows, wrists, knees and feet: the joints the structure-aware papers refine."""
        return tuple(self.index(n) for n in HARD_JOINT_NAMES if n in self.joints)

    @cached_property
    def limbs(self) -> tuple[tuple[str, int, int], ...]:
        """The eight limb bones of `LIMBS` present in this layout, as (name, parent, child)."""
        return tuple((n, self.index(a), self.index(b)) for n, a, b in LIMBS if a in self.joints and b in self.joints)

    def subset(self, joints: tuple[str, ...] | list[str], name: str | None = None) -> Layout:
        """A layout of some joints; each keeps its nearest kept ancestor as parent."""
        keep = self.indices(list(joints))
        parents = []
        for j in keep:
            p = self.parents[j]
            while p >= 0 and p not in keep:
                p = self.parents[p]
            parents.append(keep.index(p) if p >= 0 else -1)
        return Layout(name or f"{self.name}-subset", tuple(self.joints[j] for j in keep), tuple(parents))


def _mirror(name: str) -> str:
    if name.startswith("L") and len(name) > 1 and name[1].isupper():
        return "R" + name[1:]
    if name.startswith("R") and len(name) > 1 and name[1].isupper():
        return "L" + name[1:]
    return name


H36M17 = Layout(
    "h36m17",
    (
        "Hip", "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "Spine", "Thorax", "Neck/Nose", "Head",
        "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
    ),
    (-1, 0, 1, 2, 0, 4, 5, 0, 7, 8, 9, 8, 11, 12, 8, 14, 15),
)

# Indices of the 17 joints inside the 32-joint Human3.6M mocap skeleton (VideoPose3D / archive files).
H36M32_TO_17 = (0, 1, 2, 3, 6, 7, 8, 12, 13, 14, 15, 17, 18, 19, 25, 26, 27)

# The 16 Human3.6M joints that Stacked Hourglass (MPII) detections cover, in Human3.6M order.
H36M16 = H36M17.subset([j for j in H36M17.joints if j != "Neck/Nose"], "h36m16")

MPII16 = Layout(
    "mpii16",
    (
        "RFoot", "RKnee", "RHip", "LHip", "LKnee", "LFoot", "Hip", "Spine", "Thorax", "Head",
        "RWrist", "RElbow", "RShoulder", "LShoulder", "LElbow", "LWrist",
    ),
    (1, 2, 6, 6, 3, 4, -1, 6, 7, 8, 11, 12, 8, 8, 13, 14),
)

HUMANEVA15 = Layout(
    "humaneva15",
    (
        "Hip", "Thorax", "LShoulder", "LElbow", "LWrist", "RShoulder", "RElbow", "RWrist",
        "LHip", "LKnee", "LFoot", "RHip", "RKnee", "RFoot", "Head",
    ),
    (-1, 0, 1, 2, 3, 1, 5, 6, 0, 8, 9, 0, 11, 12, 1),
)

COCO17 = Layout(
    "coco17",
    (
        "Nose", "LEye", "REye", "LEar", "REar", "LShoulder", "RShoulder", "LElbow", "RElbow",
        "LWrist", "RWrist", "LHip", "RHip", "LKnee", "RKnee", "LFoot", "RFoot",
    ),
    (-1, 0, 0, 1, 2, 0, 0, 5, 6, 7, 8, 5, 6, 11, 12, 13, 14),
)

MEDIAPIPE33 = Layout(
    "mediapipe33",
    (
        "Nose", "LEyeInner", "LEye", "LEyeOuter", "REyeInner", "REye", "REyeOuter", "LEar", "REar",
        "LMouth", "RMouth", "LShoulder", "RShoulder", "LElbow", "RElbow", "LWrist", "RWrist",
        "LPinky", "RPinky", "LIndex", "RIndex", "LThumb", "RThumb", "LHip", "RHip", "LKnee", "RKnee",
        "LFoot", "RFoot", "LHeel", "RHeel", "LFootIndex", "RFootIndex",
    ),
    (
        -1, 0, 1, 2, 0, 4, 5, 3, 6, 0, 0, 0, 0, 11, 12, 13, 14, 15, 16, 15, 16, 15, 16,
        11, 12, 23, 24, 25, 26, 27, 28, 27, 28,
    ),
)

# OpenPose's BODY_25 and COCO-18 outputs (its JSON `pose_keypoints_2d` order); ankles are "Foot" as elsewhere.
OPENPOSE25 = Layout(
    "openpose_body25",
    (
        "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist", "MidHip",
        "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "REye", "LEye", "REar", "LEar",
        "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
    ),
    (1, 8, 1, 2, 3, 1, 5, 6, -1, 8, 9, 10, 8, 12, 13, 0, 0, 15, 16, 14, 14, 14, 11, 11, 11),
)

OPENPOSE18 = Layout(
    "openpose_coco18",
    (
        "Nose", "Neck", "RShoulder", "RElbow", "RWrist", "LShoulder", "LElbow", "LWrist",
        "RHip", "RKnee", "RFoot", "LHip", "LKnee", "LFoot", "REye", "LEye", "REar", "LEar",
    ),
    (1, -1, 1, 2, 3, 1, 5, 6, 1, 8, 9, 1, 11, 12, 0, 0, 14, 15),
)

LAYOUTS: dict[str, Layout] = {
    lay.name: lay for lay in (H36M17, H36M16, MPII16, HUMANEVA15, COCO17, MEDIAPIPE33, OPENPOSE25, OPENPOSE18)
}


def get_layout(name: str, source: str | None = None) -> Layout:
    """Look a layout up by name; an unknown name is a DataError naming the known ones."""
    try:
        return LAYOUTS[name.lower()]
    except KeyError:
        raise DataError(source, f"unknown joint layout {name!r} (known: {', '.join(LAYOUTS)})") from None


# Joints of H36M17 that other layouts do not have, written as weighted sums of their joints.
# Pelvis, thorax and spine follow the Human3.6M definitions (hip-centre, shoulder-centre and the
# point between them); neck/nose is taken at the nose; the head (top of head in Human3.6M) is
# extrapolated from the ear centre away from the thorax.
_DERIVED: dict[str, dict[str, dict[str, float]]] = {
    "coco17": {
        "Hip": {"LHip": 0.5, "RHip": 0.5},
        "Thorax": {"LShoulder": 0.5, "RShoulder": 0.5},
        "Spine": {"LHip": 0.25, "RHip": 0.25, "LShoulder": 0.25, "RShoulder": 0.25},
        "Neck/Nose": {"Nose": 1.0},
        "Head": {"LEar": 0.75, "REar": 0.75, "LShoulder": -0.25, "RShoulder": -0.25},
    },
}
# Every detector layout derives the Human3.6M-only joints the same way (OpenPose's own Neck and
# MidHip are not used, so the pelvis means the same thing whichever detector produced the 2D).
_DERIVED["mediapipe33"] = _DERIVED["openpose_body25"] = _DERIVED["openpose_coco18"] = _DERIVED["coco17"]
_DERIVED["mpii16"] = {}
_DERIVED["humaneva15"] = {
    "Spine": {"Hip": 0.5, "Thorax": 0.5},
    # HumanEva has no nose: Human3.6M's neck/nose joint sits 45 % of the way from thorax to head top
    # in its mean pose (used to feed HumanEva 2D to Human3.6M lifters, issue 17's cross-dataset test).
    "Neck/Nose": {"Thorax": 0.55, "Head": 0.45},
}


def rederive(points: np.ndarray, confidence: np.ndarray, layout: Layout, detector: str = "coco17"
             ) -> tuple[np.ndarray, np.ndarray]:
    """(T, J, 2|3) points and (T, J) confidences of `layout` with the joints that a `detector` layout's conversion
    derives (`_DERIVED`: pelvis, thorax, spine from hips and shoulders) recomputed from their sources in `layout`,
    each confidence the minimum of its sources': 2D made to look like a detector's reads as the pipeline reads it.
    Joints whose sources `layout` lacks (a detector's nose or ears) are left as they are."""
    out, conf = np.array(points, copy=True), np.array(confidence, copy=True)
    for name, weights in _DERIVED[detector].items():
        if name in layout.joints and all(s in layout.joints for s in weights):
            sources = layout.indices(list(weights))
            out[:, layout.index(name)] = np.tensordot(np.array(list(weights.values())), points[:, sources], ([0], [1]))
            conf[:, layout.index(name)] = confidence[:, sources].min(1)
    return out, conf


def conversion_matrix(src: Layout, dst: Layout) -> np.ndarray:
    """Matrix W (dst joints × src joints) with dst = W @ src, from shared names and derived joints.

    Raises DataError when a destination joint cannot be formed from the source layout.
    """
    derived = _DERIVED.get(src.name, {})
    w = np.zeros((dst.num_joints, src.num_joints), dtype=np.float64)
    missing = []
    for i, name in enumerate(dst.joints):
        if name in src.joints:
            w[i, src.index(name)] = 1.0
        elif name in derived:
            for s, weight in derived[name].items():
                w[i, src.index(s)] = weight
        else:
            missing.append(name)
    if missing:
        raise DataError(None, f"cannot convert {src.name} to {dst.name}: no source for joints {missing}")
    return w


def convert(
    points: np.ndarray, src: Layout, dst: Layout, confidence: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Convert (..., J_src, C) points to `dst`; a derived joint's confidence is its sources' minimum."""
    if points.shape[-2] != src.num_joints:
        raise DataError(None, f"points have {points.shape[-2]} joints but layout {src.name} has {src.num_joints}")
    w = conversion_matrix(src, dst)
    out = np.einsum("ds,...sc->...dc", w, points).astype(points.dtype, copy=False)
    if confidence is None:
        return out, None
    used = w != 0
    conf = np.stack([confidence[..., used[i]].min(axis=-1) for i in range(dst.num_joints)], axis=-1)
    return out, conf
