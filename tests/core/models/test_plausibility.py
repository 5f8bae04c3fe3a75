"""Plausibility gates: a class whose physical signature is absent gets probability 0; its share moves to clean."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.checkpoints import load_checkpoint, save_checkpoint
from abair_core.components import load_estimator, save_estimator
from abair_core.degradations.registry import build_degradation
from abair_core.models.estimator import DegradationEstimator, EstimatorConfig
from abair_core.models.plausibility import (
    PlausibilityConfig,
    apply_plausibility,
    condition_out,
    implausible_classes,
    level_fill,
)

CLASSES = ["clean", "rain", "haze", "noise", "blur", "low_light"]


def _tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def _photo(name: str = "astronaut", size: int = 128) -> np.ndarray:
    return getattr(data, name)()[:size, :size].astype(np.float32) / 255.0


def _degraded(image: np.ndarray, spec: dict) -> np.ndarray:
    out = build_degradation(spec).apply(image, np.random.default_rng(0)).image
    return np.round(np.clip(out, 0, 1) * 255) / 255


def _mask(image: np.ndarray, config: PlausibilityConfig | None = None) -> dict[str, bool]:
    x = _tensor(image)
    crops = torch.stack([x[0, :, y:y + 64, c:c + 64] for y in (0, 64) for c in (0, 64)])
    mask = implausible_classes(crops, 1, CLASSES, config or PlausibilityConfig())
    return dict(zip(CLASSES, mask[0].tolist(), strict=True))


@pytest.fixture(scope="module")
def estimator() -> DegradationEstimator:
    torch.manual_seed(0)
    return DegradationEstimator(EstimatorConfig(), CLASSES).eval()


def test_a_well_exposed_photo_is_never_low_light_but_an_underexposed_one_can_be() -> None:
    bright = _photo()
    dark = _degraded(bright, {"type": "low_light", "exposure": 0.4, "gamma": 1.0, "photons": 2000,
                              "read_noise": 0.5})
    assert _mask(bright)["low_light"]
    assert not _mask(dark)["low_light"]


def test_noise_is_implausible_below_the_bar_and_kept_for_training_strength_noise() -> None:
    photo = _photo("coffee")
    assert _mask(photo)["noise"]
    assert _mask(_degraded(photo, {"type": "noise", "sigma": 5}))["noise"]  # mild: class clean
    assert not _mask(_degraded(photo, {"type": "noise", "sigma": 15}))["noise"]


def test_blur_gate_runs_only_when_given_a_bar() -> None:
    noisy = _degraded(_photo(), {"type": "noise", "sigma": 15})
    blurred = _degraded(_photo(), {"type": "blur", "kind": "gaussian", "sigma": 1.5})
    assert not _mask(noisy, PlausibilityConfig(blur_max_sharpness=None))["blur"]
    assert _mask(noisy, PlausibilityConfig(blur_max_sharpness=0.85))["blur"]
    assert not _mask(blurred, PlausibilityConfig(blur_max_sharpness=0.85))["blur"]


def test_haze_gate_needs_a_bar_and_keeps_training_strength_haze_plausible() -> None:
    photo = _photo("coffee")  # dark cup and saucer shadows: true blacks, so no airlight veil
    bar = PlausibilityConfig(haze_min_dark_channel=0.1)
    assert not _mask(photo)["haze"]  # off unless a bar is given
    assert _mask(photo, bar)["haze"]
    for t_mean, airlight in ((0.8, 0.7), (0.5, 0.85), (0.3, 1.0)):  # the training range's weakest corner first
        hazy = _degraded(photo, {"type": "haze", "t_mean": t_mean, "airlight": airlight})
        assert not _mask(hazy, bar)["haze"], (t_mean, airlight)


def test_disabled_gates_gate_nothing() -> None:
    assert not any(_mask(_photo(), PlausibilityConfig(enabled=False)).values())


def test_gated_probability_moves_to_clean_and_the_rest_keep_theirs() -> None:
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 0.0]])
    mask = torch.tensor([[False, False, True, False], [False, True, True, False]])
    out = apply_plausibility(probs, mask)
    torch.testing.assert_close(out, torch.tensor([[0.4, 0.2, 0.0, 0.4], [1.0, 0.0, 0.0, 0.0]]))
    assert apply_plausibility(probs, torch.zeros_like(mask)) is probs


def test_clean_if_top_keeps_the_top_answer_unless_it_is_gated() -> None:
    """A noisy photo half read as bit_depth stays noise; an image whose top class is gated passes through."""
    probs = torch.tensor([[0.1, 0.4, 0.35, 0.15],   # noise top, bit_depth (gated) second
                          [0.1, 0.3, 0.5, 0.1]])    # the gated class is the top
    mask = torch.tensor([[False, False, True, False], [False, False, True, False]])
    out = apply_plausibility(probs, mask, "clean_if_top")
    torch.testing.assert_close(out[0], torch.tensor([0.1, 0.4, 0.0, 0.15]) / 0.65)
    torch.testing.assert_close(out[1], torch.tensor([0.6, 0.3, 0.0, 0.1]))
    torch.testing.assert_close(out.sum(dim=1), torch.ones(2))
    assert apply_plausibility(probs, mask)[0].argmax() == 0  # the rule 'clean' would pass the noisy photo through
    with pytest.raises(ValueError, match="gated_mass"):
        apply_plausibility(probs, mask, "elsewhere")


def test_condition_out_drops_the_masked_classes_and_renormalises_the_rest() -> None:
    probs = torch.tensor([[0.1, 0.2, 0.3, 0.4], [0.0, 0.0, 0.0, 1.0]])
    mask = torch.tensor([[False, False, False, True], [False, False, False, True]])
    out = condition_out(probs, mask)
    torch.testing.assert_close(out[0], torch.tensor([1 / 6, 2 / 6, 3 / 6, 0.0]))
    torch.testing.assert_close(out[1], probs[1])  # nothing left to renormalise: kept as it was
    assert condition_out(probs, torch.zeros_like(mask)) is probs


def _with_a_jpeg_expert(base: DegradationEstimator, claim: float) -> DegradationEstimator:
    """``base`` gated by a jpeg expert whose output layer claims every input with logit ``claim``."""
    grown = DegradationEstimator(base.config, [*base.class_names, "jpeg"], experts={"jpeg": ["clean", "jpeg"]})
    missing, unexpected = grown.load_state_dict(base.state_dict(), strict=False)
    assert not unexpected and all(key.startswith("experts.") for key in missing)
    with torch.no_grad():
        layer = grown.experts["jpeg"].output_layer
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([0.0, claim]))
    return grown.eval()


def test_a_vetoed_expert_claim_restores_the_base_decision_exactly(estimator: DegradationEstimator) -> None:
    """An expert that claims a photo without JPEG blocks (gated) leaves the old classes as the base scored them,
    instead of sending its share to clean: a noisy photo the jpeg expert misreads stays noise."""
    grown = _with_a_jpeg_expert(estimator, claim=5.0)
    photo = _photo()
    noisy = _degraded(photo, {"type": "noise", "sigma": 50})
    blocky = _degraded(photo, {"type": "jpeg", "quality": 10})
    x = torch.cat([_tensor(photo), _tensor(noisy), _tensor(blocky)])
    with torch.no_grad():
        base = estimator.predict_proba(x)
        probs, moved, raw = grown.predict_proba_gated(x)
    jpeg = grown.class_names.index("jpeg")
    torch.testing.assert_close(probs[:2, :jpeg], base[:2])  # no blocks: the jpeg gate undoes the expert
    assert torch.all(probs[:2, jpeg] == 0) and torch.all(moved[:2, jpeg] > 0.9)  # reported as gated
    assert torch.all(raw.argmax(dim=1) == jpeg)  # the expert's claim was the top answer before the gate
    assert probs[2, jpeg] > 0.9  # blocks: the expert's claim stands
    torch.testing.assert_close(probs.sum(dim=1), torch.ones(3))
    # expert_veto 'clean' (files written before 2026-12-04): the vetoed claim goes to clean like any gated class
    grown.config.plausibility = grown.config.plausibility.model_copy(update={"expert_veto": "clean"})
    with torch.no_grad():
        to_clean, _, _ = grown.predict_proba_gated(x)
    assert torch.all(to_clean[:2, 0] > 0.9) and torch.all(to_clean[:2, jpeg] == 0)
    torch.testing.assert_close(to_clean[2], probs[2])  # nothing vetoed: the same either way


def test_expert_files_written_before_the_expert_veto_setting_keep_their_rule(tmp_path) -> None:
    torch.manual_seed(0)
    grown = _with_a_jpeg_expert(DegradationEstimator(EstimatorConfig(), CLASSES).eval(), claim=5.0)
    path = str(tmp_path / "estimator.safetensors")
    save_estimator(path, grown, {})
    assert load_estimator(path).config.plausibility.expert_veto == "base"
    tensors, metadata = load_checkpoint(path)
    del metadata["estimator_config"]["plausibility"]["expert_veto"]  # written before the setting existed
    old = str(tmp_path / "old.safetensors")
    save_checkpoint(old, tensors, metadata)
    loaded = load_estimator(old)
    assert loaded.expert_classes == {"jpeg": ["clean", "jpeg"]} and loaded.config.plausibility.expert_veto == "clean"


def test_predict_proba_applies_the_gates(estimator: DegradationEstimator) -> None:
    x = torch.cat([_tensor(_photo()), _tensor(_photo("chelsea"))])
    with torch.no_grad():
        on = estimator.predict_proba(x)
        estimator.config.plausibility = PlausibilityConfig(enabled=False)
        try:
            off = estimator.predict_proba(x)
        finally:
            estimator.config.plausibility = PlausibilityConfig()
    low_light, noise = CLASSES.index("low_light"), CLASSES.index("noise")
    assert torch.all(on[:, low_light] == 0) and torch.all(on[:, noise] == 0)
    assert torch.all(off[:, low_light] > 0)
    torch.testing.assert_close(on.sum(dim=1), torch.ones(2))
    want = off.clone()
    want[:, 0] += off[:, low_light] + off[:, noise]
    want[:, [low_light, noise]] = 0
    torch.testing.assert_close(on, want)


def test_predict_proba_gated_reports_what_each_gate_moved(estimator: DegradationEstimator) -> None:
    x = torch.cat([_tensor(_photo()), _tensor(_photo("chelsea"))])
    with torch.no_grad():
        probs, moved, raw = estimator.predict_proba_gated(x)
        torch.testing.assert_close(probs, estimator.predict_proba(x))
        estimator.config.plausibility = PlausibilityConfig(enabled=False)
        try:
            off = estimator.predict_proba(x)
        finally:
            estimator.config.plausibility = PlausibilityConfig()
    gated = [CLASSES.index("noise"), CLASSES.index("low_light")]
    torch.testing.assert_close(moved[:, gated], off[:, gated])  # the estimator's own numbers, before the gates
    assert torch.all(moved[:, [i for i in range(len(CLASSES)) if i not in gated]] == 0)
    torch.testing.assert_close(probs[:, 0], off[:, 0] + moved.sum(dim=1))
    torch.testing.assert_close(raw, off)  # what it said before the gates


def test_estimator_files_keep_their_bars_and_old_files_load_with_the_gates_off(
        estimator: DegradationEstimator, tmp_path) -> None:
    path = str(tmp_path / "estimator.safetensors")
    estimator.config.plausibility = PlausibilityConfig(low_light_max_highlights=0.45, blur_max_sharpness=0.9)
    try:
        save_estimator(path, estimator, {})
    finally:
        estimator.config.plausibility = PlausibilityConfig()
    assert load_estimator(path).config.plausibility == PlausibilityConfig(low_light_max_highlights=0.45,
                                                                          blur_max_sharpness=0.9)
    tensors, metadata = load_checkpoint(path)
    del metadata["estimator_config"]["plausibility"]  # a file written before the gates existed
    old = str(tmp_path / "old.safetensors")
    save_checkpoint(old, tensors, metadata)
    assert load_estimator(old).config.plausibility.enabled is False


ADDED = ["clean", "noise", "jpeg", "bit_depth"]


def _added_mask(image: np.ndarray, config: PlausibilityConfig) -> dict[str, bool]:
    x = _tensor(image)
    crops = torch.stack([x[0, :, y:y + 64, c:c + 64] for y in (0, 64) for c in (0, 64)])
    return dict(zip(ADDED, implausible_classes(crops, 1, ADDED, config)[0].tolist(), strict=True))


def test_level_fill_separates_eight_bit_photos_from_any_lower_bit_depth() -> None:
    photo = _photo()
    fill = lambda image: float(level_fill(_tensor(image))[0])
    assert fill(photo) > 0.9
    assert fill(_degraded(photo, {"type": "bit_depth", "bits": 7})) <= 0.53
    assert fill(_degraded(photo, {"type": "bit_depth", "bits": 4})) < 0.1
    truncated = np.floor(photo * 255 / 16) * 16 / 255  # another 4-bit quantiser (truncation): same signature
    assert fill(truncated) < 0.1
    assert torch.isnan(level_fill(torch.full((1, 3, 64, 64), 0.5)))[0]  # a flat crop says nothing


def test_jpeg_and_bit_depth_gates_spare_their_training_range_and_gate_clean_photos() -> None:
    bars = PlausibilityConfig(jpeg_min_blockiness=0.15, bit_depth_max_level_fill=0.6)
    for name in ("astronaut", "coffee", "chelsea"):
        photo = _photo(name)
        assert _added_mask(photo, bars)["jpeg"] and _added_mask(photo, bars)["bit_depth"], name
        for quality in (40, 20):  # the training range's weakest end and the benchmark task
            assert not _added_mask(_degraded(photo, {"type": "jpeg", "quality": quality}), bars)["jpeg"]
        for bits in (7, 4):
            assert not _added_mask(_degraded(photo, {"type": "bit_depth", "bits": bits}), bars)["bit_depth"]
    flat = np.full((128, 128, 3), 0.4, dtype=np.float32)
    assert not _added_mask(flat, bars)["bit_depth"]  # no informative crop: left to the learned estimator
    off = PlausibilityConfig(jpeg_min_blockiness=None, bit_depth_max_level_fill=None)
    assert not any(_added_mask(_photo(), off)[k] for k in ("jpeg", "bit_depth"))


def test_files_written_before_the_jpeg_and_bit_depth_gates_load_with_those_two_off(
        estimator: DegradationEstimator, tmp_path) -> None:
    path = str(tmp_path / "estimator.safetensors")
    save_estimator(path, estimator, {})
    tensors, metadata = load_checkpoint(path)
    for key in ("jpeg_min_blockiness", "bit_depth_max_level_fill"):
        del metadata["estimator_config"]["plausibility"][key]  # a file of 2026-12-02 or before
    old = str(tmp_path / "old.safetensors")
    save_checkpoint(old, tensors, metadata)
    loaded = load_estimator(old).config.plausibility
    assert loaded.enabled and loaded.noise_min_sigma == PlausibilityConfig().noise_min_sigma
    assert (loaded.jpeg_min_blockiness, loaded.bit_depth_max_level_fill) == (None, None)
    assert load_estimator(path).config.plausibility == PlausibilityConfig()  # a new file keeps its bars
