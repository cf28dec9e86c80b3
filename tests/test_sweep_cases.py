"""Issue 25's sweep, kept: every concrete case the issue names (sections 1-8), one row each, run as a new user
would (the command line in-process, or the Python API). A row is an id, the input and what must happen: a
one-line error matching `expect` (exit status 2 and `bonelift: error: ...` on the command line; an OptionError or
DataError in Python), or, with `expect` None, the correct result (the row's runner checks it). Every row also
asserts that no traceback escaped and that no temporary file, lock or refused output was left behind.

Deeper checks of the same promises live beside the code they hold (docs/reliability.md names them); the hostile
files are built by the helpers of `tests/test_reliability.py`, the live frames by `tests/pipeline/test_pipeline_live`.
"""

from __future__ import annotations

import contextlib
import io
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

import bonelift
from bonelift import checkpoints
from bonelift.cli import main
from bonelift.config import LiftConfig, TrainConfig, VideoTrainConfig
from bonelift.errors import BoneliftError, OptionError
from bonelift.models import ModelConfig, build_model
from tests.conftest import TAKES, make_h36m, random_poses, real_data_or_skip
from tests.pipeline import test_pipeline_live as live_tests
from tests.pipeline.pipeline_fixtures import save_tiny_checkpoint, save_tiny_video_checkpoint, walking_poses
from tests.test_reliability import _Alloc, _header_only_npz, _zeros_bomb

REPO = Path(__file__).resolve().parents[1]
W, H = live_tests.W, live_tests.H


@dataclass
class Env:
    """What a row may use: its own empty folder, and inputs shared by the module (never written to)."""

    tmp: Path
    h36m: Path  # a synthetic Human3.6M folder (S1, S9, S11)
    ckpt: Path  # a tiny single-frame lifter trained on GT (17 joints)
    causal: Path  # a tiny causal video lifter (LiveLifter)

    def kp(self, name: str = "walk.npz", **fields) -> Path:
        """A good keypoint npz (a walking person in a 640x480 image), with `fields` replaced (None: dropped)."""
        poses = walking_poses(12) + np.array([0.0, 0.0, 5.0])
        data = {"keypoints": 1000.0 * poses[..., :2] / poses[..., 2:] + np.array([320.0, 240.0]), "width": 640,
                "height": 480, "fps": 25.0, "layout": "h36m17", **fields}
        np.savez(self.tmp / name, **{k: v for k, v in data.items() if v is not None})
        return self.tmp / name


Runner = Callable[[Env], "str | None"]  # the one-line error, or None when the case succeeded


@dataclass(frozen=True)
class Case:
    id: str
    run: Runner
    expect: str | None  # regex the one-line error must match; None: the case must succeed
    absent: tuple[str, ...] = ()  # paths under the row's folder that must not exist afterwards
    slow: bool = False


def cli(*argv: str, setup: Callable[[Env], object] | None = None) -> Runner:
    """Run `bonelift ARGV` in-process ({tmp}, {h36m}, {ckpt}, {causal} filled in); stdout is dropped."""

    def run(env: Env) -> str | None:
        if setup is not None:
            setup(env)
        args = [a.format(tmp=env.tmp, h36m=env.h36m, ckpt=env.ckpt, causal=env.causal) for a in argv]
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            try:
                rc = main(args)
            except SystemExit as exc:  # argparse's own errors
                rc = exc.code
        text = err.getvalue()
        assert "Traceback" not in text, text
        if rc == 0:
            return None
        lines = [line for line in text.strip().splitlines() if not line.startswith("bonelift: warning: ")]
        assert rc == 2 and len(lines) == 1 and lines[0].startswith("bonelift: error: "), (rc, text)
        return lines[0][len("bonelift: error: "):]

    return run


def api(call: Callable[[Env], object]) -> Runner:
    """Call the Python API: a BoneliftError is the case's one-line error; any other exception fails the row."""

    def run(env: Env) -> str | None:
        try:
            call(env)
        except BoneliftError as exc:
            return str(exc)
        return None

    return run


# --- 1. LiveLifter: a bad frame is one error and poisons nothing ---------------------------------------------------

def live_frame(transform: Callable[[np.ndarray], object] | None, width: object = W, height: object = H) -> Runner:
    """Push one frame (`transform` of a good one; None: a missing frame) first, then good frames: whatever the bad
    frame did, they must be lifted exactly as by a fresh lifter (None frames: without the running skeleton)."""

    def call(env: Env) -> None:
        kp, conf = live_tests._mediapipe_clip(8, seed=7)
        keep = {} if transform is not None else {"skeleton": False, "fusion": False}
        live, fresh = bonelift.LiveLifter(env.causal, **keep), bonelift.LiveLifter(env.causal, **keep)
        if transform is None:
            for t in range(3):
                live.push(kp[t], conf[t], W, H)
        try:
            assert live.push(None if transform is None else transform(kp[0]), conf[0], width, height) is None
        finally:
            for k, c in zip(kp[3:], conf[3:]):
                np.testing.assert_array_equal(live.push(k, c, W, H), fresh.push(k, c, W, H))

    return api(call)


def push(keypoints: Callable[[np.ndarray], object], confidence: object) -> Runner:
    def call(env: Env) -> None:
        kp, _ = live_tests._mediapipe_clip(1)
        bonelift.LiveLifter(env.causal).push(keypoints(kp[0]), confidence, W, H)

    return api(call)


SIZE = "width and height must be two whole numbers of pixels from 1 to 100000"
LIVE = [
    Case("1-live-width-nan", live_frame(lambda k: k, float("nan")), SIZE + r", got \(nan, 480\)"),
    Case("1-live-width-1e-300", live_frame(lambda k: k, 1e-300), SIZE),
    Case(
        "1-live-coordinates-x1e200",
        live_frame(lambda k: k * 1e200),
        r"keypoint coordinates reach [\d.]+e\+202, not pixel positions",
    ),
    Case("1-live-width-0", live_frame(lambda k: k, 0), SIZE + r", got \(0, 480\)"),
    Case("1-live-width-string-320", live_frame(lambda k: k, "320"), SIZE + r", got \('320', 480\)"),
    Case("1-live-height-negative", live_frame(lambda k: k, W, -480), SIZE),
    Case("1-live-size-1x1", live_frame(lambda k: k, 1, 1), r"keypoints lie \d+ image sizes outside the 1x1 image"),
    Case("1-live-none-frame-starts-a-new-run", live_frame(None), None),
    Case("6-live-push-wrong-shaped-confidence", push(lambda k: k, np.ones(5)), r"confidence must be 33 numbers"),
    Case("6-live-push-string-keypoints", push(lambda k: k.astype(str), None), r"keypoints must be numbers"),
    Case("6-live-focal-string", api(lambda env: bonelift.LiveLifter(env.causal, focal="800")), r"focal"),
]
if not torch.cuda.is_available():
    LIVE.append(Case("6-live-device-cuda-without-cuda", api(lambda env: bonelift.LiveLifter(env.causal, device="cuda")),
                     r"device .*no CUDA GPU"))


# --- 2. memory: tiny hostile files are refused from their headers ---------------------------------------------------

def _deep_json(env: Env) -> None:
    (env.tmp / "deep.json").write_text("[" * 200_000 + "]" * 200_000)


def _big_json(env: Env) -> None:
    with open(env.tmp / "big.json", "w") as fh:
        fh.write("[")
        fh.truncate(40 * 2**20)  # sparse: 40 MB that take no disk and are never read


def _pickled_dataset(build: Callable[[dict], object]) -> Callable[[Env], None]:
    """A copy of the synthetic Human3.6M folder whose 3D file pickles `build({subject: {take: poses}})`, and a copy
    of the checkpoint to evaluate on it (`evaluate` writes its report beside the checkpoint)."""

    def setup(env: Env) -> None:
        shutil.copytree(env.h36m, env.tmp / "h36m")
        shutil.copy(env.ckpt, env.tmp / "tiny.pt")
        rng = np.random.default_rng(0)
        takes = {s: {t: random_poses(40, rng) for t in TAKES} for s in ("S1", "S9", "S11")}
        np.savez(env.tmp / "h36m" / "data_3d_h36m_17j.npz", positions_3d=np.array(build(takes), dtype=object))

    return setup


def _shared_lists() -> list:
    x: list = [np.zeros((1, 17, 3))]
    for _ in range(40):
        x = [x, x]  # under 1 kB pickled, 2**40 leaves
    return x


LIFT = ("lift", "--model", "{ckpt}", "--no-pictures", "--quiet", "-o", "{tmp}/out")
EVAL = ("evaluate", "{tmp}/tiny.pt", "--device", "cpu", "--data", "{tmp}/h36m")
BOMB = r"declares [\d,]+ MB, more than a [\d,]+-byte file may inflate to .*: a zip bomb or a corrupt file"
MEMORY = [
    Case(
        "2-keypoint-npz-of-compressed-zeros",
        cli(
            *LIFT[:-2],
            "{tmp}/bomb.npz",
            "-o",
            "{tmp}/out",
            setup=lambda env: _zeros_bomb(env.tmp / "bomb.npz", (200_000, 33, 2)),
        ),
        r"bomb\.npz: keypoints \(200000, 33, 2\) float64 " + BOMB,
        ("out",),
    ),
    Case(
        "2-npz-declaring-1e7x1e6x2-lift",
        cli(
            *LIFT,
            "{tmp}/huge.npz",
            setup=lambda env: _header_only_npz(env.tmp / "huge.npz", {"keypoints": (10**7, 10**6, 2)}),
        ),
        r"huge\.npz: keypoints .*declares 152,587,891 MB",
        ("out",),
    ),
    Case(
        "2-npz-declaring-1e7x1e6x2-validity",
        cli(
            "validity",
            "{tmp}/huge.npz",
            setup=lambda env: _header_only_npz(env.tmp / "huge.npz", {"poses": (10**7, 10**6, 2)}),
        ),
        r"huge\.npz: poses .*declares 152,587,891 MB",
    ),
    Case(
        "2-bytearray-in-a-dataset-pickle",
        cli(*EVAL, setup=_pickled_dataset(lambda d: {**d, "S1": {"Walking": _Alloc(10**13)}})),
        r"data_3d_h36m_17j\.npz: refusing to unpickle builtins\.bytearray",
    ),
    Case(
        "2-shared-nested-lists-pickle",
        cli(*EVAL, setup=_pickled_dataset(lambda d: {**d, "S1": {"Walking": _shared_lists()}})),
        r"data_3d_h36m_17j\.npz: positions_3d\.npy holds containers (nested deeper than 16|with more than 1,000,000)",
    ),
    Case(
        "2-json-nested-200000-deep",
        cli(*LIFT, "{tmp}/deep.json", setup=_deep_json),
        r"deep\.json: JSON nested 200000 levels deep \(at most 100\)",
        ("out",),
    ),
    Case(
        "2-json-of-40-mb",
        cli(*LIFT, "{tmp}/big.json", setup=_big_json),
        r"big\.json: JSON file of 40 MB \(at most 32 MB\)",
        ("out",),
    ),
    Case(
        "6-pickled-dict-of-lists-in-data",
        cli(*EVAL, setup=_pickled_dataset(lambda d: {s: [p.tolist() for p in t.values()] for s, t in d.items()})),
        r"data_3d_h36m_17j\.npz: 'positions_3d'\['S1'\] is a list, not a dict of takes",
    ),
]


# --- 3. honest run records: resume with other options, benches ---------------------------------------------------

def _a_run(env: Env) -> None:
    """A run folder as `bonelift train --data {h36m} --out {tmp}/run` leaves it (its last.pt and config)."""
    config = TrainConfig(model=ModelConfig(hidden=8, blocks=1), data_root=str(env.h36m), out_dir=str(env.tmp / "run"))
    checkpoints.save_model(env.tmp / "run" / "last.pt", build_model(config.model), config)


def _resume(flag: str, value: str, was: str) -> Case:
    return Case(f"3-resume-with-other-{flag}", cli("train", "--data", "{h36m}", "--out", "{tmp}/run", "--hidden", "8",
                                                   "--blocks", "1", "--resume", f"--{flag}", value, setup=_a_run),
                rf"last\.pt was trained with other options \({flag.replace('-', '_')}: {was} there, "
                rf"{re.escape(value)} here\); .*--override")


def _committed_results(env: Env) -> None:
    for suffix in (".json", ".md"):
        shutil.copy(REPO / "docs" / "results" / f"single_frame_h36m{suffix}", env.tmp)


def _unchanged_results(runner: Runner) -> Runner:
    """`runner` on copies of the committed single-frame results, which must come out byte for byte as they were."""

    def run(env: Env) -> str | None:
        _committed_results(env)
        got = runner(env)
        for suffix in (".json", ".md"):
            name = f"single_frame_h36m{suffix}"
            assert (env.tmp / name).read_bytes() == (REPO / "docs" / "results" / name).read_bytes()
        return got

    return run


BENCH = ("bench", "single-frame", "--out", "{tmp}/runs", "--report", "{tmp}/single_frame_h36m.md")
RECORDS = [
    _resume("lr", "0.5", "0.001"), _resume("seed", "3", "0"), _resume("stride", "2", "4"),
    _resume("batch-size", "16", "256"),
    Case("3-bench-seeds-0", _unchanged_results(cli(*BENCH, "--seeds", "0")),
         r"--seeds must be a whole number greater than 0, got 0", ("runs",)),
    Case("3-bench-rewrite-results-under-another-budget", _unchanged_results(cli(*BENCH, "--seeds", "1", "--epochs",
                                                                                "1")),
         r"single_frame_h36m\.json: holds rows measured under another budget \(.*epochs: 3 there, 1 here"),
]


# --- 4, 5. one lock per real folder, no symlink followed, no temp folder left by a killed run --------------------

def _lift(env: Env, out: Path) -> object:
    return bonelift.lift(env.kp(), out, model=env.ckpt, pictures=False, progress=False)


def _lock_via_symlink(env: Env) -> None:
    from bonelift.pipeline.lift import _locked

    real, link = env.tmp / "out_real", env.tmp / "out_link"
    real.mkdir()
    link.symlink_to(real)
    with _locked(real):
        _lift(env, link)


def _planted_lock(env: Env) -> None:
    (env.tmp / ".out.lock").symlink_to(env.tmp / "victim")
    _lift(env, env.tmp / "out")


def _cross_device(env: Env) -> None:
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == env.tmp.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test folder")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        (env.tmp / "out").symlink_to(Path(other) / "out")
        _lift(env, env.tmp / "out")
        assert (Path(other) / "out" / "poses3d.bvh").is_file() and not _debris(Path(other))


def _after_kill_9(env: Env) -> None:
    dead = int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True).stdout)
    (env.tmp / f".out.{dead}.abcd1234.tmp").mkdir()
    (env.tmp / f".out.{dead}.abcd1234.tmp" / "overlay.mp4").write_bytes(b"620 KB of partial outputs")
    _lift(env, env.tmp / "out")


LOCKS = [
    Case("4-lock-via-symlinked-out", api(_lock_via_symlink), r"another bonelift run is writing .*out_real"),
    Case("4-planted-lock-symlink", api(_planted_lock), r"the lock file .*\.out\.lock is a symbolic link; refusing",
         ("victim", "out")),
    Case("4-out-symlinked-to-another-filesystem", api(_cross_device), None),
    Case("5-stale-temp-folder-after-kill-9", api(_after_kill_9), None),
]


# --- 6. options: one line naming the option, before any data loads or any run folder is made --------------------

TRAIN = ("train", "--data", "{h36m}", "--out", "{tmp}/run")
VIDEO = ("train-video", "--data", "{h36m}", "--out", "{tmp}/run")


def _train(*flags: str) -> Runner:
    return cli(*TRAIN, *flags)


def _gt_checkpoint(env: Env) -> None:
    config = TrainConfig(model=ModelConfig(hidden=8, blocks=1))
    checkpoints.save_model(env.tmp / "baseline_gt.pt", build_model(config.model), config, "single-frame")


def _api_lift(*args: object, **kwargs: object) -> Runner:
    """`bonelift.lift(*args, **kwargs)`, "K" standing for a good keypoint file; `out_dir` defaults to {tmp}/out."""

    def call(env: Env) -> None:
        kwargs.setdefault("out_dir", env.tmp / "out")
        bonelift.lift(*(env.kp() if a == "K" else a for a in args), **kwargs)

    return api(call)


def _existing_file(env: Env) -> None:
    (env.tmp / "a_file").write_text("not a folder")


OPTIONS = [
    Case("6-train-lr-nan", _train("--lr", "nan"), r"lr \(--lr\) must be .*greater than 0", ("run",)),
    Case("6-train-lr-negative", _train("--lr", "-1"), r"--lr.*greater than 0", ("run",)),
    Case("6-train-hidden-0", _train("--hidden", "0"), r"--hidden.*1 or more", ("run",)),
    Case("6-train-dropout-1.5", _train("--dropout", "1.5"), r"--dropout.*less than 1", ("run",)),
    Case("6-train-seed-negative", _train("--seed", "-5"), r"--seed.*0 or more", ("run",)),
    Case("6-train-video-channels-negative", cli(*VIDEO, "--channels", "-8"), r"--channels.*1 or more", ("run",)),
    Case("6-train-loss-angle-abc", _train("--loss", "angle=abc", "--losses-on", "all"), r"--loss.*angle.*a number",
         ("run",)),
    Case("6-train-loss-unknown-name", _train("--loss", "bend=1", "--losses-on", "all"),
         r"--loss.*'bend'.*geometry, angle, symmetry, reprojection", ("run",)),
    Case("6-evaluate-gt-checkpoint-with-sh", cli("evaluate", "{tmp}/baseline_gt.pt", "--keypoints", "sh", "--data",
                                                 "{tmp}/no_data", "--device", "cpu", setup=_gt_checkpoint),
         r"h36m17, 17 joints.*h36m16 \(16 joints\)"),
    Case("6-train-out-in-proc", cli("train", "--data", "{h36m}", "--out", "/proc/bonelift_x", "--epochs", "1"),
         r"/proc/bonelift_x: .*run folder \(--out\)"),
    Case("6-train-out-an-existing-file", cli(*TRAIN[:-1], "{tmp}/a_file", setup=_existing_file),
         r"a_file: run folder \(--out\) exists and is not a folder"),
    Case("6-bench-report-in-proc", cli("bench", "single-frame", "--out", "{tmp}/runs", "--report", "/proc/x/r.md"),
         r"/proc/x: .*report"),
    Case("6-bench-report-under-a-file", cli("bench", "single-frame", "--out", "{tmp}/runs", "--report",
                                            "{tmp}/a_file/r.md", setup=_existing_file), r"a_file: .*report"),
    Case("6-api-lift-123", _api_lift(123), r"input"),
    Case("6-api-lift-out-dir-none", _api_lift("K", out_dir=None), r"out_dir"),
    Case("6-api-lift-model-123", _api_lift("K", model=123), r"model"),
    Case("6-api-lift-person-1.0", _api_lift("K", person=1.0), r"person"),
    Case("6-api-lift-layout-17", _api_lift("K", layout=17), r"layout"),
    Case("6-api-lift-max-people-nan", _api_lift("K", max_people=float("nan")), r"max_people"),
]


# --- 7. values that would be silently wrong ------------------------------------------------------------------------

def _bvh(fps: float) -> Runner:
    from bonelift.pipeline.bvh import write_bvh

    return api(lambda env: write_bvh(walking_poses(4), fps, env.tmp / "out.bvh"))


def _empty_predictions(env: Env) -> None:
    np.savez(env.tmp / "empty.npz", poses=np.zeros((0, 17, 3)))


FPS = r"out\.bvh: fps must be a number of frames per second from 0\.001 to 100000"
WRONG = [
    Case("7-bvh-fps-1e308", _bvh(1e308), FPS, ("out.bvh",)),
    Case("7-bvh-fps-1e-300", _bvh(1e-300), FPS, ("out.bvh",)),
    Case("7-keypoint-file-fps-1e308", cli(*LIFT, "{tmp}/walk.npz", setup=lambda env: env.kp(fps=1e308)),
         r"walk\.npz: the fps stored in the file must be", ("out",)),
    Case("7-lift-focal-1e308", cli(*LIFT, "{tmp}/walk.npz", "--focal", "1e308", setup=lambda env: env.kp()),
         r"--focal.*from 1 to 1e\+06", ("out",)),
    Case("7-lift-fps-1e9", cli(*LIFT, "{tmp}/walk.npz", "--fps", "1e9", setup=lambda env: env.kp()),
         r"--fps.*from 0\.001 to 100000", ("out",)),
    Case("7-train-loss-angle-negative", _train("--loss", "angle=-5", "--losses-on", "all"), r"--loss.*angle.*0 or more",
         ("run",)),
    Case("7-train-lr-decay-0", _train("--lr-decay", "0"), r"--lr-decay.*greater than 0 and at most 1", ("run",)),
    Case("7-validity-of-a-file-without-frames", cli("validity", "{tmp}/empty.npz", setup=_empty_predictions),
         r"empty\.npz: holds no frames"),
    Case("7-evaluate-stride-0", cli("evaluate", "{ckpt}", "--stride", "0", "--data", "{tmp}/no_data"),
         r"--stride.*1 or more"),
    Case("7-evaluate-stride-negative", cli("evaluate", "{ckpt}", "--stride", "-5", "--data", "{tmp}/no_data"),
         r"--stride.*1 or more"),
    Case("7-bench-test-stride-negative", cli(*BENCH, "--test-stride", "-1"), r"--test-stride", ("runs",)),
    Case("7-train-video-precise-bn-negative", cli(*VIDEO, "--precise-bn", "-3"), r"--precise-bn.*0 or more", ("run",)),
    Case("7-api-lift-pictures-no", _api_lift("K", pictures="no"), r"pictures"),
    Case("7-api-lift-focal-1e308", _api_lift("K", focal=1e308), r"focal"),
]


# --- 8. valid input refused ---------------------------------------------------------------------------------------

def _image_folder_twice(env: Env) -> None:
    pytest.importorskip("cv2")
    pytest.importorskip("mediapipe")
    from tests.pipeline.pipeline_fixtures import write_demo_frames

    folder = write_demo_frames(env.tmp / "infold")
    for _ in range(2):  # the first run's poses3d.json must not turn the folder into OpenPose keypoints
        summary = bonelift.lift(folder, folder, model=env.ckpt, fps=10, pictures=False, progress=False)
        assert summary.frames == 3


def _real_files_within_budget(env: Env) -> None:
    """The real Human3.6M files (the legitimate files of the same kind as rows 2-*) read within their budget."""
    from bonelift.datasets.common import load_pickled_npz

    root = real_data_or_skip("h36m")
    for name, key in (("data_3d_h36m.npz", "positions_3d"), ("data_2d_h36m_gt.npz", "positions_2d")):
        if (root / name).is_file():
            assert load_pickled_npz(root / name, key)


VALID = [
    Case("8-image-folder-holding-json-files", api(_image_folder_twice), None, slow=True),
    Case("2-real-dataset-files-read-within-their-budget", api(_real_files_within_budget), None, slow=True),
]

CASES = LIVE + MEMORY + RECORDS + LOCKS + OPTIONS + WRONG + VALID


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("sweep")
    make_h36m(folder / "h36m", ["S1", "S9", "S11"])
    return {"h36m": folder / "h36m", "ckpt": save_tiny_checkpoint(folder / "tiny.pt"),
            "causal": save_tiny_video_checkpoint(folder / "causal.pt", "bone", causal=True)}


def _debris(folder: Path) -> list[str]:
    """Temporary files and locks a run left (a row's own planted symbolic links are not)."""
    return sorted(str(p) for p in folder.rglob(".*") if p.name.endswith((".tmp", ".lock")) and not p.is_symlink())


def test_case_ids_are_unique() -> None:
    assert len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [pytest.param(c, id=c.id, marks=[pytest.mark.slow] if c.slow else []) for c in CASES])
def test_sweep_case(case: Case, shared: dict[str, Path], tmp_path: Path) -> None:
    env = Env(tmp_path, **shared)
    got = case.run(env)
    if case.expect is None:
        assert got is None, got
    else:
        assert got is not None, f"{case.id}: accepted, expected an error matching {case.expect!r}"
        assert "\n" not in got and "Traceback" not in got, got
        assert re.search(case.expect, got), (case.expect, got)
    assert not _debris(tmp_path), _debris(tmp_path)
    left = [name for name in case.absent if (tmp_path / name).exists() or (tmp_path / name).is_symlink()]
    assert not left, left


def test_network_fields_are_checked_with_the_run() -> None:
    """The nested network configuration is checked by the run's one `validate` (no second rule); physical ranges
    hold in Python as on the command line."""
    with pytest.raises(OptionError, match="channels"):
        VideoTrainConfig(model=VideoTrainConfig().model.__class__(channels=0)).validate()
    for bad in ({"focal": 0.5}, {"focal": float("inf")}, {"fps": 0.0}):
        with pytest.raises(OptionError):
            LiftConfig(**bad).validate()
    TrainConfig().validate()
    VideoTrainConfig().validate()
