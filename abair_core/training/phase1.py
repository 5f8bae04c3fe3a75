"""Phase I: pre-train the backbone on composite degradations with an auxiliary segmentation head."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from abair_core.data.patches import PatchSet
from abair_core.training.batches import Batch, pretrain_batches
from abair_core.training.config import PretrainSchedule
from abair_core.training.loop import MetricsCallback, TrainResult, run_training, select_device


def pretrain_backbone(
    backbone: nn.Module,
    seg_head: nn.Module,
    patches: PatchSet,
    schedule: PretrainSchedule,
    callback: MetricsCallback | None = None,
    resume_path: str | None = None,
) -> TrainResult:
    """L1 restoration + ``seg_weight`` x per-pixel cross-entropy of the degradation label map.

    The segmentation head reads the backbone's full-resolution features, so the backbone learns to
    tell degradations apart region by region (the paper's ablation: +0.08 dB over CutMix alone).
    """
    device = select_device(schedule.device)
    backbone.to(device)
    seg_head.to(device)
    for p in list(backbone.parameters()) + list(seg_head.parameters()):
        p.requires_grad_(True)

    def loss_fn(batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        restored, features = backbone(batch.degraded, return_features=True)
        l1 = F.l1_loss(restored.float(), batch.clean)
        logits = seg_head(features).float()
        seg = F.cross_entropy(logits, batch.labels)
        accuracy = (logits.argmax(1) == batch.labels).float().mean()
        return l1 + schedule.seg_weight * seg, {"l1": float(l1.detach()), "seg_ce": float(seg.detach()),
                                                "seg_accuracy": float(accuracy)}

    def make_batches(start: int):
        return pretrain_batches(patches, schedule.batch_size, schedule.patch_size, schedule.seed,
                                schedule.single_fraction, start, schedule.clean_fraction)

    params = list(backbone.parameters()) + list(seg_head.parameters())
    return run_training("phase1", params, {"backbone": backbone, "seg_head": seg_head}, loss_fn,
                        make_batches, schedule, device, callback, resume_path)
