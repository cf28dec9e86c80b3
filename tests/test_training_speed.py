"""Training recipes (issue 23): the optimiser kernel option and the recipe axis of `bench training-speed`."""

import json
import math

import pytest

from bonelift.bench.training_speed import Variant, parse_variants, variant_name
from bonelift.cli import main
from bonelift.config import TrainConfig
from bonelift.errors import OptionError
from bonelift.models import ModelConfig
from bonelift.training import train

SMALL = ["--models", "baseline", "--train-subjects", "S1", "--test-subjects", "S9", "--epochs", "1", "--stride", "16",
         "--batch-size", "16", "--eval-stride", "8", "--test-stride", "8"]


@pytest.mark.parametrize("impl", ["fused", "foreach"])
def test_a_recipe_trains_with_the_named_kernel(h36m_root, tmp_path, impl):
    cfg = TrainConfig(model=ModelConfig(hidden=16), data_root=str(h36m_root), train_subjects=("S1",),
                      test_subjects=("S9",), stride=2, eval_stride=4, epochs=1, batch_size=64, lr=2e-3,
                      optimizer_impl=impl, out_dir=str(tmp_path / impl), device="cpu")
    trainer = train(cfg, progress=False)
    assert trainer.optimizer.defaults[impl] is True
    assert len(trainer.history) == 1 and math.isfinite(trainer.history[0]["p1_mm"])


def test_the_default_kernel_is_torchs_choice(h36m_root, tmp_path):
    cfg = TrainConfig(model=ModelConfig(hidden=16), data_root=str(h36m_root), train_subjects=("S1",),
                      test_subjects=("S9",), stride=4, eval_stride=8, epochs=1, out_dir="", device="cpu")
    defaults = train(cfg, progress=False).optimizer.defaults
    assert defaults["fused"] is None and defaults["foreach"] is None


def test_variants_parse_and_name_in_full():
    ref, recipe = parse_variants("fp32, fp32-b1024-lr2e-3-fused")
    assert ref == Variant("fp32") and ref.bare
    assert recipe == Variant("fp32", 1024, 2e-3, "fused") and not recipe.bare
    base = TrainConfig()
    assert variant_name(ref.apply(base), recipe=False) == "fp32"
    assert variant_name(ref.apply(base), recipe=True) == "fp32-b256-lr1e-3"
    assert variant_name(recipe.apply(base), recipe=True) == "fp32-b1024-lr2e-3-fused"
    assert parse_variants("bf16-lr0.0005") == [Variant("bf16", lr=5e-4)]
    old = parse_variants("fp32-reference")[0]
    assert old == Variant("fp32", kernels="reference") and not old.bare
    assert old.apply(base).kernels == "reference" and ref.apply(base).kernels == "fast"
    assert variant_name(old.apply(base), recipe=True) == "fp32-b256-lr1e-3-reference"
    for bad in ("fp16", "fp32-b", "fp32-lrx", "fp32-adamw", ""):
        with pytest.raises(OptionError, match="--variants"):
            parse_variants(bad)


def test_bench_recipe_rows_pair_seeds_and_keep_the_precision_part(h36m_root, tmp_path, capsys):
    report = tmp_path / "training_speed.md"
    common = ["bench", "training-speed", "--data", str(h36m_root), "--out", str(tmp_path / "runs"),
              "--report", str(report), *SMALL]
    assert main([*common, "--seeds", "1", "--variants", "fp32"]) == 0  # the precision part (bf16 left out: slow)
    # The recipe part under another budget (two seeds) joins the file without touching the precision rows.
    assert main([*common, "--seeds", "2", "--variants", "fp32,fp32-b32-lr2e-3-fused"]) == 0
    doc = json.loads(report.with_suffix(".json").read_text())
    assert doc["budget"]["seeds"] == 1 and doc["parts"]["recipe"]["budget"]["seeds"] == 2
    rows = {(r["variant"], r["seed"]): r for r in doc["rows"]}
    assert set(rows) == {("fp32", 0), ("fp32-b16-lr1e-3", 0), ("fp32-b16-lr1e-3", 1),
                         ("fp32-b32-lr2e-3-fused", 0), ("fp32-b32-lr2e-3-fused", 1)}
    fast = rows[("fp32-b32-lr2e-3-fused", 1)]
    assert (fast["batch_size"], fast["lr"], fast["optimizer_impl"], fast["reference"]) == (32, 2e-3, "fused",
                                                                                           "fp32-b16-lr1e-3")
    assert fast["samples_per_s"] > 0 and math.isfinite(fast["p1_mm"]) and len(fast["monitor_curve"]) == 1
    ref = rows[("fp32-b16-lr1e-3", 1)]
    assert ref["seconds_to_reference_p1"] is not None  # the reference reaches its own final P1
    text = report.read_text()
    assert "fp32 vs bf16" in text and "Training recipes" in text and "P1 - reference (paired)" in text
    assert "| baseline | fp32-b32-lr2e-3-fused | fp32 | 32 | 0.002 | fused |" in text
    capsys.readouterr()
    assert main([*common, "--variants", "fp32,fp32-b16"]) == 2  # the same recipe twice once the flags fill it in
    assert "names one recipe twice" in capsys.readouterr().err


def test_a_file_of_named_parts_only_still_has_the_schema_header(tmp_path):
    from bonelift.bench.common import write_suite

    row = {"model": "baseline", "variant": "fp32-b16-lr1e-3", "input": "gt", "seed": 0}
    doc = write_suite(tmp_path / "speed.md", "training_speed", "cmd", "cpu", {"seeds": 1}, [row], lambda d: "",
                      part="recipe")
    assert (doc["command"], doc["budget"]) == ("cmd", {"seeds": 1}) and doc["parts"]["recipe"]["command"] == "cmd"
    assert "date" in doc and "machine" in doc
