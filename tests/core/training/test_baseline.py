"""The all-in-one baseline: equal budget arithmetic, adapter-free training, a saved backbone file."""

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.checkpoints import read_checkpoint_metadata
from abair_core.components import load_backbone
from abair_core.degradations.specs import load_degradation_specs
from abair_core.models.lora import lora_modules
from abair_core.training.baseline import (
    architecture_key,
    backbone_architecture_key,
    baseline_budget,
    baseline_schedule,
    train_baseline_from_photos,
)
from abair_core.training.config import TrainConfig

CONFIG = TrainConfig.model_validate({
    "name": "unit", "model": "tiny", "degradations": ["noise", "blur"],
    "synthesis": {"patch_size": 40, "counts": {"composite": 3, "single": 3, "sequence": 0, "clean": 2}},
    "phase1": {"steps": 6, "batch_size": 4, "patch_size": 32, "warmup_steps": 2, "log_every": 3},
    "phase2": {"steps": 4, "batch_size": 2, "patch_size": 16, "warmup_steps": 1},
})


def test_budget_is_phase1_plus_every_phase2_in_steps_batch_pixels():
    budget = baseline_budget(CONFIG)
    assert budget.phase1 == 6 * 4 * 32 * 32
    assert budget.phase2 == 2 * (4 * 2 * 16 * 16)
    assert budget.steps == 7  # ceil((24576 + 4096) / 4096)
    assert budget.spent >= budget.target > budget.spent - 4 * 32 * 32
    schedule = baseline_schedule(CONFIG)
    assert schedule.steps == 7 and schedule.seg_weight == 0.0
    assert schedule.single_fraction == pytest.approx(4096 / 28672)


def test_train_baseline_saves_an_adapter_free_backbone(tmp_path):
    torch.set_num_threads(1)
    photos = {"rocket": data.rocket()[:120, :120].astype(np.float32) / 255}
    out = tmp_path / "baseline.safetensors"
    metrics = []
    result = train_baseline_from_photos(CONFIG, photos, load_degradation_specs("configs/degradations/train.yaml"),
                                        str(out), callback=lambda step, m: metrics.append(step))
    assert result["steps"] == 7 and result["budget"]["target"] == 28672 and metrics[-1] == 7
    backbone, _ = load_backbone(str(out))
    assert not lora_modules(backbone)
    meta = read_checkpoint_metadata(str(out))
    assert meta["baseline"]["steps"] == 7 and meta["train_config"] == "unit"
    assert backbone_architecture_key(str(out)) == architecture_key(backbone.config.model_dump()) == result["architecture"]
    other = {**backbone.config.model_dump(), "dims": [16, 32, 64, 128]}
    assert architecture_key(other) != result["architecture"]
