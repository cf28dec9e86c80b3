"""`bonelift bench wild` (issue 17): lifters as `bonelift lift` runs them, against MediaPipe's own 3D.

Three parts, one suite file (`docs/results/wild.json`; a row's `variant` says which part and group):
- `footage/<person>`: the Pose2Sim four-view clip (`bench.footage`), every view lifted alone from
  MediaPipe's 2D (input `mediapipe`) and compared across views and with a triangulated reference;
  MediaPipe's world landmarks scored the same way (`mediapipe-world`);
- `views/<group>`: Human3.6M S9/S11 seen from virtual cameras grouped by elevation and frame shape,
  2D made detector-like from the ground truth (`bench.viewpoints`; input `gt`);
- `humaneva`: HumanEva-I S1-S3 validation chunks, GT 2D, lifters trained on Human3.6M only.
Nothing is trained here: pass the lifters to compare as NAME=CHECKPOINT.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from bonelift import checkpoints
from bonelift.bench import footage, viewpoints
from bonelift.bench.common import add_common_arguments, header_lines, table, write_suite
from bonelift.cameras import assumed_intrinsics
from bonelift.datasets import TEST_SUBJECTS, data_folder, load_humaneva, load_split
from bonelift.errors import OptionError
from bonelift.filters import FILTERS, smooth
from bonelift.fusion import FusionSettings, fuse_clip
from bonelift.pipeline.lifters import (
    CAUSAL_VIDEO_WEIGHTS,
    DEFAULT_WEIGHTS,
    VIDEO_WEIGHTS,
    LiftFn,
    check_fusion,
    check_skeleton,
    lift_fn,
    load_lifter,
)
from bonelift.skeletons import H36M17

SUITE = "wild"
PARTS = ("footage", "views", "humaneva", "fusion", "world")


def add_parser(suites: argparse._SubParsersAction) -> None:
    p = suites.add_parser(SUITE, help="lifters on real 4-view footage vs MediaPipe's 3D, novel viewpoints, HumanEva")
    p.add_argument("--lifter", action="append", default=None, metavar="NAME=CHECKPOINT",
                   help="a lifter to score (repeatable; default: the bundled lifters that are installed)")
    p.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated parts to run ({', '.join(PARTS)})")
    p.add_argument("--persons", default="woman,man", help="people of the footage to score")
    p.add_argument("--footage", default=str(footage.FOOTAGE_DIR), help="folder of the Pose2Sim clip")
    p.add_argument("--data", default="", help="folder holding h36m/ and humaneva/ (default: the shared data)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--skeleton", action=argparse.BooleanOptionalAction, default=None,
                   help="one symmetric skeleton per clip, as `bonelift lift --skeleton` (default: the lifter's "
                        "default: on for video lifters, off for single-frame ones)")
    p.add_argument("--fusion", action=argparse.BooleanOptionalAction, default=None,
                   help="fit each clip to its 2D with the lifter's and MediaPipe's 3D as priors, as `bonelift lift "
                        "--fusion` (default: the lifter's default: on for video lifters); the bundled set scores "
                        "the video lifters both ways")
    p.add_argument("--detector-3d", default="none", choices=sorted(viewpoints.DETECTOR_3D),
                   help="part views: give fusing lifters MediaPipe-like 3D simulated from the ground truth at this "
                        "noise level (none: the 2D-only path)")
    add_common_arguments(p, str(footage.CACHE_DIR), "docs/results/wild.md", test_stride=10)


# The bundled set: the earlier lifters as they were (no fusion) and the video lifters with fusion (issue 26).
BUNDLED: dict[str, tuple[Path, bool | None]] = {
    "shipped-single-frame": (DEFAULT_WEIGHTS, None),
    "bundled-video": (VIDEO_WEIGHTS, False),
    "bundled-video-causal": (CAUSAL_VIDEO_WEIGHTS, False),
    "fusion": (VIDEO_WEIGHTS, True),
    "fusion-causal": (CAUSAL_VIDEO_WEIGHTS, True),
}


def lifters_of(specs: list[str] | None, device: str = "cpu", skeleton: bool | None = None,
               fusion: bool | None = None) -> tuple[dict[str, LiftFn], dict[str, dict[str, Any]]]:
    """NAME=CHECKPOINT pairs as lift functions (`skeleton` and `fusion` as `lift_track` takes them), and what
    each row records of its lifter: training seed (from its checkpoint), whether it fits a clip skeleton, whether
    it fuses; by default the `BUNDLED` lifters that are installed."""
    if specs:
        chosen = {}
        for spec in specs:
            name, sep, path = spec.partition("=")
            if not sep or not name or not path:
                raise OptionError(f"--lifter must be NAME=CHECKPOINT, got {spec!r}")
            chosen[name] = (Path(path), fusion)
    else:
        chosen = {k: v for k, v in BUNDLED.items() if v[0].is_file()}
    fns, info = {}, {}
    for name, (path, fuse) in chosen.items():
        lifter = load_lifter(path, device)
        fns[name] = lift_fn(lifter, skeleton, fuse)
        info[name] = {"seed": int(checkpoints.config_of(checkpoints.load(path), path).seed),
                      "skeleton": check_skeleton(lifter, skeleton), "fusion": check_fusion(lifter, fuse)}
    return fns, info


# What the fusion's result owes to each input and how it moves with its noise model (part "fusion"): each
# FusionSettings field a step down and up from its default, every prior source alone and together.
SENSITIVITY = {"pixel_sigma": (0.01, 0.02), "direction_sigma": (0.2, 0.5), "length_sigma": (0.05, 0.2),
               "steps": (20,)}


def fusion_variants(device: str = "cpu") -> dict[str, LiftFn]:
    """The bundled video lifter's fusion (`fusion[...]` rows): default; without MediaPipe's 3D (the 2D-only path);
    MediaPipe's 3D alone; the single-frame lifter as the network prior; and each `SENSITIVITY` setting."""
    video, single = load_lifter(VIDEO_WEIGHTS, device), load_lifter(DEFAULT_WEIGHTS, device)
    out: dict[str, LiftFn] = {"fusion[lifter+mediapipe]": lift_fn(video, fusion=True),
                              "fusion[single-frame+mediapipe]": lift_fn(single, fusion=True)}
    plain = lift_fn(video, fusion=True)
    out["fusion[lifter only]"] = lambda kp, conf, w, h, fps: plain(kp, conf, w, h, fps)  # never given `world`

    def mediapipe_only(kp, conf, w, h, fps, world=None):
        f, c = assumed_intrinsics(w, h)
        fused = fuse_clip(kp, conf, [world - world[:, :1]], H36M17, f, c)
        return fused - fused[:, :1]

    mediapipe_only.takes_world = True  # type: ignore[attr-defined]
    out["fusion[mediapipe only]"] = mediapipe_only
    for name, values in SENSITIVITY.items():
        for v in values:
            out[f"fusion[{name}={v}]"] = lift_fn(video, fusion=True, fusion_settings=FusionSettings(**{name: v}))
    for kind in FILTERS[1:]:  # `lift --filter`: the same smoothing of the root-relative joints
        out[f"fusion[filter={kind}]"] = _filtered(out["fusion[lifter+mediapipe]"], kind)
    return out


def _filtered(fn: LiftFn, kind: str) -> LiftFn:
    """`fn` followed by `filters.smooth` of its joints (filter `kind`, default parameters), as `lift` applies it."""

    def lift(kp, conf, w, h, fps, world=None):
        return smooth(fn(kp, conf, w, h, fps, world=world), fps, kind)

    lift.takes_world = True  # type: ignore[attr-defined]
    return lift


def run(lifters: dict[str, LiftFn], parts: tuple[str, ...], report: str | Path, command: str, cache_dir: str | Path,
        persons: tuple[str, ...] = ("woman", "man"), footage_dir: str | Path = footage.FOOTAGE_DIR,
        data_root: str = "", test_stride: int = 10, progress: bool = True,
        info: dict[str, dict[str, Any]] | None = None, detector_3d: str = "none") -> dict[str, Any]:
    """Score every lifter on the chosen parts and merge the rows into the suite file beside `report`.

    `info`: per lifter what its rows record (`lifters_of`: seed, skeleton; default seed 0; MediaPipe's own
    rows: seed 0)."""
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise OptionError(f"unknown part(s) {unknown} (known: {', '.join(PARTS)})")

    def folder(name: str) -> Path:  # `data_root` holds h36m/ and humaneva/ (default: the shared data)
        return Path(data_root) / name if data_root else data_folder(name)

    rows: list[dict[str, Any]] = []
    say = (lambda m: print(f"[bench wild] {m}", flush=True)) if progress else None
    if "footage" in parts:
        footage.detect_views(footage_dir, cache_dir, progress=progress)
        for r in footage.footage_rows(lifters, cache_dir, persons, footage=footage_dir):
            rows.append({**r, "variant": f"footage/{r['person']}"})
    if "views" in parts:
        test = load_split("h36m", str(folder("h36m")), "gt", TEST_SUBJECTS)
        groups = viewpoints.viewpoint_groups(test)
        for r in viewpoints.viewpoint_rows(lifters, groups, test_stride, say, detector_3d):
            rows.append({**r, "variant": f"views/{r['views']}"})
    if "fusion" in parts:
        footage.detect_views(footage_dir, cache_dir, progress=progress)
        fns = fusion_variants()
        for r in footage.footage_rows(fns, cache_dir, persons, mediapipe_world=False, footage=footage_dir):
            rows.append({**r, "variant": f"fusion/{r['person']}"})
    if "world" in parts:  # issue 24: the floor and the vertical from each view alone
        data = footage.load_footage(cache_dir, footage_dir)
        for name, fn in lifters.items():
            for person in persons:
                if person not in data.people:
                    continue
                # the default (scene lines, then body cues) and the body cues alone, the last session's estimate
                for variant, videos in ((f"world/{person}", footage_dir), (f"world-body/{person}", None)):
                    rows.append({"model": name, "variant": variant, "input": "mediapipe",
                                 **footage.world_rows(fn, data, person, videos)})
    if "humaneva" in parts:
        if say:
            say("HumanEva-I")
        he = viewpoints.humaneva_inputs(load_humaneva(folder("humaneva"), "Validate"))
        rows += [{**r, "variant": "humaneva"} for r in viewpoints.humaneva_rows(lifters, he)]
    for r in rows:
        r.update({"seed": 0, **(info or {}).get(r["model"], {})})
    # Nothing is trained here, so the budget is what every row shares; which lifters and parts an invocation
    # scored is its command line (rows from several invocations merge into one file).
    budget = {"test_stride": test_stride,
              "note": "nothing trained here: each lifter's own training budget is in its checkpoint"}
    return write_suite(report, SUITE, command, "cpu", budget, rows, render)


def main(args: argparse.Namespace, command: str) -> Path:
    parts = tuple(p.strip() for p in args.parts.split(",") if p.strip())
    persons = tuple(p.strip() for p in args.persons.split(",") if p.strip())
    fns, info = lifters_of(args.lifter, args.device, args.skeleton, args.fusion)
    run(fns, parts, args.report, command, args.bench_out, persons, args.footage, args.data, args.test_stride,
        info=info, detector_3d=args.detector_3d)
    return Path(args.report)


def _f(x: Any) -> str:
    return f"{x:.1f}" if isinstance(x, int | float) and x == x else "–"


def render(doc: dict[str, Any]) -> str:
    rows = doc["rows"]
    lines = ["## Lifters on footage no Human3.6M camera saw (`bench wild`)", "",
             *header_lines(doc, f"lifters {', '.join(sorted({r['model'] for r in rows}))}; H36M frame pairs of "
                                f"every {doc['budget']['test_stride']}-th frame")]
    foot = [r for r in rows if str(r.get("variant", "")).startswith("footage/")]
    if foot:
        lines += ["### Pose2Sim four views, MediaPipe 2D (mm; between views: every ordered pair, world axes)", ""]
        lines += ["The man is a real take; the woman is a computer-rendered person composited into the views "
                  "(a synthetic check, labelled `woman (rendered)`). Only the reference columns measure accuracy.", ""]
        lines += table(["Model", "seed", "2D input", "person", "views", "N-MPJPE views", "P-MPJPE views",
                        "bone std (16)", "L/R asymmetry (6)", "MPJVE views", "N-MPJPE ref", "P-MPJPE ref",
                        "limbs P-MPJPE ref", "MPJVE ref"],
                       [[r["model"], str(r["seed"]), r["input"],
                         r["person"] + (" (rendered)" if r["person"] == "woman" else ""), "/".join(r["views"]),
                         _f(r["n_mpjpe_views_mm"]), _f(r["p_mpjpe_views_mm"]), _f(r["bone_std_all_mm"]),
                         _f(r["asymmetry_all_mm"]), _f(r["mpjve_views_mm"]), _f(r["n_mpjpe_ref_mm"]),
                         _f(r["p_mpjpe_ref_mm"]), _f(r.get("p_mpjpe_limbs_ref_mm", float("nan"))),
                         _f(r["mpjve_ref_mm"])]
                        for r in sorted(foot, key=lambda r: (r["person"] != "man", r["model"]))])
    fused = [r for r in rows if str(r.get("variant", "")).startswith("fusion/")]
    if fused:
        mp = {r["person"]: r for r in foot if r["model"] == footage.MEDIAPIPE_WORLD}
        lines += ["", "### Fusion: its inputs and its noise model (bundled video lifter, same frames as above)", "",
                  "Ratios are to MediaPipe's world landmarks on the same person and frames.", ""]

        def ratio(r: dict[str, Any], key: str) -> str:
            base = mp.get(r["person"], {}).get(key)
            return f"{r[key] / base:.2f}" if base else "–"

        lines += table(["Variant", "person", "P-MPJPE ref", "N-MPJPE ref", "limbs P-MPJPE ref", "MPJVE ref",
                        "P ratio", "N ratio"],
                       [[r["model"], r["person"] + (" (rendered)" if r["person"] == "woman" else ""),
                         _f(r["p_mpjpe_ref_mm"]), _f(r["n_mpjpe_ref_mm"]), _f(r["p_mpjpe_limbs_ref_mm"]),
                         _f(r["mpjve_ref_mm"]), ratio(r, "p_mpjpe_ref_mm"), ratio(r, "n_mpjpe_ref_mm")]
                        for r in sorted(fused, key=lambda r: (r["person"] != "man", r["model"]))])
    world = [r for r in rows if str(r.get("variant", "")).startswith(("world/", "world-body/"))]
    if world:
        lines += ["", "### World frame from one view (`bonelift.world`): up direction vs the calibration, feet on the "
                  "floor, views' agreement after a turn about the vertical", "",
                  "Up direction from: `scene` = the scene's vertical lines where found, else the body cues (the "
                  "default); `body` = foot contacts and the body's vertical only.", ""]
        lines += table(["Model", "up from", "person", "views", "up error per view (deg)", "worst",
                        "planted feet off the floor (cm)", "views, yaw-only (mm)", "views, any rotation (mm)"],
                       [[r["model"], "body" if r["variant"].startswith("world-body/") else "scene", r["person"],
                         "/".join(r["views"]), ", ".join(f"{v} {x:.1f}" for v, x in r["up_error_deg"].items()),
                         _f(r["up_error_worst_deg"]), ", ".join(f"{v} {x}" for v, x in r["feet_floor_cm"].items()),
                         _f(r["yaw_only_mm"]), _f(r["any_rotation_mm"])]
                        for r in sorted(world, key=lambda r: (r["person"], r["model"], r["variant"]))])
    views = [r for r in rows if str(r.get("variant", "")).startswith("views/")]
    if views:
        lines += ["### Human3.6M S9/S11 from virtual cameras, detector-like 2D from GT (mm)", ""]
        lines += table(["Model", "seed", "2D input", "cameras", "P1", "P2", "P1 / P1 on h36m cameras", "MPJVE",
                        "bone std"],
                       [[r["model"], str(r["seed"]), f"{r['input']} ({r['two_d']})", r["views"], _f(r["p1_mm"]),
                         _f(r["p2_mm"]), f"{r['p1_vs_h36m']:.2f}" if r.get("p1_vs_h36m") else "–",
                         _f(r["mpjve_mm"]), _f(r["bone_std_mm"])] for r in views])
    he = [r for r in rows if r.get("variant") == "humaneva"]
    if he:
        groups = sorted(he[0]["p2_per_action_mm"])
        lines += ["### HumanEva-I validation, GT 2D, trained on Human3.6M only (P2 mm, HumanEva's 15 joints)", ""]
        lines += table(["Model", "seed", "2D input", *groups, "P2 mean", "P1 mean"],
                       [[r["model"], str(r["seed"]), r["input"], *(_f(r["p2_per_action_mm"].get(g)) for g in groups),
                         _f(r["p2_mm"]), _f(r["p1_mm"])] for r in he])
    return "\n".join(lines)
