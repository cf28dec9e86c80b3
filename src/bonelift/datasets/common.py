"""The sequence record every loader produces, safe npz reading, and frame flattening for training."""

from __future__ import annotations

import codecs
import collections
import os
import pickle
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import numpy as np

from bonelift.cameras import Camera
from bonelift.errors import DataError, require_file
from bonelift.io import read_npz_arrays
from bonelift.skeletons import Layout


@dataclass
class PoseSequence:
    """One subject, one take, one camera: 2D keypoints in pixels and 3D joints in the camera frame."""

    subject: str
    action: str  # canonical action name, e.g. "Walking"
    take: str  # name as stored in the 3D file, e.g. "Walking 1"
    camera: Camera
    keypoints: np.ndarray  # (T, J, 2) pixels, joints of `layout`
    layout: Layout
    poses_3d: np.ndarray  # (T, J3, 3) metres, camera frame, absolute (not root-relative)
    layout_3d: Layout
    confidence: np.ndarray | None = None  # (T, J) in [0, 1] when the detector gives it

    def __len__(self) -> int:
        return len(self.keypoints)

    @property
    def screen(self) -> np.ndarray:
        """Keypoints in screen coordinates ([-1, 1] along x), the network input space."""
        return self.camera.normalize(self.keypoints).astype(np.float32)

    @property
    def root_relative(self) -> np.ndarray:
        """3D joints relative to the root joint (pelvis), the regression target."""
        return self.poses_3d - self.poses_3d[:, self.layout_3d.root : self.layout_3d.root + 1]


def default_data_root() -> Path:
    """`../shared/data` next to the checkout or the working directory, where the benchmark files live."""
    env = os.environ.get("BONELIFT_DATA")
    if env:
        return Path(env)
    here = Path(__file__).resolve()
    for base in [Path.cwd(), *Path.cwd().parents, *here.parents]:
        cand = base / "shared" / "data"
        if cand.is_dir():
            return cand
    return Path.cwd().parent / "shared" / "data"


def _safe_globals() -> dict[tuple[str, str], object]:
    """The only callables a VideoPose3D-style npz may name: what the real files need (numpy array, scalar and dtype
    rebuilding; bytes as protocol 2 stores them) and plain containers that take no size argument.

    Taken from live objects, so numpy 1.x (`numpy.core`) and 2.x (`numpy._core`) both work without
    importing the deprecated module path; both spellings are accepted because files written by either
    version name their own. Nothing that allocates from a number (`bytearray(10**12)`) is allowed.
    """
    reconstruct = np.zeros(1).__reduce__()[0]
    scalar = np.float64(0).__reduce__()[0]
    allowed: dict[tuple[str, str], object] = {("numpy", "ndarray"): np.ndarray, ("numpy", "dtype"): np.dtype}
    for core in ("numpy.core.multiarray", "numpy._core.multiarray"):
        allowed[(core, "_reconstruct")] = reconstruct
        allowed[(core, "scalar")] = scalar
    for mod in ("builtins", "__builtin__"):  # protocol-2 pickles from Python 2 say __builtin__
        allowed[(mod, "set")], allowed[(mod, "frozenset")] = set, frozenset
    allowed[("_codecs", "encode")] = codecs.encode  # how protocol 2 stores bytes
    allowed[("collections", "OrderedDict")] = collections.OrderedDict
    return allowed


MAX_PICKLE_DEPTH = 16  # nesting of containers in a data file (the real ones: 3)
MAX_PICKLE_ITEMS = 1_000_000  # containers and leaves visited, shared ones once per reference (the real ones: 2,300)


class _DataUnpickler(pickle.Unpickler):
    """Unpickler that builds arrays and containers only: any other global is refused before it is imported."""

    def __init__(self, file: IO[bytes], source: Path) -> None:
        super().__init__(file, encoding="ASCII")  # what np.load uses by default, so results stay identical
        self.source = source
        self.allowed = _safe_globals()

    def find_class(self, module: str, name: str) -> object:
        try:
            return self.allowed[(module, name)]
        except KeyError:
            raise DataError(self.source, f"refusing to unpickle {module}.{name} (not an array or container type): "
                                         "this file holds code, not data") from None


def _check_structure(value: object, source: Path, member: str) -> None:
    """Refuse nesting deeper than `MAX_PICKLE_DEPTH` or more than `MAX_PICKLE_ITEMS` items, counting a shared
    container at every reference (a few hundred bytes of shared lists can stand for 2**40 leaves), iteratively."""
    stack, items = [(value, 0)], 0
    while stack:
        obj, depth = stack.pop()
        items += 1
        if depth > MAX_PICKLE_DEPTH or items > MAX_PICKLE_ITEMS:
            what = f"nested deeper than {MAX_PICKLE_DEPTH}" if depth > MAX_PICKLE_DEPTH else \
                f"more than {MAX_PICKLE_ITEMS:,} items"
            raise DataError(source, f"{member} holds containers {what}: not a pose data file")
        if isinstance(obj, dict):
            stack.extend((v, depth + 1) for pair in obj.items() for v in pair)
        elif isinstance(obj, (list, tuple, set, frozenset)) or (isinstance(obj, np.ndarray) and obj.dtype.hasobject):
            stack.extend((v, depth + 1) for v in (obj.flat if isinstance(obj, np.ndarray) else obj))


def _unpickle(source: Path) -> Callable[[IO[bytes], str], np.ndarray]:
    def load(fh: IO[bytes], member: str) -> np.ndarray:
        value = _DataUnpickler(fh, source).load()
        _check_structure(value, source, member)
        return value
    return load


def load_pickled_npz(path: str | Path, key: str) -> dict:
    """Read a dict stored as a pickled object array under `key` in an npz file (VideoPose3D style).

    The pickle is read with an unpickler that only rebuilds numpy arrays, numpy scalars and plain
    containers, so a crafted file cannot run code; it is refused with a DataError instead. The npz is read
    within its `io.ReadBudget`, and the unpickled structure within `MAX_PICKLE_DEPTH` and `MAX_PICKLE_ITEMS`.
    """
    path = require_file(path, "data file")
    try:
        arrays = read_npz_arrays(path, _unpickle(path), keys=(key, "metadata"))
        if key not in arrays:
            with zipfile.ZipFile(path) as zf:
                found = sorted(name[: -len(".npy")] for name in zf.namelist() if name.endswith(".npy"))
            raise DataError(path, f"no key {key!r} (found {found})")
        obj = arrays[key]
        value = obj.item() if obj.dtype == object and obj.shape == () else obj
        metadata = None
        if "metadata" in arrays:
            meta = arrays["metadata"]
            metadata = meta.item() if meta.shape == () else meta
    except DataError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, pickle.UnpicklingError, KeyError, TypeError,
            AttributeError, IndexError) as exc:
        raise DataError(path, f"cannot read npz ({type(exc).__name__}: {exc}); file truncated or corrupt?") from exc
    if not isinstance(value, dict):
        raise DataError(path, f"{key!r} is not a dict of sequences")
    # every layout nests {subject: {take: ...}}; a dict of lists would fail later as an AttributeError
    flat = next((k for k, v in value.items() if not isinstance(v, dict)), None)
    if flat is not None:
        raise DataError(path, f"{key!r}[{flat!r}] is a {type(value[flat]).__name__}, not a dict of takes "
                              "({subject: {take: array}})")
    return {"value": value, "metadata": metadata}


def flatten_frames(
    sequences: Sequence[PoseSequence], stride: int = 1, image_coords: bool = False, gt2d: bool = False
) -> dict[str, np.ndarray]:
    """Stack every `stride`-th frame of all sequences into arrays for single-frame models.

    Returns `inputs` (N, J, 2) screen coordinates, `confidence` (N, J) (ones when absent),
    `targets` (N, J3, 3) root-relative metres, and per-frame `subject`, `action`, `camera`, `sequence`
    (index into `sequences`) labels used for per-action evaluation. With `image_coords` also
    `image_coords` (N, J, 2): the keypoints' undistorted normalised image coordinates through their
    camera's intrinsics (`Camera.image_coords`), which a perspective-correct weak pose needs. With `gt2d`
    also `gt2d` (N, J3, 2): the 3D joints projected through their camera (with distortion), in screen
    coordinates like `inputs`: the ground-truth 2D that method 3's 2D classification learns.
    """
    if not sequences:
        raise DataError(None, "no sequences to flatten")
    keys = ("inputs", "confidence", "targets", "subject", "action", "camera", "sequence")
    extra = (("image_coords",) if image_coords else ()) + (("gt2d",) if gt2d else ())
    cols: dict[str, list] = {k: [] for k in keys + extra}
    for i, seq in enumerate(sequences):
        sl = slice(None, None, stride)
        n = len(range(len(seq))[sl])
        cols["inputs"].append(seq.screen[sl])
        if image_coords:
            cols["image_coords"].append(seq.camera.image_coords(seq.keypoints[sl]).astype(np.float32))
        if gt2d:
            projected = seq.camera.project(np.asarray(seq.poses_3d[sl], np.float64))
            cols["gt2d"].append(seq.camera.normalize(projected).astype(np.float32))
        conf = seq.confidence if seq.confidence is not None else np.ones(seq.keypoints.shape[:2], np.float32)
        cols["confidence"].append(conf[sl].astype(np.float32))
        cols["targets"].append(seq.root_relative[sl].astype(np.float32))
        cols["subject"].append(np.full(n, seq.subject))
        cols["action"].append(np.full(n, seq.action))
        cols["camera"].append(np.full(n, seq.camera.id))
        cols["sequence"].append(np.full(n, i))
    return {k: np.concatenate(v) for k, v in cols.items()}
