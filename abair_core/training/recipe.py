"""The three phases as building blocks: what the flows run step by step and a notebook runs in one go."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from abair_core.components import class_names_for, ensure_adapter_slots
from abair_core.data.patches import PatchSet
from abair_core.data.synthesis import synthesize_patches
from abair_core.degradations.base import Degradation
from abair_core.models.abair import ABAIR
from abair_core.models.backbone import RestormerBackbone
from abair_core.models.estimator import DegradationEstimator
from abair_core.models.factory import build_model, build_segmentation_head
from abair_core.models.lora import adapter_names, add_adapter
from abair_core.training.config import TrainConfig
from abair_core.training.loop import MetricsCallback, TrainResult
from abair_core.training.phase1 import pretrain_backbone
from abair_core.training.phase2 import train_adapter
from abair_core.training.phase3 import train_estimator

PhaseCallback = Callable[[str], MetricsCallback | None]


def synthesize_pool(photos: Mapping[str, np.ndarray], degradations: Mapping[str, Degradation],
                    config: TrainConfig) -> PatchSet:
    """Patches of every photo for the configured degradations (deterministic per photo key)."""
    chosen = {name: degradations[name] for name in config.degradations}
    labels = class_names_for(config.degradations)
    sets = [synthesize_patches(photo, key, chosen, labels, config.synthesis) for key, photo in photos.items()]
    return PatchSet.concatenate(sets)


def run_pretrain(config: TrainConfig, patches: PatchSet, callback: MetricsCallback | None = None,
                 resume_path: str | None = None, seed: int | None = None) -> tuple[RestormerBackbone, TrainResult]:
    """Phase I from scratch (or from a resume state): a fresh backbone and segmentation head."""
    torch.manual_seed(config.phase1.seed if seed is None else seed)
    backbone = build_model(config.model)
    seg_head = build_segmentation_head(backbone.config, len(patches.label_names))
    result = pretrain_backbone(backbone, seg_head, patches, config.phase1, callback, resume_path)
    return backbone.cpu().eval(), result


def run_adapter(config: TrainConfig, backbone: RestormerBackbone, name: str, patches: PatchSet,
                callback: MetricsCallback | None = None, resume_path: str | None = None) -> TrainResult:
    """Phase II for one degradation: add a fresh adapter ``name`` to ``backbone`` and train only it.

    An adapter ``name`` already on the backbone (a warm start) is trained from where it is.
    """
    ensure_adapter_slots(backbone, config.adapter)
    torch.manual_seed(config.phase2.seed)
    if name not in adapter_names(backbone):
        add_adapter(backbone, name)
    result = train_adapter(backbone, name, patches, config.phase2, callback, resume_path)
    backbone.cpu().eval()
    return result


def run_estimator(config: TrainConfig, adapters: list[str], patches: PatchSet,
                  callback: MetricsCallback | None = None, resume_path: str | None = None,
                  init: Callable[[DegradationEstimator], None] | None = None,
                  teacher: DegradationEstimator | None = None, distill_weight: float = 0.0,
                  ) -> tuple[DegradationEstimator, TrainResult]:
    """Phase III over ``clean`` + every adapter's class; ``init`` may set the fresh estimator's weights first.

    ``teacher`` and ``distill_weight``: keep a base estimator's answers (see :func:`train_estimator`).
    """
    torch.manual_seed(config.phase3.seed)
    estimator = DegradationEstimator(config.estimator, class_names_for(adapters))
    if init is not None:
        init(estimator)
    result = train_estimator(estimator, estimator.class_names, patches, config.phase3, callback, resume_path,
                             teacher=teacher, distill_weight=distill_weight)
    return estimator.cpu().eval(), result


def train_abair(config: TrainConfig, photos: Mapping[str, np.ndarray], degradations: Mapping[str, Degradation],
                callbacks: PhaseCallback | None = None) -> tuple[ABAIR, dict[str, TrainResult]]:
    """All three phases in memory: synthesize → pretrain → one adapter per degradation → estimator."""
    cb = callbacks or (lambda phase: None)
    patches = synthesize_pool(photos, degradations, config)
    backbone, results = None, {}
    backbone, results["phase1"] = run_pretrain(config, patches, cb("phase1"))
    for name in config.degradations:
        results[f"phase2/{name}"] = run_adapter(config, backbone, name, patches, cb(f"phase2/{name}"))
    estimator, results["phase3"] = run_estimator(config, list(config.degradations), patches, cb("phase3"))
    return ABAIR(backbone, estimator, list(config.degradations)).eval(), results
