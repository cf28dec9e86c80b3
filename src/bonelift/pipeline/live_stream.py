"""`bonelift live`: a camera, an RTSP/HTTP stream or a video file in, 3D joints out frame by frame.

Each frame read with OpenCV goes through MediaPipe's single-person tracker (`detect.StreamDetector`) and the
causal lifter (`live.LiveLifter`, fusion with MediaPipe's world landmarks by default), then optionally the
causal One-Euro filter; the result is drawn in an overlay window (unless headless) and sent as one JSON line per
frame over UDP (`udp`) and to every connected WebSocket client (`websocket`, one text message per line). A
video file is read as fast as it is processed, every frame, so a file stands in for a camera
in tests. The run ends with the stream, `max_frames`, q / Esc in the window or Ctrl-C, and returns the latency
of each stage per frame (`LiveReport`).

A message (UTF-8, one line; the same over UDP and WebSocket): {"frame": n, "time": seconds since the stream
opened (when the frame was read),
"joints": 17 x 3 metres, root-relative, camera axes (x right, y down, z forward), Human3.6M-17 order, or null,
"root": the pelvis in the camera frame (metres) or null, "latency_ms": {"detect", "lift", "total"}}; total runs
from reading the frame to the message.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bonelift.cameras import MAX_FPS, MIN_FPS
from bonelift.config import LiveCommandConfig, configure, parse_address
from bonelift.errors import DataError, OptionError
from bonelift.filters import ONE_EURO_BETA, ONE_EURO_MIN_CUTOFF, OneEuro
from bonelift.pipeline.frames import rgb_frame
from bonelift.skeletons import H36M17, MEDIAPIPE33, convert

STAGES = ("read", "detect", "lift", "total")
QUIT_KEYS = (ord("q"), 27)  # q, Esc


@dataclass
class LiveReport:
    """What a live run did: frames read, frames with a pose, and each stage's latency per frame (ms)."""

    source: str
    frames: int = 0
    posed: int = 0
    seconds: float = 0.0
    latency_ms: dict[str, list[float]] = field(default_factory=lambda: {s: [] for s in STAGES})

    def __str__(self) -> str:
        rate = self.frames / self.seconds if self.seconds > 0 else 0.0
        lines = [f"{self.source}: {self.frames} frames in {self.seconds:.1f} s ({rate:.1f} frames/s), "
                 f"{self.posed} with a pose", "latency per frame (ms)   median     p95"]
        for stage in STAGES:
            ms = np.asarray(self.latency_ms[stage])
            if ms.size:
                lines.append(f"  {stage:<22}{np.median(ms):8.1f}{np.percentile(ms, 95):8.1f}")
        return "\n".join(lines)


def parse_source(source: str | int) -> int | str:
    """A camera index (int, or a text of digits), a stream URL (`scheme://...`) or an existing video file; a
    missing file is a DataError before anything opens."""
    if isinstance(source, int | np.integer) and not isinstance(source, bool):
        if source < 0:
            raise DataError(str(source), "a camera index must be 0 or more")
        return int(source)
    text = str(source)
    if text.isdigit():
        return int(text)
    if "://" in text:
        return text
    path = Path(text)
    if not path.is_file():
        raise DataError(path, "input not found (a camera index, a stream URL such as rtsp://..., or a video file)")
    if path.stat().st_size == 0:
        raise DataError(path, "video file is empty (0 bytes)")
    return str(path)


def has_display() -> bool:
    """Whether an OpenCV window can be shown: always on Windows and macOS, with X11 or Wayland elsewhere."""
    if not sys.platform.startswith("linux"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


def live(source: str | int, config: LiveCommandConfig | None = None, **overrides: Any) -> LiveReport:
    """Lift `source` (see `parse_source`) live until it ends; options: `LiveCommandConfig` fields."""
    o = configure(LiveCommandConfig, config, overrides)
    if o.layout != "mediapipe33":
        raise OptionError(f"layout of `live` is MediaPipe's (mediapipe33), got {o.layout!r}")
    src = parse_source(source)
    headless = (not has_display()) if o.headless is None else o.headless
    import cv2

    from bonelift.pipeline.detect import StreamDetector
    from bonelift.pipeline.live import LiveLifter

    lifter = LiveLifter(config=o)  # loads the checkpoint: a bad model fails before the source opens
    with contextlib.ExitStack() as stack:
        sinks = [stack.enter_context(_udp(o.udp))] if o.udp is not None else []
        if o.websocket is not None:
            sinks.append(stack.enter_context(_websocket(o.websocket)))
        cap = cv2.VideoCapture(src)
        stack.callback(cap.release)
        if not cap.isOpened():
            raise DataError(str(src), "could not open the camera or stream (OpenCV)")
        rate = float(cap.get(cv2.CAP_PROP_FPS) or 0.0)
        fps = rate if MIN_FPS <= rate <= MAX_FPS else 30.0
        detector = StreamDetector(o.min_confidence)
        stack.callback(detector.close)
        if not headless:
            stack.callback(cv2.destroyAllWindows)
        filters = [_one_euro(o, fps), _one_euro(o, fps)] if o.filter == "one-euro" else None
        report = LiveReport(str(src))
        start = time.perf_counter()
        with contextlib.suppress(KeyboardInterrupt):
            for n, (t0, bgr) in enumerate(_frames(cap, o.max_frames)):
                height, width = bgr.shape[:2]
                rgb = rgb_frame(bgr, o.max_side)
                t1 = time.perf_counter()
                found = detector(rgb, width, height)
                t2 = time.perf_counter()
                kp, conf, world = found if found is not None else (None, None, None)
                pose = lifter.push(kp, conf, width, height, world=world)
                root = lifter.root
                if filters is not None and pose is None:
                    for f in filters:
                        f.reset()
                elif filters is not None:
                    pose, root = filters[0].push(pose), filters[1].push(root)
                ms = {"read": 1e3 * (t1 - t0), "detect": 1e3 * (t2 - t1), "lift": 1e3 * (time.perf_counter() - t2)}
                if sinks:
                    line = _line(n, t0 - start, pose, root, ms | {"total": 1e3 * (time.perf_counter() - t0)})
                    for send in sinks:
                        send(line)
                ms["total"] = 1e3 * (time.perf_counter() - t0)
                quit_ = not headless and _show(cv2, bgr, found, ms)
                for stage in STAGES:
                    report.latency_ms[stage].append(ms[stage])
                report.frames += 1
                report.posed += pose is not None
                if quit_:
                    break
        report.seconds = time.perf_counter() - start
    return report


def _frames(cap, max_frames: int | None) -> Iterator[tuple[float, np.ndarray]]:
    """(the time the read started, BGR frame) until the stream ends or `max_frames`."""
    n = 0
    while max_frames is None or n < max_frames:
        t0 = time.perf_counter()
        ok, bgr = cap.read()
        if not ok or bgr is None:
            return
        n += 1
        yield t0, bgr


def _one_euro(o: LiveCommandConfig, fps: float) -> OneEuro:
    return OneEuro(fps, ONE_EURO_MIN_CUTOFF if o.filter_cutoff is None else o.filter_cutoff,
                   ONE_EURO_BETA if o.filter_beta is None else o.filter_beta)


@contextlib.contextmanager
def _udp(address: str) -> Iterator[Callable[[str], None]]:
    """Send lines to `address` (HOST:PORT) over UDP; a host that does not resolve is an OptionError. A receiver
    that is not listening (yet) costs the message, not the run."""
    host, port = parse_address(address)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        try:
            sock.connect((host, port))
        except OSError as exc:
            raise OptionError(f"udp (--udp) {address}: {exc.strerror or exc}") from None

        def send(line: str) -> None:
            with contextlib.suppress(ConnectionRefusedError):
                sock.send(line.encode())

        yield send
    finally:
        sock.close()


@contextlib.contextmanager
def _websocket(address: str) -> Iterator[Callable[[str], None]]:
    """Serve WebSocket clients at `address` (HOST:PORT) from a thread; each line goes to every client connected
    then, one text message per line. A client that left is dropped; a port in use is an OptionError."""
    try:
        from websockets.exceptions import ConnectionClosed
        from websockets.sync.server import serve
    except ImportError:
        raise DataError(None, "--websocket needs the websockets package: pip install 'bonelift[video]'") from None
    host, port = parse_address(address, "websocket (--websocket)")
    clients: set = set()
    lock = threading.Lock()

    def handler(connection) -> None:
        with lock:
            clients.add(connection)
        try:
            for _ in connection:  # nothing is expected from clients: wait until they leave
                pass
        except ConnectionClosed:
            pass
        finally:
            with lock:
                clients.discard(connection)

    try:
        server = serve(handler, host, port)
    except OSError as exc:
        raise OptionError(f"websocket (--websocket) {address}: {exc.strerror or exc}") from None
    thread = threading.Thread(target=server.serve_forever, name="bonelift-websocket", daemon=True)
    thread.start()

    def send(line: str) -> None:
        with lock:
            now = list(clients)
        for connection in now:
            with contextlib.suppress(ConnectionClosed):
                connection.send(line)

    try:
        yield send
    finally:
        server.shutdown()
        thread.join(timeout=5)


def _line(frame: int, seconds: float, pose: np.ndarray | None, root: np.ndarray | None, ms: dict[str, float]) -> str:
    """One JSON line: the frame, its time, joints and root (null without a pose) and the latencies."""
    message = {"frame": frame, "time": round(seconds, 6), "joints": None if pose is None else pose.tolist(),
               "root": None if root is None else np.asarray(root).tolist(),
               "latency_ms": {k: round(ms[k], 3) for k in ("detect", "lift", "total")}}
    return json.dumps(message) + "\n"


def _show(cv2, bgr: np.ndarray, found: tuple[np.ndarray, ...] | None, ms: dict[str, float]) -> bool:
    """Draw the detected skeleton (Human3.6M-17 bones) and the latencies; True when q or Esc was pressed."""
    image = bgr.copy()
    if found is not None:
        kp = convert(found[0], MEDIAPIPE33, H36M17)[0]
        pts = np.round(kp).astype(int)
        for a, b in H36M17.bones:
            cv2.line(image, tuple(int(v) for v in pts[a]), tuple(int(v) for v in pts[b]), (0, 220, 0), 2)
        for p in pts:
            cv2.circle(image, (int(p[0]), int(p[1])), 3, (0, 0, 255), -1)
    text = f"detect {ms['detect']:.0f} ms  lift {ms['lift']:.0f} ms" + ("" if found is not None else "  (nobody)")
    cv2.putText(image, text, (10, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (255, 255, 255), 2)
    cv2.imshow("bonelift live", image)
    return (cv2.waitKey(1) & 0xFF) in QUIT_KEYS


__all__ = ["LiveReport", "has_display", "live", "parse_source"]
