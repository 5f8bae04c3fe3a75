"""Warm start of a new adapter from an old one: an exact copy, scored on the new type's own patches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.components import ensure_adapter_slots
from abair_core.data.synthesis import PatchCounts, SynthesisConfig, synthesize_patches
from abair_core.degradations.specs import load_degradation_specs
from abair_core.metrics import psnr
from abair_core.models.factory import build_model
from abair_core.models.lora import AdapterConfig, adapter_names, add_adapter, blend, lora_modules
from abair_core.training.warm_start import (
    copy_adapter,
    pick_warm_start,
    score_adapters_on,
    start_estimator_from,
)


@pytest.fixture(scope="module")
def backbone():
    torch.manual_seed(0)
    model = build_model("tiny").eval()
    ensure_adapter_slots(model, AdapterConfig())
    for name in ("noise", "blur"):
        add_adapter(model, name)
    with torch.no_grad():  # give the adapters an effect: B starts at zero
        for wrapper in lora_modules(model).values():
            wrapper.lora_b["noise"].weight.normal_(0, 0.05)
    return model


@pytest.fixture(scope="module")
def noise_patches():
    specs = load_degradation_specs("configs/degradations/train.yaml")
    config = SynthesisConfig(patch_size=32, counts=PatchCounts(composite=0, single=6, sequence=0, clean=1))
    photo = data.astronaut()[:256, :256].astype(np.float32) / 255
    return synthesize_patches(photo, "astronaut.png", {"noise": specs["noise"]}, ["clean", "noise"], config)


def test_copy_is_exact_and_leaves_the_source_alone(backbone):
    x = torch.rand(1, 3, 32, 32)
    before = {k: v.clone() for k, v in backbone.state_dict().items() if ".noise" in k}
    copy_adapter(backbone, "noise", "jpeg")
    try:
        with torch.no_grad(), blend(backbone, ["noise"], torch.ones(1, 1)):
            source = backbone(x)
        with torch.no_grad(), blend(backbone, ["jpeg"], torch.ones(1, 1)):
            copied = backbone(x)
        assert torch.equal(source, copied)
        assert all(torch.equal(v, backbone.state_dict()[k]) for k, v in before.items())
        # a copy, not a shared tensor: training the new adapter cannot move the old one
        wrapper = next(iter(lora_modules(backbone).values()))
        assert wrapper.lora_b["jpeg"].weight.data_ptr() != wrapper.lora_b["noise"].weight.data_ptr()
    finally:
        for wrapper in lora_modules(backbone).values():
            wrapper.remove("jpeg")
    assert adapter_names(backbone) == ["noise", "blur"]


def test_scores_are_the_psnr_of_each_route_on_the_new_type(backbone, noise_patches):
    scores = score_adapters_on(backbone, noise_patches, "noise", ["noise", "blur"], samples=4)
    assert set(scores) == {"input", "backbone", "noise", "blur"}
    # blur's B is still zero: fully on, it is the backbone alone
    assert scores["blur"] == pytest.approx(scores["backbone"], abs=1e-6)
    assert scores["noise"] != pytest.approx(scores["backbone"], abs=1e-3)
    index = noise_patches.indices(("single",), ("noise",))
    chosen = np.sort(np.random.default_rng(0).choice(index, size=4, replace=False))
    degraded = noise_patches.degraded[chosen].astype(np.float32) / 255
    clean = noise_patches.clean[chosen].astype(np.float32) / 255
    assert scores["input"] == pytest.approx(np.mean([psnr(d, c) for d, c in zip(degraded, clean)]), abs=1e-6)


def test_no_single_patch_of_the_type_is_a_clear_error(backbone, noise_patches):
    with pytest.raises(ValueError, match="no single-degradation patches of 'rain'"):
        score_adapters_on(backbone, noise_patches, "rain", ["noise"])


def test_pick_takes_the_best_adapter_only_when_it_beats_the_backbone():
    assert pick_warm_start({"input": 30.0, "backbone": 26.0, "noise": 28.5, "blur": 27.0}, ["noise", "blur"]) == "noise"
    assert pick_warm_start({"input": 30.0, "backbone": 29.0, "noise": 28.5, "blur": 27.0}, ["noise", "blur"]) is None
    assert pick_warm_start({"input": 30.0, "backbone": 29.0}, []) is None


def _estimator(classes: list[str], width: int = 16, seed: int = 0):
    from abair_core.models.estimator import DegradationEstimator, EstimatorConfig

    torch.manual_seed(seed)
    return DegradationEstimator(EstimatorConfig(width=width), classes).eval()


def test_an_estimator_with_one_more_class_keeps_the_old_classes_logits_exactly():
    base = _estimator(["clean", "noise", "blur"], seed=1)
    grown = _estimator(["clean", "noise", "blur", "jpeg"], seed=2)
    fresh_row = grown.output_layer.weight[3].clone()
    copied = start_estimator_from(grown, base.state_dict(), base.class_names)
    assert copied == ["clean", "noise", "blur"]
    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(grown(x)[:, :3], base(x), atol=1e-6)
    assert torch.equal(grown.output_layer.weight[3], fresh_row)  # the new class starts fresh


def test_a_removed_class_is_dropped_and_another_architecture_is_refused():
    base = _estimator(["clean", "noise", "blur"], seed=1)
    shrunk = _estimator(["clean", "blur"], seed=2)
    assert start_estimator_from(shrunk, base.state_dict(), base.class_names) == ["clean", "blur"]
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(shrunk(x), base(x)[:, [0, 2]], atol=1e-6)
    with pytest.raises(ValueError, match="needs the same estimator config"):
        start_estimator_from(_estimator(["clean", "noise"], width=8), base.state_dict(), base.class_names)
