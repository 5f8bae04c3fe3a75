"""Heads (files of 2026-12-02) and experts (`phase3.trainable: new_classes`): a new class gets an estimator of its own
that gates the base's, so the old classes keep their scores' ranking."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from abair_core.components import load_estimator, save_estimator
from abair_core.models.estimator import DegradationEstimator, EstimatorConfig
from abair_core.training.config import EstimatorSchedule
from abair_core.training.warm_start import start_estimator_from

BASE = ["clean", "noise", "blur"]
EXTENDED = ["clean", "noise", "blur", "jpeg"]


def _schedule(**update) -> EstimatorSchedule:
    settings = {"steps": 30, "batch_size": 8, "patch_size": 32, "lr": 0.01, "warmup_steps": 1, "log_every": 30,
                "clean_fraction": 0.3, "mixed_fraction": 0.0, "warm_start": "base", "trainable": "new_classes"}
    return EstimatorSchedule(**{**settings, **update})


def test_heads_score_their_classes_in_class_order() -> None:
    torch.manual_seed(0)
    estimator = DegradationEstimator(EstimatorConfig(), ["clean", "jpeg", "noise", "blur"], ["jpeg"]).eval()
    assert estimator.classifier_classes == ["clean", "noise", "blur"]
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        f = estimator.features(x)
        logits = estimator(x)
        assert torch.allclose(logits[:, [0, 2, 3]], estimator.classifier(f))
        assert torch.allclose(logits[:, 1:2], estimator.heads["jpeg"](f))
    with pytest.raises(ValueError, match="head_classes"):
        DegradationEstimator(EstimatorConfig(), BASE, ["clean"])
    with pytest.raises(ValueError, match="head_classes"):
        DegradationEstimator(EstimatorConfig(), BASE, ["snow"])


def test_a_head_survives_saving_and_an_old_file_loads_without_one(tmp_path) -> None:
    torch.manual_seed(0)
    estimator = DegradationEstimator(EstimatorConfig(), EXTENDED, ["jpeg"]).eval()
    save_estimator(str(tmp_path / "e.safetensors"), estimator, {})
    loaded = load_estimator(str(tmp_path / "e.safetensors"))
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        assert loaded.head_classes == ["jpeg"] and torch.equal(loaded(x), estimator(x))
    plain = DegradationEstimator(EstimatorConfig(), BASE).eval()
    save_estimator(str(tmp_path / "p.safetensors"), plain, {})
    assert load_estimator(str(tmp_path / "p.safetensors")).head_classes == []


def test_an_expert_gates_the_classes_before_it() -> None:
    torch.manual_seed(0)
    base = DegradationEstimator(EstimatorConfig(), EXTENDED, ["jpeg"]).eval()
    grown = DegradationEstimator(base.config, [*EXTENDED, "snow"], ["jpeg"], {"snow": [*EXTENDED, "snow"]}).eval()
    assert start_estimator_from(grown, base.state_dict(), EXTENDED, ["jpeg"]) == EXTENDED
    assert grown.classifier_classes == ["clean", "noise", "blur"]
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        before, after = base(x).softmax(1), grown(x).softmax(1)
        q = grown.experts["snow"](x).softmax(1)[:, 4]
    assert torch.allclose(after[:, 4], q, atol=1e-6)  # the new class: the expert's probability of it
    assert torch.allclose(after[:, :4], before * (1 - q[:, None]), atol=1e-6)  # the rest: the base's, scaled
    assert torch.equal(after[:, :4].argmax(1), before.argmax(1))  # so the old classes keep their ranking
    with pytest.raises(ValueError, match="expert"):
        DegradationEstimator(EstimatorConfig(), EXTENDED, ["jpeg"], {"jpeg": EXTENDED})  # a head already
    with pytest.raises(ValueError, match="expert"):
        DegradationEstimator(EstimatorConfig(), EXTENDED, (), {"jpeg": BASE})  # not one of its own classes


def test_experts_survive_saving_and_the_next_step_keeps_them(tmp_path) -> None:
    torch.manual_seed(4)
    first = DegradationEstimator(EstimatorConfig(), EXTENDED, (), {"jpeg": EXTENDED}).eval()
    save_estimator(str(tmp_path / "e.safetensors"), first, {})
    loaded = load_estimator(str(tmp_path / "e.safetensors"))
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert loaded.expert_classes == {"jpeg": EXTENDED} and torch.equal(loaded(x), first(x))
    second = DegradationEstimator(first.config, [*EXTENDED, "snow"], (), {"jpeg": EXTENDED,
                                                                           "snow": [*EXTENDED, "snow"]}).eval()
    fresh = {k: v.clone() for k, v in second.state_dict().items() if k.startswith("experts.snow.")}
    start_estimator_from(second, first.state_dict(), EXTENDED, (), ["jpeg"])
    assert all(torch.equal(second.state_dict()[k], v) for k, v in fresh.items())  # the new expert: untouched
    with torch.no_grad():
        assert torch.equal(second.experts["jpeg"](x), first.experts["jpeg"](x))  # the base's expert: carried over
    removed = DegradationEstimator(first.config, ["clean", "noise", "jpeg"], (), {"jpeg": EXTENDED}).eval()
    start_estimator_from(removed, first.state_dict(), EXTENDED, (), ["jpeg"])
    with torch.no_grad():
        assert torch.allclose(removed(x)[:, :2], first(x)[:, :2])


def test_new_classes_needs_the_base_estimator() -> None:
    with pytest.raises(ValidationError, match="warm_start must be 'base'"):
        _schedule(warm_start="scratch")


def test_an_expert_trains_three_times_the_estimator_steps_unless_set() -> None:
    """An expert learns the new type on features made for the old ones: it needs the longer schedule."""
    assert _schedule(steps=40).resolved_expert_steps() == 120
    assert _schedule(steps=40, expert_steps=50).resolved_expert_steps() == 50
    with pytest.raises(ValidationError, match="expert_steps"):
        _schedule(expert_steps=0)


def test_phase3_runs_the_expert_steps_only_when_an_expert_trains() -> None:
    from abair_core.training.config import TrainConfig
    from abair_core.training.extension import resolved_estimator_steps

    config = TrainConfig.model_validate({"name": "x", "phase3": {"steps": 40, "warm_start": "base"}})
    assert resolved_estimator_steps(config, "base-estimator.safetensors") == 120  # new_classes from the base
    assert resolved_estimator_steps(config, None) == 40  # no base: the whole estimator trains
    everything = config.model_copy(update={"phase3": config.phase3.model_copy(update={"trainable": "all"})})
    assert resolved_estimator_steps(everything, "base-estimator.safetensors") == 40
