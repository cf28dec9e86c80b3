"""Side-by-side pictures: the video with its 2D skeleton, and the 3D skeleton from a fixed viewpoint.

Drawing is plain OpenCV (no matplotlib figure per frame), so rendering costs little next to
detection. The 3D view looks at the root-relative skeleton from a fixed azimuth/elevation and scale
chosen once for the whole clip, so the picture does not jump while the person moves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
from tqdm import tqdm

from bonelift.pipeline.export import Poses3D
from bonelift.skeletons import H36M17

# Bone colours (RGB) by side; the HTML viewer uses the same ones.
LEFT_RGB, RIGHT_RGB, CENTRE_RGB = (30, 120, 255), (255, 60, 50), (40, 200, 90)
# Further people, one colour each (the main person keeps the side colours above); cycled beyond four.
PERSON_RGB = ((255, 200, 0), (230, 80, 230), (0, 220, 220), (255, 140, 0))


def bone_colours(person_rank: int = 0) -> list[tuple[int, int, int]]:
    """RGB colour of each bone of H36M17 (in `H36M17.bones` order): by the side of its child joint for the
    main person (rank 0), one colour per further person so people can be told apart."""
    if person_rank > 0:
        return [PERSON_RGB[(person_rank - 1) % len(PERSON_RGB)]] * len(H36M17.bones)
    left, right = set(H36M17.left), set(H36M17.right)
    return [LEFT_RGB if c in left else RIGHT_RGB if c in right else CENTRE_RGB for _, c in H36M17.bones]


def side_offsets(people: list[Poses3D]) -> np.ndarray:
    """(P, 3) metres to shift each root-relative person in the 3D views, so people stand apart as in the image:
    their mean 2D pelvis position relative to the main person's, in units of its image height (~2 m)."""
    hip = [np.nanmean(p.keypoints_2d[:, 0, 0]) if np.isfinite(p.keypoints_2d[:, 0, 0]).any() else np.nan
           for p in people]
    out = np.zeros((len(people), 3))
    for k in range(1, len(people)):
        if np.isfinite(hip[k]) and np.isfinite(hip[0]):
            out[k, 0] = 2.0 * (hip[k] - hip[0]) / people[0].height
    return out


def floor_height(poses: Poses3D) -> float:
    """Height (y, metres, y down) of the ground under the person: the median over posed frames of the lower
    foot, 0.9 m below the pelvis when no frame has a pose. The one rule of the picture and the HTML viewer."""
    ok = np.isfinite(poses.joints).all(axis=(1, 2))
    feet = poses.joints[ok][:, [H36M17.index("LFoot"), H36M17.index("RFoot")], 1]
    return float(np.median(feet.max(axis=1))) if len(feet) else 0.9


def view_rotation(azimuth_deg: float = 35.0, elevation_deg: float = 15.0) -> np.ndarray:
    """Rotation from camera coordinates to a view turned by `azimuth` about the vertical, tilted by `elevation`."""
    a, e = np.radians(azimuth_deg), np.radians(elevation_deg)
    yaw = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    pitch = np.array([[1, 0, 0], [0, np.cos(e), np.sin(e)], [0, -np.sin(e), np.cos(e)]])
    return pitch @ yaw


def _draw_skeleton(cv2, img: np.ndarray, pts: np.ndarray, thickness: int, rank: int = 0) -> None:
    if not np.isfinite(pts).all():
        return
    for (p, c), rgb in zip(H36M17.bones, bone_colours(rank)):
        bgr = rgb[::-1]
        a, b = tuple(np.round(pts[p]).astype(int)), tuple(np.round(pts[c]).astype(int))
        cv2.line(img, a, b, bgr, thickness, cv2.LINE_AA)
    for q in pts:
        cv2.circle(img, tuple(np.round(q).astype(int)), max(2, thickness), (255, 255, 255), -1, cv2.LINE_AA)


class SideBySide:
    """Composes frames: left the image (or a blank canvas) with 2D keypoints, right the 3D view."""

    def __init__(self, poses: Poses3D, panel_height: int = 360, people: list[Poses3D] | None = None) -> None:
        import cv2

        self.cv2 = cv2
        self.poses = poses
        # the main person first (side colours), then the others, each in its own colour
        self.people = [poses] + [p for p in people or [] if p is not poses]
        self.offsets = side_offsets(self.people)
        self.h = panel_height - panel_height % 2
        aspect = min(max(poses.width / poses.height, 0.1), 10.0)  # a 100000x1 "image" must not allocate gigabytes
        self.w_left = max(2, int(round(aspect * self.h)) // 2 * 2)
        self.rot = view_rotation()
        everyone = np.concatenate([p.joints[np.isfinite(p.joints).all(axis=(1, 2))] + off
                                   for p, off in zip(self.people, self.offsets)])
        viewed = everyone @ self.rot.T
        lo, hi = viewed[..., :2].reshape(-1, 2).min(0), viewed[..., :2].reshape(-1, 2).max(0)
        self.centre = (lo + hi) / 2
        self.scale = 0.8 * self.h / max(float((hi - lo).max()), 0.5)
        self.floor = floor_height(poses)

    def _floor_grid(self, img: np.ndarray) -> None:
        cv2 = self.cv2
        for k in np.linspace(-1.0, 1.0, 9):
            for a, b in (((k, -1.0), (k, 1.0)), ((-1.0, k), (1.0, k))):
                p = np.array([[a[0], self.floor, a[1]], [b[0], self.floor, b[1]]]) @ self.rot.T
                q = (p[:, :2] - self.centre) * self.scale + np.array([self.h / 2, self.h / 2])
                ends = [tuple(np.round(x).astype(int)) for x in q]
                cv2.line(img, ends[0], ends[1], (70, 70, 70), 1, cv2.LINE_AA)

    def compose(self, t: int, frame_rgb: np.ndarray | None) -> np.ndarray:
        """One (H, W_left + H, 3) RGB picture for frame t."""
        cv2 = self.cv2
        if frame_rgb is None:
            left = np.full((self.h, self.w_left, 3), 235, np.uint8)
        else:
            left = cv2.resize(frame_rgb, (self.w_left, self.h), interpolation=cv2.INTER_AREA)
        left = np.ascontiguousarray(left[..., ::-1])  # draw in BGR
        for rank, person in reversed(list(enumerate(self.people))):  # the main person drawn last, on top
            _draw_skeleton(cv2, left, person.keypoints_2d[t] * (self.h / self.poses.height), 2, rank)
        right = np.full((self.h, self.h, 3), 25, np.uint8)
        self._floor_grid(right)
        for rank, person in reversed(list(enumerate(self.people))):
            pts = ((person.joints[t] + self.offsets[rank]) @ self.rot.T)[:, :2]
            _draw_skeleton(cv2, right, (pts - self.centre) * self.scale + np.array([self.h / 2, self.h / 2]), 3, rank)
        label = f"frame {t}" + (
            "" if self.poses.status[t] == 0 else (" (interpolated)" if self.poses.status[t] == 1 else " (no person)")
        )
        cv2.putText(right, label, (8, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (220, 220, 220), 1, cv2.LINE_AA)
        return np.hstack([left, right])[..., ::-1]


class _Mp4Writer:
    """H.264 MP4 through the ffmpeg binary of `imageio-ffmpeg` (plays in browsers); OpenCV's MPEG-4
    part 2 (`mp4v`) when that package is missing (plays in desktop players only)."""

    def __init__(self, path: Path, fps: float, size: tuple[int, int]) -> None:
        import subprocess

        self.proc = self.cv_writer = None
        try:
            import imageio_ffmpeg

            exe = imageio_ffmpeg.get_ffmpeg_exe()
        except (ImportError, RuntimeError):
            exe = None
        if exe is not None:
            cmd = [
                exe, "-y", "-loglevel", "error", "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{size[0]}x{size[1]}",
                "-r", f"{fps}", "-i", "-", "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt",
                "yuv420p", "-movflags", "+faststart", str(path),
            ]
            self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stderr=subprocess.PIPE)
        else:
            import cv2

            self.cv_writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
            if not self.cv_writer.isOpened():
                raise OSError(f"OpenCV cannot write MP4 to {path}")

    def write(self, rgb: np.ndarray) -> None:
        if self.proc is not None:
            self.proc.stdin.write(np.ascontiguousarray(rgb).tobytes())
        else:
            self.cv_writer.write(np.ascontiguousarray(rgb[..., ::-1]))

    def close(self) -> None:
        if self.proc is not None:
            self.proc.stdin.close()
            err = self.proc.stderr.read().decode(errors="replace")
            if self.proc.wait() != 0:
                raise OSError(f"ffmpeg failed to write the MP4: {err.strip()}")
        else:
            self.cv_writer.release()

    def abort(self) -> None:
        """Stop writing after a failure or an interrupt without raising: the cause is the error to report,
        not ffmpeg's exit status (Ctrl-C also reaches ffmpeg, which then fails)."""
        if self.proc is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
            self.proc.kill()
            self.proc.wait()
        else:
            self.cv_writer.release()


def render_video(
    poses: Poses3D, frames: Iterable[np.ndarray] | None, mp4_path: Path, gif_path: Path | None,
    panel_height: int = 360, gif_fps: float = 10.0, gif_max_frames: int = 150, progress: bool = True,
    people: list[Poses3D] | None = None,
) -> int:
    """Write the side-by-side MP4 (every frame) and GIF (subsampled, at most `gif_max_frames`); returns frames written.

    `people`: everyone to draw (the main person `poses` in the side colours, the others in `PERSON_RGB`)."""
    import cv2

    comp = SideBySide(poses, panel_height, people)
    size = (comp.w_left + comp.h, comp.h)
    writer = _Mp4Writer(mp4_path, float(poses.fps), size)
    step = max(1, int(round(poses.fps / gif_fps)))
    gif_frames = []
    source: Iterator = iter(frames) if frames is not None else iter(())
    n = 0
    try:
        for t in tqdm(range(poses.num_frames), desc="render", unit="frame", disable=not progress):
            img = next(source, None)
            pic = comp.compose(t, img)
            writer.write(pic)
            n += 1
            if gif_path is not None and t % step == 0 and len(gif_frames) < gif_max_frames:
                gif_frames.append(cv2.resize(pic, (size[0] * 2 // 3, size[1] * 2 // 3), interpolation=cv2.INTER_AREA))
    except BaseException:
        writer.abort()
        raise
    writer.close()
    if gif_path is not None and gif_frames:
        from PIL import Image

        # Fast octree palettes: median-cut quantisation costs ~0.7 s a frame here.
        images = [Image.fromarray(f).quantize(colors=128, method=Image.Quantize.FASTOCTREE) for f in gif_frames]
        images[0].save(gif_path, save_all=True, append_images=images[1:], duration=int(1000 * step / poses.fps), loop=0)
    return n
