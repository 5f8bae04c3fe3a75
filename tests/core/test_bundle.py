"""A bundle directory round-trips the exact model, refuses mismatched parts, and restores images."""

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.bundle import Restorer, load_bundle, save_bundle
from abair_core.checkpoints import CheckpointMismatchError
from abair_core.components import class_names_for, load_adapter, load_backbone, save_backbone
from abair_core.models import AdapterConfig, EstimatorConfig, build_abair
from abair_core.models.lora import adapter_parameters

ADAPTERS = ["noise", "blur"]


def trained_like_model(seed: int = 0):
    """A tiny ABAIR whose adapters are non-zero (as if trained), so round trips are meaningful."""
    torch.manual_seed(seed)
    model = build_abair("tiny", AdapterConfig(), EstimatorConfig(), ADAPTERS, class_names_for(ADAPTERS))
    with torch.no_grad():
        for name in ADAPTERS:
            for p in adapter_parameters(model.backbone, name):
                p.add_(0.05 * torch.randn_like(p))
    return model.eval()


def test_bundle_round_trip_restores_identically(tmp_path):
    model = trained_like_model()
    save_bundle(model, tmp_path / "bundle", versions={"backbone": "1"})
    loaded = load_bundle(tmp_path / "bundle")
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(1))
    for mode in ("sw", "oh", "noise"):
        torch.testing.assert_close(loaded.restore(x, mode), model.restore(x, mode), atol=1e-6, rtol=0)


def test_adapter_for_another_backbone_is_refused(tmp_path):
    model = trained_like_model(0)
    save_bundle(model, tmp_path / "a")
    other = trained_like_model(1)
    save_backbone(str(tmp_path / "other.safetensors"), other.backbone)
    backbone, fp = load_backbone(str(tmp_path / "other.safetensors"))
    with pytest.raises(CheckpointMismatchError, match="backbone_fingerprint"):
        load_adapter(str(tmp_path / "a" / "adapter-noise.safetensors"), backbone, fp)


def test_restorer_keeps_shape_and_reports_probabilities():
    model = trained_like_model()
    rgb = data.astronaut()[:100, :130].astype(np.float32) / 255.0
    restorer = Restorer(model, mode="sw", tile=64, overlap=16)
    out = restorer(rgb)
    assert out.rgb.shape == rgb.shape and out.rgb.dtype == np.float32
    assert abs(sum(out.probabilities.values()) - 1.0) < 1e-5
    assert set(out.probabilities) == {"clean", *ADAPTERS}
    assert out.action in ("restored", "passed_through_clean")
    if out.action == "passed_through_clean":
        assert np.array_equal(out.rgb, rgb)


def test_restorer_reads_the_estimator_crops_it_is_given():
    """``estimator_crops`` (the restore setting) replaces the estimator's stored crop count; None keeps it."""
    model = trained_like_model()
    rgb = data.astronaut()[:200, :240].astype(np.float32) / 255.0
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    with torch.no_grad():
        for crops in (None, 1, 16):
            want = model.estimator.predict_proba_gated(x, num_crops=crops).probabilities[0]
            got = Restorer(model, estimator_crops=crops).probabilities(x)
            assert got == pytest.approx({n: float(p) for n, p in zip(model.class_names, want, strict=True)})
        stored = Restorer(model).probabilities(x)
    assert stored == pytest.approx(Restorer(model, estimator_crops=model.estimator.config.num_crops).probabilities(x))
    assert stored != pytest.approx(Restorer(model, estimator_crops=16).probabilities(x))


def test_restorer_tiled_equals_model_restore_for_a_fixed_adapter():
    model = trained_like_model()
    rgb = data.chelsea()[:64, :64].astype(np.float32) / 255.0
    out = Restorer(model, mode="blur", tile=256).restore_array(rgb)
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    expected = model.restore(x, "blur")[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out.rgb, expected, atol=1e-5)


def test_estimator_files_from_before_the_statistics_branch_still_load(tmp_path):
    """A registered estimator written before `statistics`/`hidden` existed loads as the CNN + linear it was."""
    from abair_core.checkpoints import save_checkpoint
    from abair_core.components import load_estimator
    from abair_core.models.estimator import DegradationEstimator

    legacy = DegradationEstimator(EstimatorConfig(statistics=False, hidden=0), ["clean", "noise"]).eval()
    stored = legacy.config.model_dump()
    del stored["statistics"], stored["hidden"], stored["stem"]  # what the older code wrote
    state = {k: v.contiguous() for k, v in legacy.state_dict().items()}
    uri = str(tmp_path / "estimator.safetensors")
    save_checkpoint(uri, state, {"kind": "estimator", "estimator_config": stored, "class_names": ["clean", "noise"],
                                 "adapter_fingerprints": {}})
    loaded = load_estimator(uri)
    assert not loaded.config.statistics and not loaded.training
    x = torch.rand(1, 3, 64, 64)
    torch.testing.assert_close(loaded.predict_proba(x), legacy.predict_proba(x))


def test_restorer_blind_modes_equal_model_restore_with_the_same_clean_weight():
    """The batch Restorer (estimator run once, plan from its probabilities) matches ABAIR.restore, with and
    without the archive's prior on clean; a large prior passes the image through untouched."""
    model = trained_like_model()
    rgb = data.chelsea()[:64, :64].astype(np.float32) / 255.0
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    for mode in ("sw", "oh"):
        out = Restorer(model, mode=mode, tile=256, clean_weight=0.01).restore_array(rgb)
        assert out.action == "restored" and out.probabilities["clean"] < 0.05
        expected = model.restore(x, mode, clean_weight=0.01)[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(out.rgb, expected, atol=1e-5)
        passed = Restorer(model, mode=mode, tile=256, clean_weight=1000.0).restore_array(rgb)
        assert passed.action == "passed_through_clean" and np.array_equal(passed.rgb, rgb)
        assert torch.equal(model.restore(x, mode, clean_weight=1000.0), x)


def test_sw_sharpness_travels_with_the_estimator_and_the_restorer_applies_it(tmp_path):
    """A bundle keeps its estimator's sw_sharpness, the batch Restorer blends as ABAIR.restore does with it, and
    an estimator file written before the setting existed loads with the paper's soft weights (1)."""
    from abair_core.checkpoints import load_checkpoint, save_checkpoint
    from abair_core.components import load_estimator

    model = trained_like_model()
    model.estimator.config = model.estimator.config.model_copy(update={"sw_sharpness": 3.0})
    save_bundle(model, tmp_path / "bundle")
    loaded = load_bundle(tmp_path / "bundle")
    assert loaded.estimator.config.sw_sharpness == 3.0
    rgb = data.chelsea()[:64, :64].astype(np.float32) / 255.0
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None]
    out = Restorer(loaded, mode="sw", tile=256, clean_weight=0.01).restore_array(rgb)
    expected = loaded.restore(x, "sw", clean_weight=0.01)[0].permute(1, 2, 0).numpy()
    np.testing.assert_allclose(out.rgb, expected, atol=1e-5)
    probs = loaded.estimator.predict_proba(x)
    sharp = loaded.plan_from_probabilities(probs, "sw")[0]
    q = probs[:, 1:] ** 3
    torch.testing.assert_close(sharp, q / q.sum())

    tensors, metadata = load_checkpoint(str(tmp_path / "bundle" / "estimator.safetensors"))
    del metadata["estimator_config"]["sw_sharpness"]  # a file of 2026-12-04 or before
    save_checkpoint(str(tmp_path / "old.safetensors"), tensors, metadata)
    assert load_estimator(str(tmp_path / "old.safetensors")).config.sw_sharpness == 1.0


def test_contrast_about_mean_keeps_the_mean_luma_and_scales_the_rest():
    from abair_core.models.image_statistics import contrast_about_mean, luma

    x = 0.25 + 0.5 * torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    flatter = contrast_about_mean(x, 0.85)
    mean = luma(x).mean(dim=(1, 2, 3), keepdim=True)
    torch.testing.assert_close(flatter - mean, 0.85 * (x - mean))
    torch.testing.assert_close(luma(flatter).mean(dim=(1, 2, 3)), mean.flatten())
    assert contrast_about_mean(x, 3.0).min() >= 0 and contrast_about_mean(x, 3.0).max() <= 1


def test_the_tone_check_passes_through_a_decision_a_contrast_change_turns_to_clean(monkeypatch):
    """An estimator that reads 'noise' above a luma spread and 'clean' below it: with the tone check, an image just
    above the bar (clean at contrast 0.85) is copied as low_confidence; one far above it is restored exactly as
    without the check; one below it passes through as clean."""
    from abair_core.models.estimator import GatedProbabilities
    from abair_core.models.image_statistics import luma

    model = trained_like_model()

    def by_spread(bar: float):
        def predict(x, generator=None, num_crops=None):
            noisy = float(luma(x).std()) > bar
            probs = torch.tensor([[0.1, 0.8, 0.1]] if noisy else [[0.8, 0.1, 0.1]])
            return GatedProbabilities(probs, torch.zeros_like(probs), probs)
        return predict

    rgb = data.chelsea()[:64, :64].astype(np.float32) / 255.0
    spread = float(luma(torch.from_numpy(rgb).permute(2, 0, 1)[None]).std())
    cases = {"just above": (0.95 * spread, "low_confidence"), "far above": (0.5 * spread, "restored"),
             "below": (1.05 * spread, "passed_through_clean")}
    for name, (bar, action) in cases.items():
        monkeypatch.setattr(model.estimator, "predict_proba_gated", by_spread(bar))
        checked = Restorer(model, tile=256, tone_check=True).restore_array(rgb)
        plain = Restorer(model, tile=256).restore_array(rgb)
        assert checked.action == action, name
        assert checked.probabilities == plain.probabilities
        if action == "restored":
            np.testing.assert_array_equal(checked.rgb, plain.rgb)
        else:
            np.testing.assert_array_equal(checked.rgb, rgb)
