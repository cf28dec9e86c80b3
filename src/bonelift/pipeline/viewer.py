"""A self-contained HTML page with an interactive 3D skeleton viewer (no network, no libraries).

The poses are embedded as JSON; a small canvas renderer draws them with an orthographic camera the
user rotates by dragging, plus play/pause and a frame slider. Colours match the MP4; only the bones
use them (the slider is grey). `viewer.html#frame=N` opens paused at frame N.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np

from bonelift.io import write_table
from bonelift.pipeline.export import Poses3D, pose_parts
from bonelift.pipeline.render import bone_colours, floor_height, side_offsets
from bonelift.skeletons import H36M17

_PAGE = r"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>bonelift 3D poses: __TITLE__</title>
<style>
body{margin:0;background:#191919;color:#ddd;font:14px sans-serif}
#bar{display:flex;gap:10px;align-items:center;padding:8px}
#scrub{flex:1;accent-color:#888}
canvas{display:block;cursor:grab;background:#191919}
button{font:inherit;padding:2px 12px}
</style></head><body>
<div id="bar"><button id="play">Pause</button><input id="scrub" type="range" min="0" value="0">
<span id="label"></span></div>
<canvas id="view" width="720" height="560"></canvas>
<p style="padding:0 8px">Drag to rotate, mouse wheel to zoom. Units: metres, root-relative. Source: __TITLE__</p>
<script>
const D = __DATA__;
const cv = document.getElementById('view'), ctx = cv.getContext('2d');
const scrub = document.getElementById('scrub'), label = document.getElementById('label');
const play = document.getElementById('play');
scrub.max = D.frames.length - 1;
let t = 0, playing = true, az = 0.6, el = 0.25, zoom = 1.0, last = null, drag = null;
// viewer.html#frame=N opens paused at frame N (for links and screenshots)
const start = /frame=(\d+)/.exec(location.hash);
if (start) { t = Math.min(+start[1], D.frames.length - 1); playing = false; }
const status = ['detected', 'interpolated', 'no person'];
function project(p) {
  // camera frame: x right, y down, z forward; turn about the vertical (az) then tilt (el)
  const ca = Math.cos(az), sa = Math.sin(az), ce = Math.cos(el), se = Math.sin(el);
  const x = ca * p[0] - sa * p[2], z = sa * p[0] + ca * p[2];
  const y = ce * p[1] + se * z, d = -se * p[1] + ce * z;
  const s = zoom * cv.height / 2.4;
  return [cv.width / 2 + s * x, cv.height / 2 + s * y, d];
}
function line(a, b, colour, width) {
  ctx.strokeStyle = colour; ctx.lineWidth = width; ctx.beginPath();
  ctx.moveTo(a[0], a[1]); ctx.lineTo(b[0], b[1]); ctx.stroke();
}
function draw() {
  ctx.fillStyle = '#191919'; ctx.fillRect(0, 0, cv.width, cv.height);
  for (let k = -1; k <= 1.001; k += 0.25) {
    line(project([k, D.floor, -1]), project([k, D.floor, 1]), '#444', 1);
    line(project([-1, D.floor, k]), project([1, D.floor, k]), '#444', 1);
  }
  const f = D.frames[t];
  if (f) {
    const q = f.map(project);
    const order = D.bones.map((b, i) => i).sort((i, j) =>
      (q[D.bones[j][0]][2] + q[D.bones[j][1]][2]) - (q[D.bones[i][0]][2] + q[D.bones[i][1]][2]));
    ctx.lineCap = 'round';
    for (const i of order) line(q[D.bones[i][0]], q[D.bones[i][1]], D.colours[i], 6);
    ctx.fillStyle = '#fff';
    for (const p of q) { ctx.beginPath(); ctx.arc(p[0], p[1], 3.5, 0, 2 * Math.PI); ctx.fill(); }
  }
__OTHERS__  label.textContent = 'frame ' + t + ' / ' + (D.frames.length - 1) + ' (' + status[D.status[t]] + ')';
  scrub.value = t;
}
function tick(now) {
  if (playing && (last === null || now - last >= 1000 / D.fps)) {
    t = (t + 1) % D.frames.length; last = now; draw();
  }
  requestAnimationFrame(tick);
}
play.textContent = playing ? 'Pause' : 'Play';
play.onclick = () => { playing = !playing; play.textContent = playing ? 'Pause' : 'Play'; };
scrub.oninput = () => { t = +scrub.value; playing = false; play.textContent = 'Play'; draw(); };
cv.onmousedown = e => { drag = [e.clientX, e.clientY]; };
window.onmouseup = () => { drag = null; };
window.onmousemove = e => {
  if (!drag) return;
  az += (e.clientX - drag[0]) * 0.01;
  el = Math.max(-1.5, Math.min(1.5, el + (e.clientY - drag[1]) * 0.01));
  drag = [e.clientX, e.clientY]; draw();
};
cv.onwheel = e => { e.preventDefault(); zoom *= e.deltaY < 0 ? 1.1 : 1 / 1.1; draw(); };
draw();
requestAnimationFrame(tick);
</script></body></html>
"""


# Drawing of the further people (only on pages with more than one person, so one-person pages stay as they were).
_OTHERS_JS = r"""  for (const o of D.others) {
    const g = o.frames[t];
    if (!g) continue;
    const q = g.map(p => project([p[0] + o.offset[0], p[1] + o.offset[1], p[2] + o.offset[2]]));
    ctx.lineCap = 'round';
    for (const b of D.bones) line(q[b[0]], q[b[1]], o.colour, 6);
    ctx.fillStyle = '#fff';
    for (const p of q) { ctx.beginPath(); ctx.arc(p[0], p[1], 3.5, 0, 2 * Math.PI); ctx.fill(); }
  }
"""


def _hex(rgb: tuple[int, int, int]) -> str:
    return "#" + "".join(f"{v:02x}" for v in rgb)


def write_html(poses: Poses3D, path: Path, title: str = "", people: list[Poses3D] | None = None) -> None:
    """Write the viewer page; frames without a pose are stored as null and drawn empty.

    `people`: everyone to draw; the main person `poses` in the side colours, each other person in
    its own colour, placed beside the main person as in the image (`render.side_offsets`)."""
    frames = [poses.joints]  # written into the JSON text at their stand-ins, "\u0000<index>"
    data = {
        "fps": poses.fps,
        "bones": [list(b) for b in H36M17.bones],
        "colours": [_hex(c) for c in bone_colours()],
        "floor": round(floor_height(poses), 4),
        "status": poses.status.astype(int).tolist(),
        "frames": f"\0{0}",
    }
    everyone = [poses] + [p for p in people or [] if p is not poses]
    if len(everyone) > 1:
        offsets = side_offsets(everyone)
        data["others"] = [{"person": p.person, "colour": _hex(bone_colours(rank)[0]),
                           "offset": np.round(offsets[rank], 4).tolist(), "frames": f"\0{rank}"}
                          for rank, p in enumerate(everyone) if rank > 0]
        frames += [p.joints for p in everyone[1:]]
    safe_title = (title or Path(poses.source).name).replace("&", "&amp;").replace("<", "&lt;")
    before, after = (
        part.replace("__OTHERS__", _OTHERS_JS if len(everyone) > 1 else "").replace("__TITLE__", safe_title)
        for part in _PAGE.split("__DATA__")
    )
    # the JSON text around the frames (no "</" inside a script); the frames, millions of numbers, a chunk at a time
    texts = re.split(r'"\\u0000\d+"', json.dumps(data, separators=(",", ":")).replace("</", "<\\/"))
    with path.open("wb") as fh:
        fh.write(before.encode("utf-8"))
        for text, joints in zip(texts, frames):
            fh.write(text.encode() + b"[")
            write_table(fh, pose_parts(joints, 4, ","), len(joints))
            fh.write(b"]")
        fh.write(texts[-1].encode() + after.encode("utf-8"))
