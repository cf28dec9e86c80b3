"""`bonelift live`: a video file as the camera, headless; frames in = results out, JSON lines over UDP, poses equal
to `LiveLifter` fed the same detections (and to `lift --causal --max-people 1` without fusion); options and the
source are refused in one line before anything opens."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import numpy as np
import pytest

from bonelift.cli import main
from bonelift.errors import DataError, OptionError
from bonelift.pipeline.frames import open_frames
from bonelift.pipeline.live_stream import live, parse_source

DEMO = Path(__file__).resolve().parents[2] / "src" / "bonelift" / "assets" / "demo_walk.mp4"
W, H = 64, 48


def _receiver() -> tuple[socket.socket, str]:
    """A UDP test client on 127.0.0.1 (an ephemeral port) and the HOST:PORT to send to."""
    rx = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    rx.bind(("127.0.0.1", 0))
    rx.settimeout(10)
    return rx, f"127.0.0.1:{rx.getsockname()[1]}"


def _received(rx: socket.socket, count: int) -> list[dict]:
    try:
        return [json.loads(rx.recv(65536).decode()) for _ in range(count)]
    finally:
        rx.close()


def _joints(messages: list[dict]) -> np.ndarray:
    return np.array([np.full((17, 3), np.nan) if m["joints"] is None else m["joints"] for m in messages], float)


def _video(path: Path, frames: int) -> Path:
    import cv2

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 25.0, (W, H))
    for n in range(frames):
        writer.write(np.full((H, W, 3), 8 * n % 256, np.uint8))
    writer.release()
    return path


class _FakeDetector:
    """Synthetic MediaPipe detections, one per frame (nobody on frame 5), instead of MediaPipe."""

    def __init__(self, min_confidence: float = 0.5) -> None:
        rng = np.random.default_rng(0)
        start = rng.uniform([10, 8], [54, 40], (1, 33, 2))
        self.kp = start + rng.normal(0, 0.3, (30, 33, 2)).cumsum(0)
        self.conf = rng.uniform(0.3, 1.0, (30, 33))
        self.world = rng.normal(0, 0.3, (30, 33, 3))
        self.n = 0

    def __call__(self, rgb: np.ndarray, width: int, height: int):
        n, self.n = self.n, self.n + 1
        assert (width, height) == (W, H)
        return None if n == 5 else (self.kp[n], self.conf[n], self.world[n])

    def close(self) -> None:
        pass


def test_live_video_as_camera_sends_every_frame_and_equals_live_lifter(tmp_path: Path, video_checkpoints: dict,
                                                                        monkeypatch) -> None:
    from bonelift.pipeline.live import LiveLifter

    monkeypatch.setattr("bonelift.pipeline.detect.StreamDetector", _FakeDetector)
    ckpt = video_checkpoints["tcn_causal"]
    rx, address = _receiver()
    report = live(str(_video(tmp_path / "cam.avi", 12)), model=ckpt, headless=True, udp=address)
    messages = _received(rx, 12)
    assert report.frames == 12 and report.posed == 11  # frames in = results out; frame 5 has nobody
    assert [m["frame"] for m in messages] == list(range(12))
    assert messages[5]["joints"] is None and messages[5]["root"] is None
    assert all(set(m["latency_ms"]) == {"detect", "lift", "total"} for m in messages)
    assert all(m["time"] >= 0 for m in messages) and len(report.latency_ms["total"]) == 12
    fake, lifter = _FakeDetector(), LiveLifter(ckpt)
    expected = []
    for n in range(12):
        found = fake(None, W, H)
        pose = lifter.push(*(found[:2] if found else (None, None)), W, H, world=found[2] if found else None)
        expected.append(np.full((17, 3), np.nan) if pose is None else pose)
        if pose is not None:
            np.testing.assert_allclose(messages[n]["root"], lifter.root, atol=1e-5)
    np.testing.assert_allclose(_joints(messages), np.stack(expected), atol=1e-5)
    assert "median" in str(report) and "p95" in str(report)


def test_live_one_euro_filters_the_stream(tmp_path: Path, video_checkpoints: dict, monkeypatch) -> None:
    from bonelift.filters import smooth

    monkeypatch.setattr("bonelift.pipeline.detect.StreamDetector", _FakeDetector)
    video = str(_video(tmp_path / "cam.avi", 10))
    ckpt = video_checkpoints["tcn_causal"]
    runs = {}
    for kind in ("none", "one-euro"):
        rx, address = _receiver()
        live(video, model=ckpt, headless=True, udp=address, filter=kind)
        runs[kind] = _joints(_received(rx, 10))
    np.testing.assert_allclose(runs["one-euro"], smooth(runs["none"], 25.0, "one-euro"), atol=1e-5)


@pytest.mark.slow
def test_live_demo_clip_equals_live_lifter_on_mediapipe(tmp_path: Path) -> None:
    """The bundled clip, 20 frames, real MediaPipe and the bundled causal lifter with fusion (the defaults)."""
    from bonelift.pipeline.detect import StreamDetector
    from bonelift.pipeline.live import LiveLifter

    rx, address = _receiver()
    report = live(str(DEMO), headless=True, udp=address, max_frames=20)
    messages = _received(rx, 20)
    assert report.frames == 20
    source, detector, lifter = open_frames(DEMO), StreamDetector(), LiveLifter()
    expected = []
    try:
        for rgb in source.frames(640, 0, 20):
            kp, conf, world = detector(rgb, source.width, source.height) or (None, None, None)
            pose = lifter.push(kp, conf, source.width, source.height, world=world)
            expected.append(np.full((17, 3), np.nan) if pose is None else pose)
    finally:
        detector.close()
    np.testing.assert_allclose(_joints(messages), np.stack(expected), atol=1e-5)


@pytest.mark.slow
@pytest.mark.parametrize("fusion", [False, True])
def test_live_equals_lift_causal_single_person(tmp_path: Path, fusion: bool) -> None:
    """The stream equals offline `lift --causal --max-people 1` (the same tracker), with fusion (MediaPipe's world
    landmarks on both sides) and without."""
    from bonelift.pipeline import lift
    from bonelift.pipeline.export import read_npz

    rx, address = _receiver()
    live(str(DEMO), headless=True, udp=address, max_frames=20, fusion=fusion)
    streamed = _joints(_received(rx, 20))
    lift(DEMO, tmp_path / "out", causal=True, max_people=1, max_frames=20, fusion=fusion, world=False, biomech=False,
         pictures=False, progress=False)
    np.testing.assert_allclose(streamed, read_npz(tmp_path / "out" / "poses3d.npz").joints, atol=1e-5)


def test_live_source_kinds() -> None:
    assert parse_source("0") == 0 and parse_source(2) == 2
    assert parse_source("rtsp://camera.local/stream") == "rtsp://camera.local/stream"
    assert parse_source(str(DEMO)) == str(DEMO)
    with pytest.raises(DataError, match="camera index"):
        parse_source(-1)


@pytest.mark.parametrize(("argv", "message"), [
    (["live", "missing.mp4", "--headless"], "missing.mp4: input not found"),
    (["live", "0", "--udp", "localhost"], "udp (--udp) must be HOST:PORT"),
    (["live", "0", "--udp", "127.0.0.1:70000"], "udp (--udp) must be HOST:PORT"),
    (["live", "0", "--min-confidence", "2"], "min_confidence (--min-confidence) must be at most 1"),
    (["live", "0", "--max-frames", "0"], "max_frames (--max-frames) must be greater than 0"),
])
def test_live_bad_option_or_source_is_one_line(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_live_checks_options_and_source_before_opening_anything(tmp_path: Path, monkeypatch) -> None:
    import cv2

    def never(*args, **kwargs):
        raise AssertionError("the source was opened")

    monkeypatch.setattr(cv2, "VideoCapture", never)
    with pytest.raises(OptionError, match="one of none, one-euro"):
        live(str(DEMO), filter="butterworth")
    with pytest.raises(DataError, match="input not found"):
        live(str(tmp_path / "missing.mp4"))


def test_live_unreadable_stream_is_one_line(tmp_path: Path, video_checkpoints: dict) -> None:
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(DataError, match="could not open the camera or stream"):
        live(str(bad), model=video_checkpoints["tcn_causal"], headless=True)


def test_live_websocket_serves_the_udp_lines_to_every_client(tmp_path: Path, video_checkpoints: dict,
                                                             monkeypatch) -> None:
    """Two WebSocket clients connected before the first frame each receive every line, equal to the UDP line of the
    same frame. The detector holds the first frame until both clients are in (no race with the stream's start)."""
    pytest.importorskip("websockets", reason="websockets not installed (pip install 'bonelift[video]')")
    import contextlib
    import threading
    import time

    from websockets.sync.client import connect

    ready = threading.Event()

    class _Waiting(_FakeDetector):
        def __call__(self, rgb: np.ndarray, width: int, height: int):
            ready.wait(30)
            return super().__call__(rgb, width, height)

    monkeypatch.setattr("bonelift.pipeline.detect.StreamDetector", _Waiting)
    with socket.socket() as probe:  # a free TCP port for the server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    rx, address = _receiver()
    run = threading.Thread(target=live, args=(str(_video(tmp_path / "cam.avi", 8)),),
                           kwargs={"model": video_checkpoints["tcn_causal"], "headless": True, "udp": address,
                                   "websocket": f"127.0.0.1:{port}"})
    run.start()
    clients: list = []
    deadline = time.monotonic() + 60
    try:
        with contextlib.ExitStack() as stack:
            while len(clients) < 2:
                try:
                    clients.append(stack.enter_context(connect(f"ws://127.0.0.1:{port}", open_timeout=5)))
                except OSError:
                    assert time.monotonic() < deadline, "the WebSocket server did not start"
                    time.sleep(0.05)
            time.sleep(0.2)  # the server registers a client right after the handshake
            ready.set()
            got = [[json.loads(c.recv(timeout=30)) for _ in range(8)] for c in clients]
    finally:
        ready.set()
        run.join(60)
    sent = _received(rx, 8)
    assert not run.is_alive() and got[0] == sent and got[1] == sent


def test_websocket_address_refused_before_anything_opens() -> None:
    with pytest.raises(OptionError, match=r"websocket \(--websocket\) must be HOST:PORT"):
        live("0", websocket="nowhere")
