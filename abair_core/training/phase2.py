"""Phase II: train one LoRA adapter on its own degradation with the backbone frozen."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from abair_core.data.patches import PatchSet
from abair_core.models.lora import adapter_names, adapter_parameters, blend
from abair_core.training.batches import Batch, adapter_batches
from abair_core.training.config import AdapterSchedule
from abair_core.training.loop import MetricsCallback, TrainResult, run_training, select_device


def freeze_for_adapter(backbone: nn.Module, name: str) -> list[nn.Parameter]:
    """Freeze everything but adapter ``name``; returns its parameters (and checks nothing else trains)."""
    if name not in adapter_names(backbone):
        raise KeyError(f"adapter '{name}' is not in the model (present: {adapter_names(backbone)})")
    own = list(adapter_parameters(backbone, name))
    own_ids = {id(p) for p in own}
    for p in backbone.parameters():
        p.requires_grad_(id(p) in own_ids)
    trainable = [p for p in backbone.parameters() if p.requires_grad]
    if {id(p) for p in trainable} != own_ids:
        raise RuntimeError(f"phase II must train only adapter '{name}'")
    return own


def train_adapter(
    backbone: nn.Module,
    name: str,
    patches: PatchSet,
    schedule: AdapterSchedule,
    callback: MetricsCallback | None = None,
    resume_path: str | None = None,
) -> TrainResult:
    """L1 restoration of degradation ``name`` through ``W + s·B·A`` of that adapter alone."""
    device = select_device(schedule.device)
    backbone.to(device)
    params = freeze_for_adapter(backbone, name)

    def loss_fn(batch: Batch) -> tuple[torch.Tensor, dict[str, float]]:
        weights = torch.ones(batch.degraded.shape[0], 1, device=batch.degraded.device)
        with blend(backbone, [name], weights):
            restored = backbone(batch.degraded)
        l1 = F.l1_loss(restored.float(), batch.clean)
        return l1, {"l1": float(l1.detach())}

    def make_batches(start: int):
        return adapter_batches(patches, name, schedule.batch_size, schedule.patch_size, schedule.seed,
                               schedule.identity_share(name), start, schedule.mild_fraction)

    return run_training(f"phase2-{name}", params, {"backbone": backbone}, loss_fn, make_batches, schedule,
                        device, callback, resume_path)
