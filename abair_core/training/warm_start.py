"""Warm start for a new degradation's adapter: begin from the old adapter that already helps most.

A fresh LoRA adapter starts as a no-op, so at step 0 the new task gets the frozen backbone alone; a
small backbone that never saw the degradation in Phase I can damage it by several dB (measured: the
demo's `tiny` backbone takes 4-bit inputs 8.7 dB and JPEG inputs 3.6 dB below the input), and a rank-4
adapter then spends its whole Phase II budget undoing that. The blind model meanwhile already routes
the unseen type to *some* old adapter. Starting the new adapter from the old one that restores the
new type's training patches best makes step 0 at least as good as that adapter; training then only
has to improve on it. It changes nothing else: the old adapter is copied, never modified, and the new
one keeps its own name, file and registry version.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from abair_core.data.patches import PatchSet
from abair_core.metrics import psnr
from abair_core.models.estimator import DegradationEstimator
from abair_core.models.lora import adapter_state_dict, blend, load_adapter_state_dict

__all__ = ["copy_adapter", "pick_warm_start", "score_adapters_on", "start_estimator_from"]


def copy_adapter(model: nn.Module, source: str, target: str) -> None:
    """Make adapter ``target`` an exact copy of adapter ``source`` (added first when missing)."""
    load_adapter_state_dict(model, target, adapter_state_dict(model, source))


def _sample(patches: PatchSet, name: str, samples: int, seed: int) -> np.ndarray:
    chosen = patches.indices(("single",), (name,))
    if chosen.size == 0:
        raise ValueError(f"no single-degradation patches of {name!r} to score warm starts on")
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(chosen, size=min(samples, chosen.size), replace=False))


@torch.no_grad()
def score_adapters_on(backbone: nn.Module, patches: PatchSet, name: str, candidates: Sequence[str],
                      samples: int = 64, seed: int = 0, batch_size: int = 16) -> dict[str, float]:
    """Mean PSNR on ``samples`` of ``name``'s single patches: the input, the backbone alone, each candidate on.

    Keys: ``"input"``, ``"backbone"`` and every candidate adapter's name (fully on, weight 1).
    """
    index = _sample(patches, name, samples, seed)
    degraded = torch.from_numpy(patches.degraded[index]).permute(0, 3, 1, 2).float() / 255.0
    clean = patches.clean[index].astype(np.float32) / 255.0
    device = next(backbone.parameters()).device
    was_training = backbone.training
    backbone.eval()

    def mean_psnr(adapter: str | None) -> float:
        outputs = []
        for start in range(0, len(index), batch_size):
            x = degraded[start:start + batch_size].to(device)
            if adapter is None:
                y = backbone(x)
            else:
                with blend(backbone, [adapter], torch.ones(1, 1)):
                    y = backbone(x)
            outputs.append(y.clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy())
        restored = np.concatenate(outputs)
        return float(np.mean([psnr(r, c) for r, c in zip(restored, clean, strict=True)]))

    scores = {"input": float(np.mean([psnr(d, c) for d, c in
                                      zip(degraded.permute(0, 2, 3, 1).numpy(), clean, strict=True)])),
              "backbone": mean_psnr(None)}
    scores.update({candidate: mean_psnr(candidate) for candidate in candidates})
    backbone.train(was_training)
    return scores


def pick_warm_start(scores: dict[str, float], candidates: Sequence[str]) -> str | None:
    """The candidate adapter with the best score when it beats the backbone alone, else None (start at zero)."""
    ranked = [c for c in candidates if c in scores]
    if not ranked:
        return None
    best = max(ranked, key=lambda c: scores[c])
    return best if scores[best] > scores["backbone"] else None


@torch.no_grad()
def start_estimator_from(estimator: DegradationEstimator, base_state: Mapping[str, torch.Tensor],
                         base_classes: Sequence[str], base_heads: Sequence[str] = (),
                         base_experts: Sequence[str] = ()) -> list[str]:
    """Load a base estimator's weights into ``estimator`` whose classes may differ (one added or removed).

    Every tensor but the classifier's output layer must match in shape and is copied, except the heads and
    experts the base lacks (a new class's, left fresh); the output layer's row (and bias) of each class the base's
    classifier scores is copied by name, a new class keeps its fresh row. Returns the classes carried over.
    Refuses a base of another architecture, naming the tensor.
    """
    output_prefix = next(n for n, m in estimator.named_modules() if m is estimator.output_layer) + "."
    new_heads = [h for h in estimator.head_classes if h not in base_heads]
    new_experts = [e for e in estimator.expert_classes if e not in base_experts]
    fresh = tuple([f"heads.{h}." for h in new_heads] + [f"experts.{e}." for e in new_experts])
    own = estimator.state_dict()
    for key, tensor in own.items():
        if key.startswith(output_prefix) or key.startswith(fresh):
            continue
        if key not in base_state or tuple(base_state[key].shape) != tuple(tensor.shape):
            found = tuple(base_state[key].shape) if key in base_state else "missing"
            raise ValueError(f"the base estimator does not fit this one at {key!r} (base {found}, here "
                             f"{tuple(tensor.shape)}): an estimator warm start needs the same estimator config")
        tensor.copy_(base_state[key])
    base_rows = [c for c in base_classes if c not in base_heads and c not in base_experts]
    rows = estimator.classifier_classes
    for key, tensor in own.items():
        if key.startswith(output_prefix):
            for name in rows:
                if name in base_rows:
                    tensor[rows.index(name)] = base_state[key][base_rows.index(name)]
    return [c for c in estimator.class_names if c in base_classes and c not in new_heads and c not in new_experts]
