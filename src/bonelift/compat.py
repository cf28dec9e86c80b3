"""Everything bonelift keeps so files written by earlier versions still load, in one place.

Each entry names what changed and what the old files meant, so a migration is found (and one day
dropped) here instead of in the module it concerns. Only foundations are imported: the model files'
state-dict hooks and `config_from_dict` / `checkpoints.load` call in.

- Run configurations saved before a field existed: `LEGACY_FIELDS`, the value the older code behaved
  as (`legacy_fields`), when it differs from the default of new runs.
- TP-Net files of the `bonelift-tpnet-v1` format (before one checkpoint format served every kind):
  `upgrade_checkpoint`.
- Method 3 lifters saved before the head was shared with the image CNN, or before its per-root output
  statistics: `method3_head_keys` (a load_state_dict pre-hook).
- `bone` checkpoints of the design before the authors' (concat fusion, an expand layer on the upper
  sub-network): refused with a clear error by `refuse_old_bone`, since their shapes cannot be mapped.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from bonelift.errors import BoneliftError

# (configuration class, field): what a configuration saved before the field existed meant.
LEGACY_FIELDS: dict[tuple[str, str], Any] = {
    # anatomical losses supervised the 3D-labelled batch too (bonelift before December 2026)
    ("TrainConfig", "losses_on"): "all",
    # TP-Net windows used every frame before `frame_step`
    ("TPNetConfig", "frame_step"): 1,
    # torch's dropout and rescaled max-norm weights before the fast training kernels (so a resumed run stays exact)
    ("RunConfig", "kernels"): "reference",
}
TPNET_V1 = "bonelift-tpnet-v1"
METHOD3_HEAD_LAYERS = ("fc1_2d", "fc2_2d", "fc1_3d", "fc_probs", "fc2_3d")  # once top-level, now under `head.`


def legacy_fields(cls: type) -> dict[str, Any]:
    """Field name -> the value configurations of class `cls` (or of a base class) saved before it existed meant."""
    out: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        out.update({field: value for (owner, field), value in LEGACY_FIELDS.items() if owner == klass.__name__})
    return out


def upgrade_checkpoint(ckpt: Any, fmt: str, tpnet_kind: str) -> Any:
    """A loaded checkpoint in the current format `fmt`: `bonelift-tpnet-v1` files become `tpnet_kind` ones."""
    if isinstance(ckpt, dict) and ckpt.get("format") == TPNET_V1 and isinstance(ckpt.get("config"), dict):
        return {
            "format": fmt,
            "kind": tpnet_kind,
            "train_config": {"model": ckpt["config"]},
            "model": ckpt.get("model"),
        }
    return ckpt


def method3_head_keys(module: nn.Module, state_dict: dict[str, Any], prefix: str, *_: Any) -> None:
    """Checkpoints written before the head was shared hold its layers at the top level: move them under `head.`;
    those written before the per-root output statistics get the identity ones (their outputs were unscaled)."""
    for key in list(state_dict):
        if key.startswith(prefix) and key[len(prefix):].split(".", 1)[0] in METHOD3_HEAD_LAYERS:
            state_dict[prefix + "head." + key[len(prefix):]] = state_dict.pop(key)
    for name in ("target_mean", "target_std"):
        state_dict.setdefault(f"{prefix}head.{name}", getattr(module.head, name).new_full(
            getattr(module.head, name).shape, 0.0 if name == "target_mean" else 1.0))


def refuse_old_bone(state_dict: Any) -> None:
    """A clear refusal of `bone` checkpoints of the earlier design, whose parameter shapes no longer fit."""
    if any(k.startswith("joint_head.") or k.startswith("direction.1.expand.") for k in state_dict):
        raise BoneliftError(
            "this `bone` checkpoint predates the authors' design (product fusion, expand-free upper "
            "sub-network); its parameter shapes no longer fit - retrain it"
        )
