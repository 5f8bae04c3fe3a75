"""A tiny untrained-but-non-trivial ABAIR and a few small photos for evaluation tests."""

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.components import class_names_for
from abair_core.models import AdapterConfig, EstimatorConfig, build_abair
from abair_core.models.lora import adapter_parameters

ADAPTERS = ["noise", "blur"]


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = build_abair("tiny", AdapterConfig(), EstimatorConfig(), ADAPTERS, class_names_for(ADAPTERS))
    with torch.no_grad():
        for name in ADAPTERS:
            for p in adapter_parameters(model.backbone, name):
                p.add_(0.05 * torch.randn_like(p))
    return model.eval()


@pytest.fixture(scope="module")
def photos():
    return {"astronaut": data.astronaut()[:160, :160].astype(np.float32) / 255,
            "chelsea": data.chelsea()[:120, :150].astype(np.float32) / 255}
