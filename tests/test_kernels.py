"""Training kernels (`RunConfig.kernels`, issue 23): the fast max-norm layer and dropout compute what the reference
ones do, and a run applies the configured kind to every such module."""

import pytest
import torch

from bonelift.config import TrainConfig
from bonelift.models import ModelConfig, build_model, set_kernels
from bonelift.models.base import Dropout, MaxNormLinear
from bonelift.training import train


def test_fast_max_norm_layer_matches_the_rescaled_weight_in_value_and_gradient():
    torch.manual_seed(0)
    layer = MaxNormLinear(64, 32)
    with torch.no_grad():
        layer.weight.mul_(10.0)  # norm well above 1, so the constraint is active
    x = torch.randn(8, 64)
    results = []
    for fast in (True, False):
        layer.fast = fast
        layer.zero_grad()
        out = layer(x)
        (out**2).sum().backward()
        results.append((out.detach(), layer.weight.grad.clone(), layer.bias.grad.clone()))
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert float(results[0][0].abs().max()) > 0


@pytest.mark.parametrize("p", [0.5, 0.25, 0.1])
def test_fast_dropout_keeps_the_expected_share_and_is_unbiased(p):
    torch.manual_seed(1)
    drop = Dropout(p).train()
    x = torch.ones(400, 1000)
    y = drop(x)
    kept = (y != 0).float().mean().item()
    assert abs(kept - (1 - p)) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01  # inverted dropout: the expectation is unchanged
    assert set(torch.unique(y).tolist()) <= {0.0, y.max().item()}


def test_fast_dropout_is_the_identity_in_eval_mode_and_at_zero():
    x = torch.randn(5, 7)
    assert torch.equal(Dropout(0.5).eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)


def test_reference_dropout_is_torchs_own():
    x = torch.randn(64, 64)
    torch.manual_seed(3)
    want = torch.nn.functional.dropout(x, 0.5, True)
    drop = Dropout(0.5).train()
    drop.fast = False
    torch.manual_seed(3)
    assert torch.equal(drop(x), want)


def test_set_kernels_reaches_every_layer():
    model = build_model(ModelConfig(name="asn", hidden=16))
    set_kernels(model, False)
    flags = [m.fast for m in model.modules() if isinstance(m, (Dropout, MaxNormLinear))]
    assert flags and not any(flags)


@pytest.mark.parametrize("kernels", ["fast", "reference"])
def test_a_run_trains_with_the_configured_kernels(h36m_root, tmp_path, kernels):
    cfg = TrainConfig(model=ModelConfig(hidden=16), data_root=str(h36m_root), stride=4, eval_stride=8, epochs=1,
                      batch_size=32, out_dir=str(tmp_path / kernels), device="cpu", kernels=kernels,
                      train_subjects=("S1",), test_subjects=("S9",))
    trainer = train(cfg, progress=False)
    assert {m.fast for m in trainer.model.modules() if isinstance(m, MaxNormLinear)} == {kernels == "fast"}
    assert trainer.history[0]["p1_mm"] < 1e4
