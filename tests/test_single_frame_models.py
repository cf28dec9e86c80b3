"""Structure-aware single-frame lifters: methods 1 (HSN), 2 (ASN) and the multi-root head of method 3."""

from __future__ import annotations

import math

import pytest
import torch

from bonelift.errors import BoneliftError
from bonelift.models import MODELS, ModelConfig, build_model
from bonelift.models.asn import ASN, AttentionModule, RandomEnhancement
from bonelift.models.hsn import HSN
from bonelift.models.multiroot import MultiRootBaseline, MultiRootHead, combine_roots, root_joints
from bonelift.models.refinement import RefinementBranch
from bonelift.skeletons import H36M17

NEW_MODELS = ["hsn-single", "hsn-dual-nores", "hsn-dual", "basic-ref", "basic-ref-amstar", "basic-ref-am", "asn"]
LAYOUTS = [("h36m17", "h36m17"), ("h36m16", "h36m17"), ("humaneva15", "humaneva15")]


def _config(name: str, inp: str = "h36m17", out: str = "h36m17", **options) -> ModelConfig:
    return ModelConfig(name=name, input_layout=inp, output_layout=out, hidden=16, dropout=0.5, options=options)


def _randomise_normalizer(model, gen: torch.Generator) -> None:
    n = model.normalizer
    n.in_mean.copy_(torch.randn(n.in_mean.shape, generator=gen))
    n.out_mean.copy_(torch.randn(n.out_mean.shape, generator=gen) * 0.3)
    n.out_std.copy_(torch.rand(n.out_std.shape, generator=gen) * 0.3 + 0.05)


def _random_heads(model) -> None:
    """Give residual refinement heads (zero at initialisation) weights, as training would."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, RefinementBranch):
                m.head.weight.normal_(0.0, 0.3)


def _unit_joints(config: ModelConfig, mask: torch.Tensor) -> set[str]:
    """Names of the output joints whose three units are all set in `mask`."""
    m = mask.view(-1, 3)
    assert bool((m.all(1) | ~m.any(1)).all()), "mask must cover whole joints"
    return {config.out_layout.joints[config.out_joints[r]] for r in range(len(m)) if m[r].all()}


@pytest.mark.parametrize("name", NEW_MODELS + ["baseline"])
@pytest.mark.parametrize("inp,out", LAYOUTS)
def test_models_shapes_and_final_pose(name: str, inp: str, out: str) -> None:
    torch.manual_seed(0)
    multi = name in ("baseline", "asn")
    for options in ({}, {"multi_root": True}) if multi else ({},):
        model = build_model(_config(name, inp, out, **options)).eval()
        x = torch.randn(4, model.in_dim)
        outputs = model(x)
        assert outputs["pose"].shape == (4, model.out_dim)
        assert torch.isfinite(model.loss(outputs, torch.randn(4, model.out_dim))["total"])
        assert model.predict(torch.randn(4, model.config.in_layout.num_joints, 2)).shape == (
            4,
            model.config.out_layout.num_joints,
            3,
        )
        if "refined" in outputs:
            # Hard joints come from the refinement, all other joints from the basic network.
            refined = outputs["refined"] if outputs["refined"].dim() == 3 else outputs["refined"][:, None]
            hard = torch.zeros(model.out_dim, dtype=torch.bool)
            for k in range(refined.shape[1]):
                q = model._q(k) if isinstance(model, HSN) else model.q
                assert torch.equal(outputs["pose"][:, q], refined[:, k][:, q])
                hard |= q
            assert torch.equal(outputs["pose"][:, ~hard], outputs["basic"][:, ~hard])
            assert _unit_joints(model.config, hard) == {
                model.config.out_layout.joints[j] for j in model.config.out_layout.hard_joints
            }


@pytest.mark.parametrize("name", NEW_MODELS)
def test_refinement_loss_touches_only_hard_joints(name: str) -> None:
    torch.manual_seed(1)
    model = build_model(_config(name))
    outputs = model(torch.randn(8, model.in_dim))
    losses = model.loss(outputs, torch.randn(8, model.out_dim))
    (grad,) = torch.autograd.grad(losses["refine"], outputs["refined"])
    grad = grad if grad.dim() == 3 else grad[:, None]
    hard_units = {(H36M17.joints[j]) for j in H36M17.hard_joints}
    for k in range(grad.shape[1]):
        touched = grad[:, k].abs().sum(0) > 0
        assert _unit_joints(model.config, touched) <= hard_units
        assert touched.any()
    # The basic term is not masked: every output unit receives gradient from L1.
    (gb,) = torch.autograd.grad(losses["basic"], outputs["basic"])
    assert bool((gb.abs().sum(0) > 0).all())


@pytest.mark.parametrize("inp,out", LAYOUTS)
def test_dual_channel_membership_by_name(inp: str, out: str) -> None:
    model = build_model(_config("hsn-dual", inp, out))
    cfg = model.config
    reads = [{cfg.out_layout.joints[cfg.out_joints[r]] for r in model._rows(k).tolist()} for k in range(2)]
    left_hard, right_hard = {"LElbow", "LWrist", "LKnee", "LFoot"}, {"RElbow", "RWrist", "RKnee", "RFoot"}
    assert _unit_joints(cfg, model._q(0)) == left_hard
    assert _unit_joints(cfg, model._q(1)) == right_hard
    trunk = {"Thorax", "Neck/Nose", "Head", "Spine"} & set(cfg.out_layout.joints)
    assert reads[0] == left_hard | {"LShoulder", "LHip"} | trunk  # pelvis is the root: zero, not fed
    assert reads[1] == right_hard | {"RShoulder", "RHip"} | trunk
    assert not any(n.startswith("R") for n in reads[0]) and not any(n.startswith("L") for n in reads[1])


@pytest.mark.parametrize("name", ["hsn-dual", "hsn-dual-nores"])
def test_channel_a_never_reads_right_side(name: str) -> None:
    torch.manual_seed(2)
    model = build_model(_config(name)).eval()
    _random_heads(model)
    cfg = model.config
    basic, feature = torch.randn(3, model.out_dim), torch.randn(3, cfg.hidden)
    right = torch.tensor([cfg.out_layout.joints[j].startswith("R") for j in cfg.out_joints]).repeat_interleave(3)
    perturbed = basic + right * torch.randn_like(basic) * 5.0
    before, after = model.refine(basic, feature), model.refine(perturbed, feature)
    q_a, q_b = model._q(0), model._q(1)  # each channel's own (supervised, used) hard joints
    assert torch.equal(before[:, 0, q_a], after[:, 0, q_a])
    assert not torch.allclose(before[:, 1, q_b], after[:, 1, q_b])


def test_residual_connection_feeds_basic_feature() -> None:
    torch.manual_seed(3)
    for name, uses in (("hsn-dual", True), ("hsn-dual-nores", False)):
        model = build_model(_config(name)).eval()
        _random_heads(model)
        basic = torch.randn(2, model.out_dim)
        a, b = model.refine(basic, torch.zeros(2, 16)), model.refine(basic, torch.ones(2, 16))
        assert torch.equal(a, b) != uses


def test_attention_module_matches_hand_computation() -> None:
    am = AttentionModule(num_features=2, width=2)
    with torch.no_grad():
        am.w.copy_(torch.tensor([[0.0, 0.5], [0.2, -0.2]]))
    f_star = torch.tensor([[1.0, 0.0]])
    f1, f2 = torch.tensor([[1.0, 2.0]]), torch.tensor([[4.0, 4.0]])  # ||f1 - F*|| = 2, ||f2 - F*|| = 5

    def sig(v: float) -> float:
        return 1.0 / (1.0 + math.exp(-v))

    # sim1 = (0, 1), sim2 = (1, -1); att = 1 - sigmoid(sim)
    expected = [1.0 + (1 - sig(0.0)) * 1.0 + (1 - sig(1.0)) * 4.0, 0.0 + (1 - sig(1.0)) * 2.0 + (1 - sig(-1.0)) * 4.0]
    out = am(f_star, [f1, f2])
    assert torch.allclose(out, torch.tensor([expected]), atol=1e-6)


def test_attention_module_gradient_reaches_weights() -> None:
    am = AttentionModule(num_features=1, width=3)
    out = am(torch.randn(4, 3), [torch.randn(4, 3)])
    out.sum().backward()
    assert am.w.grad is not None and am.w.grad.abs().sum() > 0


def test_random_enhancement_module() -> None:
    rem = RandomEnhancement(0.5)
    x = torch.randn(200, 8)
    assert torch.equal(rem.eval()(x), x + torch.relu(x))  # dropout is the identity at test time
    torch.manual_seed(4)
    y = rem.train()(x)
    kept = torch.isclose(y, x + 2.0 * torch.relu(x))  # inverted dropout scales survivors by 1/(1-p)
    dropped = torch.isclose(y, x)
    assert bool((kept | dropped).all())
    positive = x > 0
    assert (kept & ~dropped & positive).any() and (dropped & ~kept & positive).any()


def test_rem_only_in_first_basic_layer() -> None:
    asn = build_model(_config("asn"))
    rems = [m for m in asn.modules() if isinstance(m, RandomEnhancement)]
    assert len(rems) == 1 and asn.net.inp[2] is rems[0]
    assert not any(isinstance(m, RandomEnhancement) for m in build_model(_config("basic-ref-am")).modules())


def test_ablation_variants() -> None:
    fusions = {n: build_model(_config(n)).fusion for n in ("basic-ref", "basic-ref-amstar", "basic-ref-am", "asn")}
    assert fusions == {
        "basic-ref": "none",
        "basic-ref-amstar": "plain",
        "basic-ref-am": "attention",
        "asn": "attention",
    }
    assert isinstance(build_model(_config("asn")), ASN)
    assert {"baseline", *NEW_MODELS} <= set(MODELS)


def test_multi_root_choice() -> None:
    cfg = _config("baseline", multi_root=True)
    roots = root_joints(cfg)
    names = [H36M17.joints[r] for r in roots]
    assert names == ["Hip", "Neck/Nose", "LElbow", "RElbow", "LKnee", "RKnee"]
    covered = set(roots) | {p for p, c in H36M17.bones if c in roots} | {c for p, c in H36M17.bones if p in roots}
    assert covered == set(range(17))  # every joint is a root or a neighbour of one (Sec. 3.3)
    he = root_joints(_config("baseline", "humaneva15", "humaneva15", multi_root=True))
    assert "Thorax" in [_config("x", out="humaneva15").out_layout.joints[r] for r in he]


def test_combine_roots_equals_single_root_when_heads_agree() -> None:
    gen = torch.Generator().manual_seed(5)
    pose = torch.randn(3, 17, 3, generator=gen)
    roots = [0, 9, 12, 15, 5, 2]
    relative = torch.stack([pose - pose[:, r : r + 1] for r in roots], dim=1)  # each head exact
    assert torch.allclose(combine_roots(relative, pelvis=0), pose - pose[:, :1], atol=1e-6)
    # With disagreeing heads the result is the average of the zero-mean predictions, re-centred.
    noisy = relative + torch.randn(relative.shape, generator=gen)
    centred = (noisy - noisy.mean(2, keepdim=True)).mean(1)
    assert torch.allclose(combine_roots(noisy, 0), centred - centred[:, :1], atol=1e-6)


def test_multi_root_head_round_trip() -> None:
    """Raw outputs that encode the true pose for every root give zero loss and the true target."""
    gen = torch.Generator().manual_seed(6)
    model = build_model(_config("baseline", multi_root=True))
    assert isinstance(model, MultiRootBaseline)
    _randomise_normalizer(model, gen)
    head: MultiRootHead = model.net.head
    target = torch.randn(4, model.out_dim, generator=gen)
    gt = torch.zeros(4, 17, 3)
    gt[:, model.config.out_joints] = model.normalizer.denorm_out(target)
    rel_mean, scale = head._relative_stats(model.normalizer)
    raw = ((gt[:, head.others] - gt[:, head.roots][:, :, None] - rel_mean) / scale).flatten(-2)
    assert torch.allclose(head.relative(raw, model.normalizer)[:, 2], gt - gt[:, 12:13], atol=1e-5)
    assert head.loss(raw, target, model.normalizer) < 1e-10
    assert torch.allclose(head.pose(raw, model.normalizer), target, atol=1e-4)


def test_multi_root_rejected_on_hsn() -> None:
    with pytest.raises(BoneliftError, match="multi_root"):
        build_model(_config("hsn-dual", multi_root=True))


def test_multi_root_on_asn_uses_head_loss() -> None:
    torch.manual_seed(7)
    model = build_model(_config("asn", multi_root=True))
    outputs = model(torch.randn(4, model.in_dim))
    assert outputs["roots"].shape == (4, 6, 3 * 16)
    losses = model.loss(outputs, torch.randn(4, model.out_dim))
    (g,) = torch.autograd.grad(losses["basic"], model.net.head.heads[3].weight)
    assert g.abs().sum() > 0


@pytest.mark.parametrize("name,options", [("hsn-dual", {}), ("asn", {}), ("baseline", {"multi_root": True})])
def test_training_smoke_and_state_dict_round_trip(name: str, options: dict) -> None:
    """A few Adam steps on a synthetic linear 2D->3D problem reduce the loss; weights reload exactly."""
    torch.manual_seed(8)
    cfg = ModelConfig(name=name, hidden=32, dropout=0.0, max_norm=False, options=options)
    model = build_model(cfg)
    proj = torch.randn(model.in_dim, model.out_dim) / model.in_dim**0.5
    x = torch.randn(256, model.in_dim)
    y = x @ proj
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(60):
        loss = model.loss(model(x), y)["total"]
        first = float(loss.detach()) if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(loss.detach()) < 0.5 * first
    clone = build_model(cfg)
    clone.load_state_dict(model.state_dict())
    model.eval(), clone.eval()
    assert torch.equal(model(x[:5])["pose"], clone(x[:5])["pose"])


# ----- methods 1 and 2 as published (fusion after the last hidden layer, residual refinement, Kaiming)

@pytest.mark.parametrize("name", ["hsn-single", "hsn-dual", "hsn-dual-nores", "basic-ref", "basic-ref-amstar", "asn"])
def test_refined_joints_equal_the_basic_estimate_at_initialisation(name: str) -> None:
    torch.manual_seed(5)
    model = build_model(_config(name)).eval()
    out = model(torch.randn(4, model.in_dim))
    torch.testing.assert_close(out["pose"], out["basic"])
    absolute = build_model(_config(name, refine="absolute")).eval()
    out = absolute(torch.randn(4, absolute.in_dim))
    assert not torch.allclose(out["pose"], out["basic"])  # the named variant predicts joints outright


def test_hsn_single_and_basic_ref_amstar_are_one_network() -> None:
    """Method 1's "wo dual" and method 2's "basic+ref+AM*" (both 66.78 mm) are built alike."""
    torch.manual_seed(6)
    hsn, amstar = build_model(_config("hsn-single")), build_model(_config("basic-ref-amstar"))
    hsn_sd, am_sd = hsn.state_dict(), amstar.state_dict()
    rename = {k: k.replace("channels.0.", "refinement.") for k in hsn_sd}
    assert sorted((rename[k], tuple(v.shape)) for k, v in hsn_sd.items()) == sorted(
        (k, tuple(v.shape)) for k, v in am_sd.items())
    _random_heads(hsn)
    amstar.load_state_dict({rename[k]: v for k, v in hsn.state_dict().items()})
    hsn.eval(), amstar.eval()
    x = torch.randn(5, hsn.in_dim)
    a, b = hsn(x), amstar(x)
    torch.testing.assert_close(a["pose"], b["pose"])
    target = torch.randn(5, hsn.out_dim)
    torch.testing.assert_close(hsn.loss(a, target)["total"], amstar.loss(b, target)["total"])


def test_fusion_point_and_refinement_kind_are_switchable() -> None:
    torch.manual_seed(7)
    last, first = build_model(_config("hsn-dual")), build_model(_config("hsn-dual", fusion_at="first"))
    first.load_state_dict(last.state_dict())  # same parameters, different wiring
    _random_heads(last), first.load_state_dict(last.state_dict())
    last.eval(), first.eval()
    x = torch.randn(3, last.in_dim)
    assert not torch.allclose(last(x)["pose"], first(x)["pose"])
    with pytest.raises(BoneliftError, match="fusion_at"):
        build_model(_config("hsn-dual", fusion_at="middle"))


def test_kaiming_initialisation_is_the_default() -> None:
    torch.manual_seed(8)
    kaiming = build_model(_config("baseline"))
    torch.manual_seed(8)
    default = build_model(_config("baseline", init="pytorch"))
    w_k, w_d = kaiming.net.inp[0].weight, default.net.inp[0].weight
    fan_in = w_k.shape[1]
    assert float(w_k.detach().std()) == pytest.approx(math.sqrt(2.0 / fan_in), rel=0.15)
    assert float(w_d.abs().max()) <= 1.0 / math.sqrt(fan_in) + 1e-6  # PyTorch: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert float(kaiming.net.inp[0].bias.abs().max()) == 0.0


@pytest.mark.parametrize(("init", "norm"), [("kaiming", math.sqrt(2 * 1024)), ("pytorch", math.sqrt(1024 / 3))])
def test_max_norm_divides_the_effective_step_by_the_initial_norm(init: str, norm: float) -> None:
    """Why the `-pytorch-init` bench rows exist: max-norm rescales a 1024-wide weight matrix by 1 / ||W||_F, so
    an Adam step of size lr on W moves the effective weights by lr / ||W||_F: ~45 under Kaiming, ~18.5 under
    PyTorch's default, i.e. the two initialisations train at effective rates ~2.4x apart."""
    torch.manual_seed(9)
    layer = build_model(ModelConfig(hidden=1024, options={"init": init})).net.modules_[0].layers[0][0]
    assert float(layer.weight.detach().norm()) == pytest.approx(norm, rel=0.02)
    x = torch.randn(3, 1024)
    torch.testing.assert_close(layer(x), torch.nn.functional.linear(x, layer.weight / layer.weight.norm(), layer.bias))
