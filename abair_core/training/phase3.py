"""Phase III: train the lightweight degradation estimator that picks or blends the adapters."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from abair_core.data.patches import PatchSet
from abair_core.training.batches import Batch, estimator_batches
from abair_core.training.config import EstimatorSchedule
from abair_core.training.distillation import distillation_loss, known_to_teacher, teacher_probabilities
from abair_core.training.loop import MetricsCallback, TrainResult, run_training, select_device


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Phase III's loss: mean cross-entropy of logits (N, K) against soft class targets (N, K) summing to 1."""
    return -(targets * F.log_softmax(logits, dim=1)).sum(1).mean()


def train_estimator(
    estimator: nn.Module,
    class_names: Sequence[str],
    patches: PatchSet,
    schedule: EstimatorSchedule,
    callback: MetricsCallback | None = None,
    resume_path: str | None = None,
    clean_originals: bool = True,
    teacher: nn.Module | None = None,
    distill_weight: float = 0.0,
) -> TrainResult:
    """Soft-target cross-entropy on native-resolution crops of single, mixed and clean patches.

    ``clean_originals`` (see :func:`estimator_batches`) exists for the estimator ablation benchmark.
    With a ``teacher`` (the base estimator, frozen; it must carry ``class_names``) and ``distill_weight`` > 0
    the loss adds ``distill_weight`` times the cross-entropy against the teacher's probabilities on the
    samples whose classes it knows (:mod:`abair_core.training.distillation`).
    """
    device = select_device(schedule.device)
    estimator.to(device)
    for p in estimator.parameters():
        p.requires_grad_(True)
    distilling = teacher is not None and distill_weight > 0
    if distilling:
        teacher.to(device).eval()  # BatchNorm of the statistics: the base's running stats, never updated
        for p in teacher.parameters():
            p.requires_grad_(False)

    def loss_fn(batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        logits = estimator(batch.degraded).float()
        loss = soft_cross_entropy(logits, batch.targets)
        accuracy = (logits.argmax(1) == batch.targets.argmax(1)).float().mean()
        metrics = {"accuracy": float(accuracy)}
        if distilling:
            with torch.no_grad():
                soft = teacher_probabilities(teacher(batch.degraded), teacher.class_names, class_names)
            known = known_to_teacher(batch.targets, teacher.class_names, class_names)
            distill = distillation_loss(logits, soft, known)
            loss = loss + distill_weight * distill
            metrics["distillation"] = float(distill.detach())
        return loss, metrics

    def make_batches(start: int):
        return estimator_batches(patches, list(class_names), schedule.batch_size, schedule.patch_size,
                                 schedule.seed, schedule.mixed_fraction, schedule.clean_fraction, start,
                                 clean_originals, schedule.greyscale_fraction, bool(schedule.balance_classes))

    return run_training("phase3", list(estimator.parameters()), {"estimator": estimator}, loss_fn,
                        make_batches, schedule, device, callback, resume_path)
