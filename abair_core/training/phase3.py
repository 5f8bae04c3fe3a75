"""Phase III: train the lightweight degradation estimator that picks or blends the adapters."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from abair_core.data.patches import PatchSet
from abair_core.training.batches import Batch, estimator_batches
from abair_core.training.config import EstimatorSchedule
from abair_core.training.loop import MetricsCallback, TrainResult, run_training, select_device


def train_estimator(
    estimator: nn.Module,
    class_names: Sequence[str],
    patches: PatchSet,
    schedule: EstimatorSchedule,
    callback: MetricsCallback | None = None,
    resume_path: str | None = None,
    clean_originals: bool = True,
) -> TrainResult:
    """Soft-target cross-entropy on native-resolution crops of single, mixed and clean patches.

    ``clean_originals`` (see :func:`estimator_batches`) exists for the estimator ablation benchmark.
    """
    device = select_device(schedule.device)
    estimator.to(device)
    for p in estimator.parameters():
        p.requires_grad_(True)

    def loss_fn(batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        logits = estimator(batch.degraded).float()
        loss = -(batch.targets * F.log_softmax(logits, dim=1)).sum(1).mean()
        accuracy = (logits.argmax(1) == batch.targets.argmax(1)).float().mean()
        return loss, {"accuracy": float(accuracy)}

    def make_batches(start: int):
        return estimator_batches(patches, list(class_names), schedule.batch_size, schedule.patch_size,
                                 schedule.seed, schedule.mixed_fraction, schedule.clean_fraction, start,
                                 clean_originals, schedule.greyscale_fraction, bool(schedule.balance_classes))

    return run_training("phase3", list(estimator.parameters()), {"estimator": estimator}, loss_fn,
                        make_batches, schedule, device, callback, resume_path)
