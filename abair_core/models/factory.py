"""The one way to get networks: `build_model` (a backbone) and `build_abair` (the whole model)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from abair_core.models.abair import ABAIR
from abair_core.models.backbone import RestormerBackbone, build_backbone
from abair_core.models.config import BackboneConfig, load_model_config
from abair_core.models.estimator import DegradationEstimator, EstimatorConfig
from abair_core.models.lora import AdapterConfig, add_adapter, inject_adapters
from abair_core.models.seg_head import SegmentationHead

__all__ = ["build_abair", "build_model", "build_segmentation_head"]


def _backbone_config(config: BackboneConfig | str | Path) -> BackboneConfig:
    return config if isinstance(config, BackboneConfig) else load_model_config(config)


def build_model(config: BackboneConfig | str | Path) -> RestormerBackbone:
    """A freshly initialised backbone from a config, a preset name (``"tiny"``) or a YAML path."""
    return build_backbone(_backbone_config(config))


def build_segmentation_head(config: BackboneConfig | str | Path, num_classes: int) -> SegmentationHead:
    """The Phase I segmentation head matching a backbone's feature channels."""
    return SegmentationHead(_backbone_config(config).feature_channels, num_classes)


def build_abair(
    backbone_config: BackboneConfig | str | Path,
    adapter_config: AdapterConfig,
    estimator_config: EstimatorConfig,
    adapter_names: Sequence[str],
    class_names: Sequence[str],
) -> ABAIR:
    """Backbone with adapters injected and one fresh adapter per name, plus a fresh estimator.

    Weights are loaded afterwards (checkpoints); ``class_names`` starts with ``clean`` and contains
    every adapter name.
    """
    backbone = build_model(backbone_config)
    inject_adapters(backbone, adapter_config)
    for name in adapter_names:
        add_adapter(backbone, name)
    estimator = DegradationEstimator(estimator_config, class_names)
    return ABAIR(backbone, estimator, adapter_names)
