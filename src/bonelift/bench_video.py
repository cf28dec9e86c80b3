"""`bonelift bench video`: the VideoPose3D baseline, method 5, its Table 4 ablation rows and the causal
variants, trained under one budget (same receptive field, width, epochs, stride, seed) in one run,
scored on every test frame (or frame pairs of every N-th frame) and written as one Markdown section
(plus JSON) atomically. A row already scored under the same budget in the output folder is reused, so
rows can be trained by separate (or parallel) invocations and collected by a final one.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
import time
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from bonelift.errors import BoneliftError, atomic_path
from bonelift.evaluation import input_label
from bonelift.models.tcn import VideoModelConfig
from bonelift.temporal import VideoTrainConfig, VideoTrainer, evaluate_video_model, streaming_latency_ms
from bonelift.training import load_split

_OFF = {"ml": False, "bone_att": False, "aug": False, "jsl": False, "lsc": False}
# name: (label, model, options, causal). The ablation rows add one part at a time (Table 4).
ROWS: dict[str, tuple[str, str, dict[str, Any], bool]] = {
    "tcn": ("TCN baseline (VideoPose3D)", "tcn", {}, False),
    "af": ("AF", "bone", dict(_OFF), False),
    "ml": ("AF +ML", "bone", {**_OFF, "ml": True}, False),
    "boneatt": ("AF +ML +BoneAtt", "bone", {**_OFF, "ml": True, "bone_att": True}, False),
    "aug": ("AF +ML +BoneAtt +AUG", "bone", {**_OFF, "ml": True, "bone_att": True, "aug": True}, False),
    "jsl": ("AF +ML +BoneAtt +AUG +JSL", "bone", {"lsc": False}, False),
    "bone": ("method 5 (+LSC, full)", "bone", {}, False),
    "tcn-causal": ("TCN baseline, causal", "tcn", {}, True),
    "bone-causal": ("method 5, causal", "bone", {}, True),
}
DEFAULT_ROWS = ("tcn", "bone", "tcn-causal", "bone-causal")


def run_benchmark(base: VideoTrainConfig, rows: list[str], report: Path, command: str, eval_stride: int = 1,
                  latency_frames: int = 300, progress: bool = True) -> dict[str, Any]:
    """Train and score every row under `base`'s budget; write `report` (.md) and its .json atomically."""
    unknown = [r for r in rows if r not in ROWS]
    if unknown:
        raise BoneliftError(f"unknown benchmark row(s) {unknown} (known: {', '.join(ROWS)})")
    splits: tuple[list, list] | None = None  # loaded on the first row that needs training
    results: dict[str, Any] = {}
    for name in rows:
        label, model_name, options, causal = ROWS[name]
        model = replace(base.model, name=model_name, causal=causal, options={**base.model.options, **options})
        if model_name == "tcn":
            model.options = {}
        cfg = replace(base, model=model, out_dir=str(Path(base.out_dir) / name))
        done = Path(cfg.out_dir) / "bench_row.json"
        if done.is_file():  # scored by an earlier (or parallel) invocation with the same budget
            saved = json.loads(done.read_text())
            if _comparable(saved["config"]) == _comparable(cfg.to_dict()) and saved["eval_stride"] == eval_stride:
                results[name] = saved["row"]
                continue
        if progress:
            print(f"[bench video] {name}: {label}", file=sys.stderr)
        if splits is None:
            splits = (load_split(base, base.train_subjects), load_split(base, base.test_subjects))  # type: ignore[arg-type]
        test_seqs = splits[1]
        t0 = time.time()
        trainer = VideoTrainer(cfg, progress=progress, splits=splits)
        trainer.fit()
        train_s = time.time() - t0
        res = evaluate_video_model(trainer.model, test_seqs, cfg, stride=eval_stride, device=trainer.device, progress=False)
        row = {"label": label, "model": model_name, "causal": causal, "options": options, "train_seconds": train_s,
               "p1": res["p1"]["average"], "p2": res["p2"]["average"], "mpjve": res["mpjve"],
               "bone_std": res["bone_std"]["average"], "bone_rmse": res["bone_rmse"]["average"], "frames": res["frames"]}
        if causal:
            cpu_model = trainer.model.to("cpu").eval()
            row["latency_ms"] = streaming_latency_ms(cpu_model, test_seqs[0].screen, latency_frames)
        results[name] = row
        with atomic_path(done) as tmp:
            tmp.write_text(json.dumps({"config": _comparable(cfg.to_dict()), "eval_stride": eval_stride, "row": row}, indent=2))
        _write(report, base, results, command, eval_stride)  # after every trained row: partial results survive
    if results:
        _write(report, base, results, command, eval_stride)
    return results


def _comparable(config: dict[str, Any]) -> dict[str, Any]:
    """A run's config as JSON types, without the fields that do not change its result."""
    d = json.loads(json.dumps(config))
    d.pop("device", None)
    for key in ("confidence", "input_layout", "output_layout"):  # resolved from the data when training starts
        d["model"].pop(key, None)
    return d


def _write(report: Path, base: VideoTrainConfig, results: dict[str, Any], command: str, eval_stride: int) -> None:
    m = base.model
    scored = "every frame" if eval_stride == 1 else f"frame pairs (t, t+1) for every {eval_stride}-th t"
    lines = [
        f"## Video lifters: TCN baseline vs method 5 ({input_label(base.keypoints)}, {m.receptive_field} frames)", "",
        f"- Command: `{command}`",
        f"- Machine: {platform.machine()}, {os.cpu_count()} CPU cores, {torch.get_num_threads()} torch thread(s), "
        f"{'CUDA ' + torch.cuda.get_device_name() if torch.cuda.is_available() and base.device != 'cpu' else 'CPU'}; "
        f"date {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}",
        f"- Budget per row: receptive field {m.receptive_field}, {m.channels} channels, {base.epochs} epoch(s), "
        f"every {base.stride}-th training window, batch {base.batch_size}, lr {base.lr} x {base.lr_decay}/epoch, "
        f"flip train/test {base.flip}/{base.test_flip}, seed {base.seed}; final (last-epoch) weights.",
        f"- Test: Human3.6M {'/'.join(base.test_subjects)}, {scored} of every sequence present "
        "(sequence ends edge-padded); P1/P2 averaged over actions, MPJVE and bone-length std over frames in mm. "
        "Streaming latency: `StreamingLifter.push` per frame on CPU, batch 1.", "",
        "| Row | 2D input | P1 (mm) | P2 (mm) | MPJVE (mm) | bone-length std (mm) | bone RMSE (mm) | train (s) | stream (ms/frame) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    inp = input_label(base.keypoints)
    for r in results.values():
        lat = f"{r['latency_ms']:.2f}" if "latency_ms" in r else "–"
        lines.append(f"| {r['label']} | {inp} | {r['p1']:.1f} | {r['p2']:.1f} | {r['mpjve']:.2f} | {r['bone_std']:.1f} | "
                     f"{r['bone_rmse']:.1f} | {r['train_seconds']:.0f} | {lat} |")
    if "tcn" in results and "bone" in results:
        d = results["tcn"]["p1"] - results["bone"]["p1"]
        lines += ["", f"Method 5 vs TCN ({inp}, same run): P1 {'-' if d >= 0 else '+'}{abs(d):.1f} mm; bone-length std "
                  f"{results['tcn']['bone_std']:.1f} -> {results['bone']['bone_std']:.1f} mm."]
    report = Path(report)
    with atomic_path(report) as tmp:
        tmp.write_text("\n".join(lines) + "\n")
    with atomic_path(report.with_suffix(".json")) as tmp:
        tmp.write_text(json.dumps({"config": base.to_dict(), "command": command, "rows": results}, indent=2))


def command_line(argv: list[str]) -> str:
    return "bonelift " + " ".join(shlex.quote(a) for a in argv)


__all__ = ["DEFAULT_ROWS", "ROWS", "VideoModelConfig", "command_line", "run_benchmark"]
