"""Reports: the papers' tables for one model (Markdown + JSON), and the names every table row uses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bonelift.datasets import ACTION_ABBREVIATIONS, CANONICAL_ACTIONS
from bonelift.io import atomic_path


def input_label(keypoints: str) -> str:
    """How reports name a 2D input source on every row: "GT 2D", "SH 2D"."""
    return f"{keypoints.upper()} 2D"


def input_key(keypoints: str) -> str:
    """The `input` value of a results row: gt, sh, render, mediapipe (a detection file: its stem)."""
    return Path(keypoints).stem.lower() if keypoints.endswith(".npz") else keypoints.lower()


def _row(values: dict[str, float], keys: list[str]) -> str:
    return " | ".join(f"{values[k]:.1f}" if k in values else "–" for k in keys)


def markdown_report(results: dict[str, Any], title: str) -> str:
    """The papers' tables for one model: per-action P1/P2, hard joints, limb lengths, validity.

    Every row names the model and its 2D input, so a row copied out of the table keeps its meaning.
    """
    source = results.get("input") or input_label(str(results.get("keypoints", "?")))  # image models: "render images"
    who = f"{results.get('model', 'model')} ({source})"
    actions = [a for a in CANONICAL_ACTIONS if a in results["p1"]]
    short = [ACTION_ABBREVIATIONS.get(a, a) for a in actions]
    lines = [f"### {title}", ""]
    lines += ["| Model, protocol | " + " | ".join(short) + " | Avg |", "|---" * (len(actions) + 2) + "|"]
    for proto, label in (("p1", "P1 (MPJPE)"), ("p2", "P2 (P-MPJPE)")):
        lines.append(
            f"| {who} {label} | " + _row(results[proto], actions) + f" | **{results[proto]['average']:.1f}** |"
        )
    lines += [
        "",
        f"{who}: {results['frames']} frames in {results['sequences']} sequences; frame-averaged P1 "
        f"{results['p1']['frame_average']:.1f} mm; N-MPJPE {results['n_mpjpe']:.1f} mm; "
        f"MPJVE {results['mpjve']:.2f} mm; "
        f"PCK@150 {results['pck150']:.1f} %; AUC {results['auc']:.1f}.",
        "",
    ]
    hard = [k for k in results["hard_joints"] if k != "average"]
    lines += ["| Hard joints (mm) | " + " | ".join(hard) + " | Avg |", "|---" * (len(hard) + 2) + "|"]
    lines.append(
        f"| {who} MPJPE | " + _row(results["hard_joints"], hard) + f" | {results['hard_joints']['average']:.1f} |"
    )
    limbs = [k for k in results["bone_rmse"] if k != "average"]
    lines += ["", "| Limbs (mm) | " + " | ".join(limbs) + " | Avg |", "|---" * (len(limbs) + 2) + "|"]
    lines.append(
        f"| {who} bone-length RMSE | "
        + _row(results["bone_rmse"], limbs)
        + f" | {results['bone_rmse']['average']:.1f} |"
    )
    lines.append(
        f"| {who} bone-length std over frames | "
        + _row(results["bone_std"], limbs)
        + f" | {results['bone_std']['average']:.1f} |"
    )
    ill = results["illegal_angles_pct"]
    sym = results["symmetry"]
    lines += [
        "",
        f"{who}: left/right asymmetry (mm): "
        + ", ".join(f"{k} {v:.1f}" for k, v in sym.items())
        + ". Outside the normal range of motion (% frames): "
        + ", ".join(f"{k} {v:.2f}" for k, v in results["range_of_motion_pct"].items())
        + ". Bent backwards by eq. 1's test (the angle loss's statistic, % frames): "
        + ", ".join(f"{k} {v:.2f}" for k, v in ill.items())
        + ".",
        "",
    ]
    return "\n".join(lines)


def write_report(results: dict[str, Any], out_prefix: str | Path, title: str) -> tuple[Path, Path]:
    """Write `<prefix>.json` and `<prefix>.md` atomically; returns both paths."""
    prefix = Path(out_prefix)
    js, md = prefix.with_suffix(".json"), prefix.with_suffix(".md")
    with atomic_path(js) as tmp:
        tmp.write_text(json.dumps(results, indent=2))
    with atomic_path(md) as tmp:
        tmp.write_text(markdown_report(results, title))
    return js, md
