"""build_model / build_abair / build_segmentation_head."""

from __future__ import annotations

import torch

from abair_core.config import PROJECT_ROOT
from abair_core.models.config import load_model_config
from abair_core.models.estimator import EstimatorConfig
from abair_core.models.factory import build_abair, build_model, build_segmentation_head
from abair_core.models.lora import AdapterConfig, adapter_names


def test_build_model_from_name_config_or_path() -> None:
    by_name = build_model("tiny")
    by_config = build_model(load_model_config("tiny"))
    by_path = build_model(PROJECT_ROOT / "configs/model/tiny.yaml")
    assert by_name.config == by_config.config == by_path.config


def test_segmentation_head_fits_backbone_features() -> None:
    backbone = build_model("tiny")
    head = build_segmentation_head("tiny", num_classes=6)
    _, features = backbone(torch.rand(1, 3, 16, 24), return_features=True)
    assert head(features).shape == (1, 6, 16, 24)


def test_build_abair_wires_everything() -> None:
    model = build_abair(
        "tiny", AdapterConfig(rank=2), EstimatorConfig(), ["rain", "haze"], ["clean", "rain", "haze"]
    )
    assert model.adapter_names == ["rain", "haze"]
    assert model.class_names == ["clean", "rain", "haze"]
    assert adapter_names(model.backbone) == ["rain", "haze"]
    x = torch.rand(1, 3, 20, 20)
    # Fresh adapters are zero: every mode without the identity path equals the bare backbone.
    with torch.no_grad():
        base = model.backbone(x).clamp(0, 1)
    torch.testing.assert_close(model.restore(x, "rain"), base, rtol=0, atol=0)
