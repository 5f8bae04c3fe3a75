"""Networks of ABAIR: backbone presets, LoRA adapters, segmentation head, estimator, the whole model."""

from abair_core.models.abair import ABAIR, RESTORE_MODES
from abair_core.models.backbone import (
    RestormerBackbone,
    build_backbone,
    count_parameters,
    flops_per_megapixel,
)
from abair_core.models.config import BackboneConfig, list_model_presets, load_model_config
from abair_core.models.estimator import DegradationEstimator, EstimatorConfig, crop_positions, native_crops
from abair_core.models.factory import build_abair, build_model, build_segmentation_head
from abair_core.models.lora import (
    AdapterConfig,
    LoRAConv2d,
    adapter_names,
    adapter_parameters,
    adapter_state_dict,
    add_adapter,
    blend,
    freeze_all_but,
    inject_adapters,
    load_adapter_state_dict,
    lora_modules,
    merge_adapters,
    remove_adapter,
    unmerge_adapters,
)
from abair_core.models.seg_head import SegmentationHead

__all__ = [
    "ABAIR",
    "RESTORE_MODES",
    "AdapterConfig",
    "BackboneConfig",
    "DegradationEstimator",
    "EstimatorConfig",
    "LoRAConv2d",
    "RestormerBackbone",
    "SegmentationHead",
    "adapter_names",
    "adapter_parameters",
    "adapter_state_dict",
    "add_adapter",
    "blend",
    "build_abair",
    "build_backbone",
    "build_model",
    "build_segmentation_head",
    "count_parameters",
    "crop_positions",
    "flops_per_megapixel",
    "freeze_all_but",
    "inject_adapters",
    "list_model_presets",
    "load_adapter_state_dict",
    "load_model_config",
    "lora_modules",
    "merge_adapters",
    "native_crops",
    "remove_adapter",
    "unmerge_adapters",
]
