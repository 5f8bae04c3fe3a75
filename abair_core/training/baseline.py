"""The all-in-one baseline (the paper's "Restormer" row): the same backbone preset, no adapters.

It trains on what ABAIR's phases see, the region composites of Phase I and the single-degradation
patches of Phase II (plus the clean patches), with an L1 loss and no segmentation head, under an
**equal training budget**: optimizer steps x batch x patch pixels of Phase I plus every Phase II
adapter (DESIGN.md). Batch and patch size are Phase I's; the steps follow from the budget, and the
share of single-degradation samples equals Phase II's share of the budget.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from abair_core.checkpoints import read_checkpoint_metadata
from abair_core.data.patches import PatchSet
from abair_core.models.backbone import RestormerBackbone
from abair_core.models.factory import build_model
from abair_core.training.batches import Batch, pretrain_batches
from abair_core.training.config import OptimizerSchedule, PretrainSchedule, TrainConfig
from abair_core.training.loop import MetricsCallback, TrainResult, run_training, select_device

__all__ = [
    "BaselineBudget",
    "architecture_key",
    "backbone_architecture_key",
    "baseline_budget",
    "baseline_schedule",
    "train_baseline",
    "train_baseline_from_photos",
]


@dataclass(frozen=True)
class BaselineBudget:
    """Training budgets in optimizer steps x batch x patch pixels."""

    phase1: int
    phase2: int
    steps: int
    batch_size: int
    patch_size: int

    @property
    def target(self) -> int:
        """ABAIR's budget: Phase I + every Phase II adapter."""
        return self.phase1 + self.phase2

    @property
    def spent(self) -> int:
        """What the baseline's schedule spends (the target rounded up to whole steps)."""
        return self.steps * self.batch_size * self.patch_size**2

    def to_dict(self) -> dict[str, int]:
        return {"phase1": self.phase1, "phase2": self.phase2, "target": self.target, "spent": self.spent,
                "steps": self.steps, "batch_size": self.batch_size, "patch_size": self.patch_size}


def _pixels(schedule: OptimizerSchedule) -> int:
    return schedule.steps * schedule.batch_size * schedule.patch_size**2


def baseline_budget(config: TrainConfig) -> BaselineBudget:
    """Phase I + len(degradations) x Phase II pixels, spent at Phase I's batch and patch size."""
    phase1 = _pixels(config.phase1)
    phase2 = len(config.degradations) * _pixels(config.phase2)
    per_step = config.phase1.batch_size * config.phase1.patch_size**2
    steps = math.ceil((phase1 + phase2) / per_step)
    return BaselineBudget(phase1, phase2, steps, config.phase1.batch_size, config.phase1.patch_size)


def baseline_schedule(config: TrainConfig) -> PretrainSchedule:
    """Phase I's schedule stretched to the baseline budget; singles get Phase II's share of samples."""
    budget = baseline_budget(config)
    share = budget.phase2 / budget.target if budget.target else 0.0
    return config.phase1.model_copy(update={"steps": budget.steps, "single_fraction": share,
                                            "seg_weight": 0.0,
                                            "warmup_steps": min(config.phase1.warmup_steps, budget.steps)})


def train_baseline(
    config: TrainConfig,
    patches: PatchSet,
    callback: MetricsCallback | None = None,
    resume_path: str | None = None,
) -> tuple[RestormerBackbone, TrainResult, BaselineBudget]:
    """Train a fresh backbone of ``config.model`` all-in-one; returns it, the run result and the budget."""
    schedule = baseline_schedule(config)
    budget = baseline_budget(config)
    torch.manual_seed(schedule.seed)
    backbone = build_model(config.model)
    device = select_device(schedule.device)
    backbone.to(device)
    for p in backbone.parameters():
        p.requires_grad_(True)

    def loss_fn(batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        l1 = F.l1_loss(backbone(batch.degraded).float(), batch.clean)
        return l1, {"l1": float(l1.detach())}

    def make_batches(start: int):
        return pretrain_batches(patches, schedule.batch_size, schedule.patch_size, schedule.seed,
                                schedule.single_fraction, start)

    result = run_training("baseline", list(backbone.parameters()), {"backbone": backbone}, loss_fn,
                          make_batches, schedule, device, callback, resume_path)
    return backbone.cpu().eval(), result, budget


def architecture_key(config: Mapping[str, Any]) -> str:
    """A short hash of a backbone config's architecture (the preset label and memory layout aside).

    A baseline is comparable with a bundle only when their backbones have the same architecture.
    """
    kept = {k: v for k, v in dict(config).items() if k not in ("preset", "channels_last")}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=list).encode()).hexdigest()[:16]


def backbone_architecture_key(uri: str) -> str:
    """:func:`architecture_key` of a backbone file, read from its header only."""
    return architecture_key(read_checkpoint_metadata(uri)["config"])


def train_baseline_from_photos(
    config: TrainConfig,
    photos: Mapping[str, Any],
    degradations: Mapping[str, Any],
    out_file: str,
    callback: MetricsCallback | None = None,
    resume_path: str | None = None,
) -> dict[str, Any]:
    """Synthesize the training pool, train the baseline and save it as a backbone file.

    The file's header records ``baseline`` (the budget) and the training config name; returns the
    budget, steps, seconds and last metrics.
    """
    from abair_core.components import save_backbone
    from abair_core.training.recipe import synthesize_pool

    patches = synthesize_pool(photos, degradations, config)
    backbone, result, budget = train_baseline(config, patches, callback, resume_path)
    save_backbone(out_file, backbone, extra={"baseline": budget.to_dict(), "train_config": config.name})
    return {"budget": budget.to_dict(), "steps": result.steps, "seconds": result.seconds,
            "metrics": dict(result.metrics), "preset": backbone.config.preset,
            "architecture": architecture_key(backbone.config.model_dump())}
