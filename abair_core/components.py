"""Save and load the three kinds of ABAIR components, each a self-describing safetensors file.

A component file carries, in its header, its kind, its config, the input contract and the
fingerprint of what it builds on (an adapter: the backbone's weights; an estimator: the adapters'
files), so a bundle assembled from mismatched parts is refused before a tensor is copied.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from abair_core.checkpoints import (
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    tensors_fingerprint,
)
from abair_core.models.backbone import RestormerBackbone, build_backbone
from abair_core.models.config import BackboneConfig
from abair_core.models.estimator import DegradationEstimator, EstimatorConfig
from abair_core.models.lora import (
    AdapterConfig,
    LoRAConv2d,
    adapter_names,
    adapter_state_dict,
    add_adapter,
    inject_adapters,
    load_adapter_state_dict,
    lora_modules,
)

INPUT_CONTRACT = {"color": "RGB", "dtype": "float32", "range": [0.0, 1.0], "layout": "NCHW", "pad_multiple": 8}


def base_state_dict(backbone: nn.Module) -> dict[str, torch.Tensor]:
    """The backbone's own weights with any LoRA wrappers unwrapped to the plain conv names."""
    wrappers = lora_modules(backbone)
    if any(w.merged for w in wrappers.values()):
        raise RuntimeError("unmerge the adapters before saving the backbone")
    state: dict[str, torch.Tensor] = {}
    for key, value in backbone.state_dict().items():
        if ".lora_a." in key or ".lora_b." in key:
            continue
        state[key.replace(".base.", ".")] = value.detach().cpu().contiguous()
    return state


def backbone_fingerprint(backbone: nn.Module) -> str:
    """The fingerprint adapters record: the backbone's base weights, independent of injected adapters."""
    return tensors_fingerprint(base_state_dict(backbone))


def save_backbone(uri: str, backbone: RestormerBackbone, extra: Mapping[str, Any] | None = None) -> str:
    """Write the backbone's base weights with its config; returns its fingerprint."""
    metadata = {"kind": "backbone", "class": type(backbone).__name__, "config": backbone.config.model_dump(),
                "contract": INPUT_CONTRACT, **(extra or {})}
    return save_checkpoint(uri, base_state_dict(backbone), metadata)


def load_backbone(uri: str) -> tuple[RestormerBackbone, str]:
    """Build a backbone from a backbone file; returns it and its fingerprint."""
    tensors, metadata = load_checkpoint(uri, expect={"kind": "backbone"})
    backbone = build_backbone(BackboneConfig.model_validate(metadata["config"]))
    backbone.load_state_dict(tensors)
    return backbone, tensors_fingerprint(tensors)


def ensure_adapter_slots(backbone: nn.Module, config: AdapterConfig) -> None:
    """Inject LoRA wrappers once (a no-op when they are already there with the same rank/alpha)."""
    wrappers: dict[str, LoRAConv2d] = lora_modules(backbone)
    if not wrappers:
        inject_adapters(backbone, config)
        return
    existing = next(iter(wrappers.values()))
    if (existing.rank, existing.alpha) != (config.rank, config.alpha):
        raise ValueError(f"adapter rank/alpha {config.rank}/{config.alpha} differ from the injected "
                         f"{existing.rank}/{existing.alpha}")


def save_adapter(uri: str, backbone: nn.Module, name: str, config: AdapterConfig, backbone_fp: str,
                 extra: Mapping[str, Any] | None = None) -> str:
    """Write adapter ``name`` (its tensors only) tagged with the backbone fingerprint it was trained on."""
    metadata = {"kind": "adapter", "adapter_id": name, "adapter_config": config.model_dump(),
                "backbone_fingerprint": backbone_fp, **(extra or {})}
    return save_checkpoint(uri, adapter_state_dict(backbone, name), metadata)


def load_adapter(uri: str, backbone: nn.Module, backbone_fp: str, name: str | None = None) -> tuple[str, str]:
    """Add the adapter stored at ``uri`` to ``backbone`` (refusing a different backbone); returns (id, fp)."""
    metadata = read_checkpoint_metadata(uri)
    adapter_id = name or metadata.get("adapter_id")
    tensors, metadata = load_checkpoint(uri, expect={"kind": "adapter", "backbone_fingerprint": backbone_fp})
    ensure_adapter_slots(backbone, AdapterConfig.model_validate(metadata["adapter_config"]))
    if adapter_id not in adapter_names(backbone):
        add_adapter(backbone, adapter_id)
    load_adapter_state_dict(backbone, adapter_id, tensors)
    return adapter_id, tensors_fingerprint(tensors)


def save_estimator(uri: str, estimator: DegradationEstimator, adapter_fps: Mapping[str, str],
                   extra: Mapping[str, Any] | None = None) -> str:
    """Write the estimator with its class names and the fingerprints of the adapters it steers."""
    metadata = {"kind": "estimator", "estimator_config": estimator.config.model_dump(),
                "class_names": list(estimator.class_names), "head_classes": list(estimator.head_classes),
                "experts": {name: list(classes) for name, classes in estimator.expert_classes.items()},
                "adapter_fingerprints": dict(adapter_fps),
                **(extra or {})}
    state = {k: v.detach().cpu().contiguous() for k, v in estimator.state_dict().items()}
    return save_checkpoint(uri, state, metadata)


#: What an estimator file written before a config field existed was built with (registered versions keep loading).
LEGACY_ESTIMATOR_DEFAULTS = {"statistics": False, "hidden": 0, "stem": "full", "plausibility": {"enabled": False},
                             "sw_sharpness": 1.0}
#: Gate settings added after files with gates were written: such a file loads with the newer gates off and
#: the rules it was evaluated with (a vetoed expert's share to clean).
LEGACY_PLAUSIBILITY_DEFAULTS = {"jpeg_min_blockiness": None, "bit_depth_max_level_fill": None, "expert_veto": "clean"}


def stored_estimator_config(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """An estimator file's config as it behaves: fields the file predates take their legacy values."""
    stored = dict(metadata["estimator_config"])
    for key, legacy in LEGACY_ESTIMATOR_DEFAULTS.items():  # files written before the field existed
        stored.setdefault(key, legacy)
    stored["plausibility"] = {**LEGACY_PLAUSIBILITY_DEFAULTS, **stored["plausibility"]}
    return stored


def load_estimator(uri: str, adapter_fps: Mapping[str, str] | None = None) -> DegradationEstimator:
    """Build the estimator from its file; with ``adapter_fps``, refuse one trained for other adapters."""
    tensors, metadata = load_checkpoint(uri, expect={"kind": "estimator"})
    if adapter_fps is not None:
        recorded = metadata.get("adapter_fingerprints", {})
        stale = sorted(n for n, fp in adapter_fps.items() if recorded.get(n) != fp)
        if stale:
            raise ValueError(f"estimator {uri} was trained for other versions of adapters {stale}; retrain it")
    estimator = DegradationEstimator(EstimatorConfig.model_validate(stored_estimator_config(metadata)),
                                     metadata["class_names"],
                                     metadata.get("head_classes", ()),  # files before heads existed have none
                                     metadata.get("experts", {}))
    estimator.load_state_dict(tensors)
    return estimator.eval()  # BatchNorm of the statistics: running stats at inference


def class_names_for(adapters: Sequence[str]) -> list[str]:
    """The estimator vocabulary: ``clean`` first, then the adapter ids in order."""
    return ["clean", *adapters]
