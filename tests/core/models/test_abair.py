"""ABAIR.restore: sw / oh / oracle / single adapter, the clean identity path, merge == blend."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.models.abair import ABAIR
from abair_core.models.estimator import EstimatorConfig
from abair_core.models.factory import build_abair
from abair_core.models.lora import AdapterConfig, lora_modules

ADAPTERS = ["rain", "haze", "noise"]
CLASSES = ["clean", "rain", "haze", "noise", "jpeg"]  # jpeg: a class without an adapter
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _photos() -> torch.Tensor:
    images = [getattr(data, n)()[:48, :48].astype(np.float32) / 255.0 for n in ("astronaut", "coffee")]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def _fix_estimator(model: ABAIR, logits: list[float]) -> None:
    """Make the estimator answer ``softmax(logits)`` for every input."""
    with torch.no_grad():
        model.estimator.output_layer.weight.zero_()
        model.estimator.output_layer.bias.copy_(torch.tensor(logits))


@pytest.fixture()
def model() -> ABAIR:
    torch.manual_seed(0)
    # gates off: these tests steer the estimator by hand (the gates have their own tests)
    estimator = EstimatorConfig(crop_size=32, plausibility={"enabled": False})
    abair = build_abair("tiny", AdapterConfig(), estimator, ADAPTERS, CLASSES).eval()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for wrapper in lora_modules(abair.backbone).values():
            for name in ADAPTERS:
                b = wrapper.lora_b[name].weight
                b.copy_(0.05 * torch.randn(b.shape, generator=gen))
    return abair


def test_named_adapter_equals_one_hot_blend(model: ABAIR) -> None:
    x = _photos()
    with torch.no_grad():
        want = model.forward_blended(x, torch.tensor([0.0, 1.0, 0.0])).clamp(0, 1)
    torch.testing.assert_close(model.restore(x, "haze"), want, **TOL)
    torch.testing.assert_close(model.restore(x, "haze", merge=False), want, **TOL)


def test_oh_with_a_one_hot_estimate_equals_the_named_adapter(model: ABAIR) -> None:
    _fix_estimator(model, [0.0, 0.0, 0.0, 8.0, 0.0])  # noise wins
    x = _photos()
    torch.testing.assert_close(model.weights_for(x, "oh"), torch.tensor([[0.0, 0.0, 1.0]] * 2))
    torch.testing.assert_close(model.restore(x, "oh"), model.restore(x, "noise"), **TOL)


def test_clean_probability_one_is_the_identity(model: ABAIR) -> None:
    _fix_estimator(model, [200.0, 0.0, 0.0, 0.0, 0.0])
    x = _photos()
    assert torch.equal(model.restore(x, "sw"), x)
    assert torch.equal(model.restore(x, "oh"), x)


def test_blind_modes_take_the_identity_when_clean_is_the_arg_max(model: ABAIR) -> None:
    _fix_estimator(model, [1.0, 0.5, 0.0, 0.0, 0.0])  # clean wins with p < 1
    x = _photos()
    assert torch.equal(model.restore(x, "oh"), x)
    assert torch.equal(model.restore(x, "sw"), x)  # as the batch Restorer: a clean image is passed through
    assert not torch.equal(model.restore(x, "noise"), x)


def test_sw_blends_renormalised_adapter_probabilities_and_the_identity(model: ABAIR) -> None:
    logits = torch.tensor([0.5, 1.0, 0.2, -0.3, 0.7])
    _fix_estimator(model, logits.tolist())
    probs = logits.softmax(dim=0)
    weights = probs[1:4] / probs[1:4].sum()  # jpeg has no adapter: dropped, rest renormalised
    x = _photos()
    torch.testing.assert_close(model.weights_for(x, "sw"), weights.expand(2, 3))
    with torch.no_grad():
        want = (probs[0] * x + (1 - probs[0]) * model.forward_blended(x, weights)).clamp(0, 1)
    torch.testing.assert_close(model.restore(x, "sw"), want, **TOL)
    torch.testing.assert_close(model.restore(x, "sw", merge=False), want, **TOL)


def test_sw_sharpness_raises_the_adapter_probabilities_to_its_power(model: ABAIR) -> None:
    """sw_sharpness 2 blends the adapters by p ** 2 (renormalised); the identity share p(clean) stays."""
    logits = torch.tensor([0.5, 1.0, 0.2, -0.3, 0.7])
    _fix_estimator(model, logits.tolist())
    probs = logits.softmax(dim=0)
    soft = probs[1:4] / probs[1:4].sum()
    model.estimator.config = model.estimator.config.model_copy(update={"sw_sharpness": 2.0})
    sharp = probs[1:4] ** 2 / (probs[1:4] ** 2).sum()
    x = _photos()
    weights, p_clean = model.plan_from_probabilities(probs.expand(2, 5), "sw")
    torch.testing.assert_close(weights, sharp.expand(2, 3))
    torch.testing.assert_close(p_clean, probs[:1].expand(2))
    assert float(sharp[0]) > float(soft[0])  # the leading adapter gains, the others lose
    with torch.no_grad():
        want = (probs[0] * x + (1 - probs[0]) * model.forward_blended(x, sharp)).clamp(0, 1)
    torch.testing.assert_close(model.restore(x, "sw"), want, **TOL)
    one_hot, _ = model.plan_from_probabilities(probs.expand(2, 5), "oh")
    torch.testing.assert_close(one_hot, torch.tensor([[1.0, 0.0, 0.0]] * 2))  # oh is not touched


def test_a_high_sw_sharpness_tends_to_the_arg_max_without_underflow(model: ABAIR) -> None:
    model.estimator.config = model.estimator.config.model_copy(update={"sw_sharpness": 64.0})
    probs = torch.tensor([[0.52, 0.17, 0.16, 0.15, 0.0]])  # every adapter probability ** 64 underflows float32
    weights, _ = model.plan_from_probabilities(probs, "sw")
    assert float(weights.sum()) == pytest.approx(1.0)
    assert float(weights[0, 0]) > 0.9


def test_sw_sharpness_below_one_is_refused() -> None:
    with pytest.raises(ValueError, match="sw_sharpness"):
        EstimatorConfig(sw_sharpness=0.5)


def test_oracle_uses_the_given_weights(model: ABAIR) -> None:
    x = _photos()
    per_sample = torch.tensor([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0]])
    with torch.no_grad():
        want = model.forward_blended(x, per_sample).clamp(0, 1)
    torch.testing.assert_close(model.restore(x, "oracle", per_sample), want, **TOL)
    shared = model.restore(x, "oracle", {"rain": 0.5, "noise": 0.5})
    torch.testing.assert_close(shared[:1], want[:1], **TOL)
    with pytest.raises(ValueError, match="needs oracle_weights"):
        model.restore(x, "oracle")
    with pytest.raises(KeyError, match="snow"):
        model.restore(x, "oracle", {"snow": 1.0})
    with pytest.raises(ValueError, match=r"\(2, 3\)"):
        model.restore(x, "oracle", [1.0, 0.0])


def test_restore_leaves_the_model_unchanged(model: ABAIR) -> None:
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    x = _photos()
    model.restore(x[:1], "sw")
    model.restore(x, "oracle", [0.2, 0.3, 0.5])
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key
    assert all(w._blend_p is None and not w.merged for w in lora_modules(model.backbone).values())


def test_unknown_mode_lists_the_allowed_ones(model: ABAIR) -> None:
    with pytest.raises(ValueError, match="allowed: sw, oh, oracle, rain, haze, noise"):
        model.restore(_photos(), "snow")


def test_forward_blended_is_differentiable_in_p(model: ABAIR) -> None:
    p = torch.full((2, 3), 1 / 3, requires_grad=True)
    model.forward_blended(_photos(), p).mean().backward()
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_adapters_must_be_estimator_classes(model: ABAIR) -> None:
    with pytest.raises(ValueError, match="not estimator classes"):
        build_abair("tiny", AdapterConfig(), EstimatorConfig(), ["rain", "snow"], ["clean", "rain"])
    with pytest.raises(ValueError, match="not in the backbone"):
        ABAIR(model.backbone, model.estimator, ["jpeg"])
