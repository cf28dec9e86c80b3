"""Reliability of `bonelift lift` (docs/reliability.md): clear one-line errors, checked options, one output set per
folder, a lock against concurrent runs, and no workers or temporary folders left after an interrupt."""

from __future__ import annotations

import importlib
import json
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from pipeline_fixtures import walking_poses, write_demo_frames

from bonelift.cli import main
from bonelift.errors import DataError, OptionError
from bonelift.pipeline import lift
from bonelift.pipeline.keypoint_io import read_keypoints
from bonelift.pipeline.lift import OUTPUT_FILES

LIFT = importlib.import_module("bonelift.pipeline.lift")  # the package re-exports `lift`, the function
SRC = Path(__file__).resolve().parents[2] / "src"


def _pixels(frames: int = 12) -> np.ndarray:
    """A walking person projected into a 640x480 image, (T, 17, 2) pixels."""
    poses = walking_poses(frames) + np.array([0.0, 0.0, 5.0])
    return 1000.0 * poses[..., :2] / poses[..., 2:] + np.array([320.0, 240.0])


def _npz(path: Path, **fields) -> Path:
    data = {"keypoints": _pixels(), "width": 640, "height": 480, "fps": 25.0, "layout": "h36m17"}
    data.update(fields)
    np.savez(path, **{k: v for k, v in data.items() if v is not None})
    return path


def _run_cli(args: list[str], capsys) -> tuple[int, str]:
    rc = main(["lift", *args, "--quiet"])
    return rc, capsys.readouterr().err


def _assert_one_line_error(rc: int, err: str, *needles: str) -> None:
    lines = err.strip().splitlines()
    assert rc == 2 and len(lines) == 1 and lines[0].startswith("bonelift: error: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])


def _temp_debris(parent: Path) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name.startswith(".") and p.name.endswith((".tmp", ".lock")))


# --- keypoint files: each defect is one line that names the file and the field --------------------------------

BAD_NPZ = {
    "width_zero": ({"width": 0}, "width must be a whole number of pixels from 1 to 100000, got 0"),
    "width_negative": ({"width": -640}, "width must be a whole number of pixels from 1 to 100000"),
    "width_array": ({"width": np.array([640, 480])}, "width must be one number, got an array"),
    "fps_nan": ({"fps": np.nan}, "fps must be a finite number greater than 0, got nan"),
    "fps_negative": ({"fps": -5.0}, "fps must be a finite number greater than 0"),
    "string_keypoints": ({"keypoints": np.full((4, 17, 2), "x")}, "keypoints has non-numeric dtype"),
    "huge_no_size": ({"keypoints": _pixels() * 1e30, "width": None, "height": None}, "not pixel positions"),
    "layout_array": ({"layout": np.array([1, 2])}, "layout must be a name"),
}


@pytest.mark.parametrize("case", sorted(BAD_NPZ))
def test_bad_keypoint_npz_is_one_clear_line(tmp_path: Path, tiny_checkpoint: Path, capsys, case: str) -> None:
    fields, problem = BAD_NPZ[case]
    path = _npz(tmp_path / f"{case}.npz", **fields)
    with pytest.raises(DataError, match=problem) as info:
        read_keypoints(path)
    assert info.value.source == str(path)
    rc, err = _run_cli(
        [str(path), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint), "--no-pictures"], capsys
    )
    _assert_one_line_error(rc, err, f"{case}.npz: ", problem)
    assert not (tmp_path / "out").exists() and not _temp_debris(tmp_path)


def test_openpose_folder_with_a_frame_lacking_keypoints(tmp_path: Path) -> None:
    folder = tmp_path / "openpose"
    folder.mkdir()
    flat = np.hstack([_pixels(3)[0, :, :2], np.ones((17, 1))])
    flat = np.vstack([flat, np.ones((1, 3))]).ravel().tolist()  # 18 joints: OpenPose COCO-18
    for i in range(3):
        person = {"pose_keypoints_2d": flat} if i != 1 else {"face_keypoints_2d": []}
        (folder / f"f_{i:03d}_keypoints.json").write_text(json.dumps({"people": [person]}))
    with pytest.raises(DataError, match="without 'pose_keypoints_2d'") as info:
        read_keypoints(folder)
    assert info.value.source == str(folder / "f_001_keypoints.json")


# --- options: checked by the API, reported by the command line --------------------------------------------------

BAD_OPTIONS = {
    "size_zero": (["--size", "0x0"], "image_size (--size"),
    "size_zero_height": (["--size", "640x0"], "image_size (--size"),
    "fps_nan": (["--fps", "nan"], "fps (--fps) must be from 0.001 to 100000, got nan"),
    "fps_negative": (["--fps", "-5"], "fps (--fps) must be from 0.001 to 100000, got -5.0"),
    "max_frames_negative": (["--max-frames", "-5"], "max_frames (--max-frames) must be greater than 0, got -5"),
    "max_side_negative": (["--max-side", "-1"], "max_side (--max-side"),
    "max_gap_negative": (["--max-gap", "-2"], "max_gap (--max-gap) must be 0 or more"),
    "workers_zero": (["--workers", "0"], "workers (--workers) must be greater than 0"),
    "device_bogus": (["--device", "bogus"], "device (--device) 'bogus' is not a device name"),
    "device_tpu": (["--device", "xla"], "device (--device) 'xla' is not supported"),
}


@pytest.mark.parametrize("case", sorted(BAD_OPTIONS))
def test_bad_options_are_refused_before_anything_runs(tmp_path: Path, tiny_checkpoint: Path, capsys, case: str) -> None:
    args, problem = BAD_OPTIONS[case]
    path = _npz(tmp_path / "walk.npz")
    rc, err = _run_cli([str(path), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint), *args], capsys)
    _assert_one_line_error(rc, err, problem)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.npz"]


def test_cuda_without_a_gpu_is_blamed_on_the_option(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    with pytest.raises(OptionError, match="no CUDA GPU is available"):
        lift(_npz(tmp_path / "walk.npz"), tmp_path / "out", model=tiny_checkpoint, device="cuda", progress=False)
    rc, err = _run_cli([str(tmp_path / "walk.npz"), "-o", str(tmp_path / "o"), "--model", str(tiny_checkpoint),
                        "--device", "cuda:0"], capsys)
    _assert_one_line_error(rc, err, "--device", "no CUDA GPU")
    assert "tiny.pt" not in err  # the checkpoint is fine


def test_api_refuses_the_same_values(tmp_path: Path, tiny_checkpoint: Path) -> None:
    path = _npz(tmp_path / "walk.npz")
    for kwargs in ({"fps": float("nan")}, {"fps": -5}, {"max_frames": -5}, {"max_frames": 0}, {"max_side": -1},
                   {"image_size": (640, 0)}, {"image_size": (640,)}, {"fps": "fast"}, {"max_frames": 2.5}):
        with pytest.raises(OptionError):
            lift(path, tmp_path / "out", model=tiny_checkpoint, pictures=False, progress=False, **kwargs)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["walk.npz"]


def test_max_frames_and_fps_that_are_valid_still_work(tmp_path: Path, tiny_checkpoint: Path) -> None:
    summary = lift(_npz(tmp_path / "walk.npz"), tmp_path / "out", model=tiny_checkpoint, fps=50, max_frames=5,
                   max_side=0, pictures=False, progress=False)
    assert summary.frames == 5
    assert "Frame Time: 0.02" in (tmp_path / "out" / "poses3d.bvh").read_text()


# --- output folder: one run's outputs, one run at a time --------------------------------------------------------

def test_no_pictures_rerun_drops_the_old_pictures(tmp_path: Path, tiny_checkpoint: Path) -> None:
    pytest.importorskip("cv2")
    path, out = _npz(tmp_path / "walk.npz"), tmp_path / "out"
    first = lift(path, out, model=tiny_checkpoint, progress=False)
    assert {p.name for p in first.files} == set(OUTPUT_FILES)
    (out / "notes.txt").write_text("mine")
    second = lift(path, out, model=tiny_checkpoint, pictures=False, progress=False)
    assert not (out / "overlay.mp4").exists() and not (out / "overlay.gif").exists()
    assert {p.name for p in second.files} == set(OUTPUT_FILES) - {"overlay.mp4", "overlay.gif"}
    assert sorted(p.name for p in out.iterdir()) == sorted({p.name for p in second.files} | {"notes.txt"})
    assert "overlay" not in str(second).splitlines()[-1]


def test_concurrent_run_into_the_same_folder_is_refused(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    path, out = _npz(tmp_path / "walk.npz"), tmp_path / "out"
    with LIFT._locked(out):  # what a run in progress holds
        with pytest.raises(DataError, match=f"another bonelift run is writing {out}"):
            lift(path, out, model=tiny_checkpoint, pictures=False, progress=False)
        rc, err = _run_cli([str(path), "-o", str(out), "--model", str(tiny_checkpoint), "--no-pictures"], capsys)
        _assert_one_line_error(rc, err, "another bonelift run is writing")
        assert not out.exists()
    assert not _temp_debris(tmp_path)  # the lock file goes with the run
    lift(path, out, model=tiny_checkpoint, pictures=False, progress=False)
    assert (out / "poses3d.bvh").is_file() and not _temp_debris(tmp_path)


@pytest.mark.slow
def test_two_processes_never_mix_their_outputs(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A second process started while the first holds the lock fails cleanly; the folder is the first one's."""
    path, out = _npz(tmp_path / "walk.npz"), tmp_path / "out"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from bonelift.pipeline.lift import _locked\n"
            "with _locked(Path(sys.argv[1])):\n    print('locked', flush=True); time.sleep(30)",
            str(out),
        ],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": str(SRC)},
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        proc = subprocess.run([sys.executable, "-m", "bonelift.cli", "lift", str(path), "-o", str(out), "--model",
                               str(tiny_checkpoint), "--no-pictures", "--quiet"],
                              capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=120)
        _assert_one_line_error(proc.returncode, proc.stderr, f"another bonelift run is writing {out}")
    finally:
        holder.kill()
        holder.wait()


def test_writable_folder_in_unwritable_parent_names_the_parent(tmp_path: Path, tiny_checkpoint: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    parent = tmp_path / "locked"
    out = parent / "out"
    out.mkdir(parents=True)
    real_access = os.access
    if os.geteuid() == 0:  # root may write anywhere: make the check see what a normal user would
        monkeypatch.setattr(LIFT.os, "access", lambda p, mode: Path(p) != parent and real_access(p, mode))
    else:
        parent.chmod(0o555)
    try:
        with pytest.raises(DataError, match=f"{parent}: parent folder of the output folder is not writable"):
            lift(_npz(tmp_path / "walk.npz"), out, model=tiny_checkpoint, pictures=False, progress=False)
    finally:
        parent.chmod(0o755)


# --- interrupts: Ctrl-C while rendering, SIGTERM while detecting --------------------------------------------------

def _ffmpeg_children() -> list[int]:
    return [pid for pid in _children(os.getpid()) if "ffmpeg" in _cmdline(pid)]


def _children(pid: int) -> list[int]:
    """Live (non-zombie) processes whose parent is `pid`, from /proc."""
    kids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            if int(fields[1]) == pid and fields[0] != "Z":
                kids.append(int(entry.name))
    return kids


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return (Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]) != "Z"
    except OSError:
        return False


@pytest.mark.skipif(not Path("/proc").is_dir(), reason="needs /proc")
def test_ctrl_c_while_rendering_is_an_interrupt_not_an_ffmpeg_failure(tmp_path: Path, tiny_checkpoint: Path,
                                                                     monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    pytest.importorskip("cv2")
    from bonelift.pipeline import render

    real = render.SideBySide.compose

    def compose(self, t, frame):
        if t == 3:
            raise KeyboardInterrupt
        return real(self, t, frame)

    monkeypatch.setattr(render.SideBySide, "compose", compose)
    path = _npz(tmp_path / "walk.npz")
    with pytest.raises(KeyboardInterrupt):
        lift(path, tmp_path / "out", model=tiny_checkpoint, progress=False)
    assert not _ffmpeg_children() and not (tmp_path / "out").exists() and not _temp_debris(tmp_path)
    with pytest.raises(SystemExit) as info:
        main(["lift", str(path), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint), "--quiet"])
    err = capsys.readouterr().err
    assert info.value.code == 130 and err.strip() == "bonelift: interrupted (no outputs written)"


def _long_video(path: Path, repeats: int = 12) -> Path:
    """The demo clip played `repeats` times: long enough to interrupt detection in the middle."""
    cv2 = pytest.importorskip("cv2")
    from bonelift.pipeline import DEMO_CLIP

    cap = cv2.VideoCapture(str(DEMO_CLIP))
    frames = []
    while True:
        ok, img = cap.read()
        if not ok:
            break
        frames.append(img)
    cap.release()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 30.0, frames[0].shape[1::-1])
    for _ in range(repeats):
        for img in frames:
            writer.write(img)
    writer.release()
    return path


def _start_detection(tmp_path: Path, checkpoint: Path) -> tuple[subprocess.Popen, list[int]]:
    """`bonelift lift` on a long video in a subprocess, returned once its two detection workers run."""
    video = _long_video(tmp_path / "long.mp4")
    proc = subprocess.Popen([sys.executable, "-m", "bonelift.cli", "lift", str(video), "-o", str(tmp_path / "out"),
                             "--model", str(checkpoint), "--workers", "2", "--no-pictures", "--quiet"],
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(SRC)})
    workers: list[int] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        workers = [pid for pid in _children(proc.pid) if "bonelift" in _cmdline(pid)]
        if len(workers) >= 2 and list(tmp_path.glob(".out.*.tmp")):
            break
        time.sleep(0.05)
    if proc.poll() is not None or len(workers) < 2:
        proc.kill()
        pytest.fail(f"detection did not start: {proc.communicate()[1]}")
    time.sleep(1.0)  # both workers are inside MediaPipe now, far from the end of the clip
    return proc, workers


def _gone_within(pids: list[int], seconds: float) -> list[int]:
    deadline = time.monotonic() + seconds
    while any(_alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return [pid for pid in pids if _alive(pid)]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="detection workers are forked on Linux only")
@pytest.mark.slow
def test_sigterm_during_detection_stops_workers_and_removes_the_temp_folder(tmp_path: Path,
                                                                            tiny_checkpoint: Path) -> None:
    pytest.importorskip("mediapipe")
    proc, workers = _start_detection(tmp_path, tiny_checkpoint)
    try:
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=60)
        took = time.monotonic() - sent
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = proc.stderr.read()
    assert rc == 128 + signal.SIGTERM and "Traceback" not in err, err
    assert took < 3, f"exit took {took:.1f} s: the run waited for its workers to finish the clip"
    assert not _gone_within(workers, 2)
    assert not (tmp_path / "out").exists() and not _temp_debris(tmp_path)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux only")
@pytest.mark.slow
def test_workers_die_with_a_killed_parent(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """SIGKILL runs no cleanup at all; the workers must still not be left running (or hung) without a parent."""
    pytest.importorskip("mediapipe")
    proc, workers = _start_detection(tmp_path, tiny_checkpoint)
    proc.kill()
    proc.wait()
    try:
        assert not _gone_within(workers, 5)
    finally:
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="detection workers are forked on Linux only")
@pytest.mark.slow
def test_error_in_a_detection_worker_reaches_the_user(tmp_path: Path, tiny_checkpoint: Path) -> None:
    cv2 = pytest.importorskip("cv2")
    pytest.importorskip("mediapipe")
    folder = tmp_path / "frames"
    folder.mkdir()
    for i in range(100):
        cv2.imwrite(str(folder / f"{i:04d}.png"), np.full((48, 64, 3), 40 + i, np.uint8))
    (folder / "0070.png").write_bytes(b"\x89PNG\r\n\x1a\n not really an image")
    proc = subprocess.run([sys.executable, "-m", "bonelift.cli", "lift", str(folder), "-o", str(tmp_path / "out"),
                           "--model", str(tiny_checkpoint), "--workers", "2", "--no-pictures", "--quiet"],
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(SRC)}, timeout=300)
    # MediaPipe and OpenCV log to stderr from native code; what bonelift says is its last line, and only that
    ours = [line for line in proc.stderr.splitlines() if "bonelift" in line or "Error" in line or "Traceback" in line]
    _assert_one_line_error(proc.returncode, "\n".join(ours), f"{folder / '0070.png'}: not a readable image")
    assert proc.stderr.strip().splitlines()[-1] == ours[0] and "BrokenProcessPool" not in proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames"]


# --- fuzz: generated bad files and options never end in a traceback or leave temporary files ---------------------

def _bad_values(rng: np.random.Generator) -> dict:
    """One random defect (or a combination) of a keypoint npz."""
    good = _pixels(int(rng.integers(1, 15)))
    t = len(good)
    choices = {
        "width": [0, -1, np.nan, np.inf, 1e20, np.array([1, 2]), "abc", True, 2.5, 10**6],
        "height": [0, -3, np.nan, np.array([[480]]), "tall", 1e-3],
        "fps": [0, -5, np.nan, np.inf, "x", np.array([25.0, 30.0]), 1e-300, 1e300],
        "keypoints": [np.zeros((0, 17, 2)), good[:, :, 0], np.dstack([good, good]), np.full((t, 17, 2), "7"),
                      np.full((t, 17, 2), np.nan), np.full((t, 17, 2), np.inf), good * 1e30, good > 100,
                      good.astype(complex), good.astype(np.int16), -good * 1e9, good[:, :5], np.zeros((t, 17, 2)),
                      np.full((t, 17, 2), 1e5)],
        "confidence": [np.ones(3), np.full((t, 17), "hi"), np.full((t, 17), np.nan), -np.ones((t, 17)),
                       np.full((t, 17), np.inf)],
        "layout": ["bogus", 5, np.array(["a", "b"]), "coco17", "mediapipe33"],
    }
    fields = {}
    for key in rng.choice(sorted(choices), size=int(rng.integers(1, 3)), replace=False):
        options = choices[key]
        fields[key] = options[int(rng.integers(len(options)))]
    if rng.random() < 0.2:
        fields["width"] = fields["height"] = None
    return fields


def _bad_json(path: Path, rng: np.random.Generator) -> Path:
    flat = np.hstack([_pixels(1)[0], np.ones((17, 1))]).ravel().tolist()
    docs = [
        '{"people": [',
        "[]",
        "{}",
        "[1, 2, 3]",
        '"text"',
        "null",
        json.dumps({"people": "nobody"}),
        json.dumps({"people": [{"pose_keypoints_2d": ["a"] * 51}]}),
        json.dumps({"people": [{"pose_keypoints_2d": flat[:50]}]}),
        json.dumps({"people": [{}]}),
        json.dumps([{"image_id": 0, "keypoints": flat, "score": "high"}]),
        json.dumps([{"image_id": [0], "keypoints": flat}]),
        json.dumps([{"keypoints": None}]),
        json.dumps(
            {"images": [{"id": 0, "width": 0, "height": 480}], "annotations": [{"image_id": 0, "keypoints": flat}]}
        ),
        json.dumps(
            {"images": [{"id": 0, "width": "w", "height": 4}], "annotations": [{"image_id": 0, "keypoints": flat}]}
        ),
        json.dumps({"images": [{"id": 0}], "annotations": [{"image_id": 1, "keypoints": flat}]}),
        json.dumps({"annotations": "none"}),
        json.dumps({"instance_info": [{"instances": [{"keypoints": [[1]]}]}]}),
        json.dumps([{"frame_id": "x", "instances": [{"keypoints": [[1, 2]] * 17, "keypoint_scores": [1] * 3}]}]),
        json.dumps([{"instances": 5}]),
        json.dumps([{"image_id": 0, "keypoints": [1e400] * 51}]).replace("Infinity", "1e400"),
    ]
    path.write_text(docs[int(rng.integers(len(docs)))])
    return path


def _bad_csv(path: Path, rng: np.random.Generator) -> Path:
    header = ",".join(f"j{k}_x,j{k}_y" for k in range(17))
    row = ",".join(str(v) for v in _pixels(1)[0].ravel())
    texts = [header, "", "a,b,c\n1,2,3", f"{header}\n{row},7", f"{header}\n" + row.replace("3", "x", 1),
             f"{header}\n" + ",".join(["inf"] * 34), f"{header}\n" + ",".join(["1e400"] * 34), "\x00\x01\x02",
             f"{header}\n" + ",".join([""] * 34)]
    text = texts[int(rng.integers(len(texts)))]
    path.write_bytes(text.encode("utf-8", errors="replace") if "\x00" not in text else b"\xff\xfe\x00bad")
    return path


BAD_FLAGS = [["--fps", "nan"], ["--fps", "-1"], ["--fps", "inf"], ["--max-frames", "0"], ["--max-frames", "-5"],
             ["--max-side", "-1"], ["--size", "0x0"], ["--size", "640x0"], ["--size", "99999999x5"], ["--size", "x"],
             ["--max-gap", "-1"], ["--workers", "-2"], ["--device", "bogus"], ["--device", "cuda:7"],
             ["--layout", "nope"], ["--layout", "coco17"], ["--fps", "1e-300"], []]


def test_fuzz_lift_ends_cleanly(tmp_path: Path, tiny_checkpoint: Path, capsys) -> None:
    rng = np.random.default_rng(11)
    outcomes = {0: 0, 2: 0}
    for i in range(45):
        case = tmp_path / f"case{i}"
        case.mkdir()
        kind = i % 5
        if kind in (0, 1):
            src = _npz(case / "kp.npz", **_bad_values(rng))
        elif kind == 2:
            src = _bad_json(case / "kp.json", rng)
        elif kind == 3:
            src = _bad_csv(case / "kp.csv", rng)
        else:
            src = _npz(case / "kp.npz")
        flags = BAD_FLAGS[int(rng.integers(len(BAD_FLAGS)))] if kind == 4 or rng.random() < 0.3 else []
        pictures = [] if i % 7 == 0 else ["--no-pictures"]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "image size unknown" warnings are fine; errors are what is checked
            rc = main(["lift", str(src), "-o", str(case / "out"), "--model", str(tiny_checkpoint), "--quiet",
                       *pictures, *flags])
        err = capsys.readouterr().err
        assert rc in (0, 2), (i, src.read_bytes()[:200], flags, err)
        outcomes[rc] += 1
        assert "Traceback" not in err, (i, err)
        if rc == 2:
            _assert_one_line_error(rc, err)
            assert not (case / "out").exists(), i
        else:
            assert (case / "out" / "poses3d.bvh").is_file()
        assert not _temp_debris(case), (i, _temp_debris(case))
    assert outcomes[2] >= 30  # most generated inputs are bad; a few defects (e.g. layout coco17) are legitimate



# --- one lock per real folder, no symlink followed, no temp folder left by a killed run --------------------------


def test_the_lock_is_keyed_on_the_resolved_folder(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A run into a symlink `out_link -> out_real` is refused while another run writes `out_real`."""
    path, real, link = _npz(tmp_path / "walk.npz"), tmp_path / "out_real", tmp_path / "out_link"
    real.mkdir()
    link.symlink_to(real)
    with LIFT._locked(real):
        with pytest.raises(DataError, match="another bonelift run is writing .*out_real"):
            lift(path, link, model=tiny_checkpoint, pictures=False, progress=False)
    summary = lift(path, link, model=tiny_checkpoint, pictures=False, progress=False)
    assert link.is_symlink() and (real / "poses3d.bvh").is_file() and summary.out_dir == real
    assert not _temp_debris(tmp_path)


def test_a_planted_lock_symlink_is_refused_not_followed(tmp_path: Path, tiny_checkpoint: Path) -> None:
    path, out, victim = _npz(tmp_path / "walk.npz"), tmp_path / "out", tmp_path / "victim"
    (tmp_path / ".out.lock").symlink_to(victim)
    with pytest.raises(DataError, match=r"out: the lock file .*\.out\.lock is a symbolic link; refusing to follow it"):
        lift(path, out, model=tiny_checkpoint, pictures=False, progress=False)
    assert not victim.exists() and not out.exists()


def test_output_symlink_to_another_filesystem(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """The temporary folder is made beside the resolved target, so the final move is a rename on its filesystem."""
    import tempfile

    shm = Path("/dev/shm")
    if not shm.is_dir() or shm.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs /dev/shm on another filesystem than the test folder")
    with tempfile.TemporaryDirectory(dir=shm) as other:
        target = Path(other) / "out"
        (tmp_path / "out").symlink_to(target)
        lift(_npz(tmp_path / "walk.npz"), tmp_path / "out", model=tiny_checkpoint, pictures=False, progress=False)
        assert (target / "poses3d.bvh").is_file() and not _temp_debris(Path(other)) and not _temp_debris(tmp_path)


def test_stale_temp_folders_of_dead_runs_are_removed(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A killed run's `.OUT.PID.*.tmp` is removed by the next run into OUT; a live run's, and other files, are not."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(dead.stdout)
    stale = tmp_path / f".out.{dead_pid}.abcd1234.tmp"
    (stale / "sub").mkdir(parents=True)
    (stale / "sub" / "poses3d.mp4").write_bytes(b"partial")
    live = tmp_path / f".out.{os.getpid()}.efgh5678.tmp"
    live.mkdir()
    other = tmp_path / f".other.{dead_pid}.abcd1234.tmp"
    other.mkdir()
    lift(_npz(tmp_path / "walk.npz"), tmp_path / "out", model=tiny_checkpoint, pictures=False, progress=False)
    assert not stale.exists() and live.is_dir() and other.is_dir()


# --- silently wrong values that are not options ------------------------------------------------------------------


@pytest.mark.parametrize("fps", [1e308, 1e-300, float("nan"), 0.0])
def test_bvh_frame_time_is_bounded(tmp_path: Path, fps: float) -> None:
    """A BVH frame time of 0 (fps 1e308) or of 300 digits (fps 1e-300) is refused before anything is written."""
    from bonelift.pipeline.bvh import write_bvh

    with pytest.raises(DataError, match=r"out\.bvh: fps must be a number of frames per second from 0\.001 to 100000"):
        write_bvh(walking_poses(4), fps, tmp_path / "out.bvh")
    assert not (tmp_path / "out.bvh").exists()
    write_bvh(walking_poses(4), 1e-3, tmp_path / "slow.bvh")
    assert "Frame Time: 1000.00000000" in (tmp_path / "slow.bvh").read_text()


@pytest.mark.parametrize("fps", [1e308, 1e-300])
def test_keypoint_file_fps_out_of_range_is_one_line(tmp_path: Path, tiny_checkpoint: Path, capsys, fps: float) -> None:
    path = _npz(tmp_path / "walk.npz", fps=np.float64(fps))
    rc, err = _run_cli([str(path), "-o", str(tmp_path / "out"), "--model", str(tiny_checkpoint), "--no-pictures"],
                       capsys)
    _assert_one_line_error(rc, err, "walk.npz: the fps stored in the file must be a number of frames per second")
    assert not (tmp_path / "out").exists()


def test_validity_of_a_file_without_frames_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "empty.npz"
    np.savez(path, poses=np.zeros((0, 17, 3)))
    rc = main(["validity", str(path)])
    err = capsys.readouterr().err
    _assert_one_line_error(rc, err, "empty.npz: holds no frames")


def test_image_folder_with_json_files_is_still_images(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """`lift infold -o infold` works twice: the first run's poses3d.json does not turn the folder into keypoints."""
    pytest.importorskip("cv2")
    pytest.importorskip("mediapipe")
    from bonelift.pipeline.keypoint_io import is_keypoint_input

    folder = write_demo_frames(tmp_path / "infold")
    for _ in range(2):
        summary = lift(folder, folder, model=tiny_checkpoint, fps=10, pictures=False, progress=False)
        assert summary.frames == 3 and (folder / "poses3d.json").is_file()
    openpose = tmp_path / "openpose"
    openpose.mkdir()
    (openpose / "0_keypoints.json").write_text('{"people": []}')
    assert is_keypoint_input(openpose) and not is_keypoint_input(folder)


def test_disk_full_while_writing_outputs_keeps_the_old_ones(tmp_path: Path, tiny_checkpoint: Path, capsys,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """ENOSPC in the last export (half a viewer.html written): one line naming the folder, the previous run's
    outputs byte for byte, no temporary folder or lock left; the next run succeeds."""
    import errno

    path, out = _npz(tmp_path / "walk.npz"), tmp_path / "out"
    lift(path, out, model=tiny_checkpoint, pictures=False, progress=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def full_disk(poses, dest: Path, *args, **kwargs) -> None:
        Path(dest).write_text("<html>half a viewer")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with monkeypatch.context() as patch:
        patch.setattr(LIFT.viewer, "write_html", full_disk)
        with pytest.raises(DataError, match=r"out: cannot write outputs \(No space left on device\)"):
            lift(path, out, model=tiny_checkpoint, fps=50, pictures=False, progress=False)
        rc, err = _run_cli([str(path), "-o", str(out), "--model", str(tiny_checkpoint), "--no-pictures"], capsys)
        _assert_one_line_error(rc, err, "out: cannot write outputs (No space left on device)")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert not _temp_debris(tmp_path)
    lift(path, out, model=tiny_checkpoint, fps=50, pictures=False, progress=False)
    assert "Frame Time: 0.02" in (out / "poses3d.bvh").read_text()
