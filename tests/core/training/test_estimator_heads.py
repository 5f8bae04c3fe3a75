"""`phase3.trainable: new_classes`: a new class gets a head of its own and only it trains, so the old scores stay."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from abair_core.components import load_estimator, save_estimator
from abair_core.models.estimator import DegradationEstimator, EstimatorConfig
from abair_core.training.config import EstimatorSchedule
from abair_core.training.phase3 import train_estimator
from abair_core.training.warm_start import start_estimator_from

BASE = ["clean", "noise", "blur"]
EXTENDED = ["clean", "noise", "blur", "jpeg"]


def _schedule(**update) -> EstimatorSchedule:
    settings = {"steps": 30, "batch_size": 8, "patch_size": 32, "lr": 0.01, "warmup_steps": 1, "log_every": 30,
                "clean_fraction": 0.3, "mixed_fraction": 0.0, "warm_start": "base", "trainable": "new_classes"}
    return EstimatorSchedule(**{**settings, **update})


def _base() -> DegradationEstimator:
    torch.manual_seed(1)
    base = DegradationEstimator(EstimatorConfig(), BASE)
    base(torch.rand(8, 3, 32, 32))  # one training-mode pass: BatchNorm statistics that are not the defaults
    return base.eval()


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


def test_only_the_new_head_trains_and_the_old_scores_stay_the_bases(patches) -> None:
    base = _base()
    torch.manual_seed(3)
    estimator = DegradationEstimator(base.config, EXTENDED, ["jpeg"])
    assert start_estimator_from(estimator, base.state_dict(), BASE) == BASE
    before = {k: v.clone() for k, v in estimator.state_dict().items()}
    result = train_estimator(estimator, EXTENDED, patches, _schedule(), train_heads=["jpeg"])
    assert result.steps == 30
    after = estimator.state_dict()
    for key, tensor in before.items():  # every weight and BatchNorm statistic but the head's is the base's
        assert torch.equal(after[key], tensor) != key.startswith("heads.jpeg."), key
    x = torch.from_numpy(patches.degraded).permute(0, 3, 1, 2).float()[:, :, :32, :32] / 255
    with torch.no_grad():
        old, new = base(x), estimator.eval()(x)
    assert torch.allclose(new[:, :3], old, atol=1e-5)  # the old classes' logits: the base's
    jpeg = torch.from_numpy(np.asarray([n == "jpeg" for n in patches.names]))
    assert new[jpeg].softmax(1)[:, 3].mean() > 2 * new[~jpeg].softmax(1)[:, 3].mean()  # it learned to fire on jpeg


def test_a_second_head_keeps_the_first_and_a_removal_drops_it() -> None:
    torch.manual_seed(4)
    first = DegradationEstimator(EstimatorConfig(), EXTENDED, ["jpeg"]).eval()
    second = DegradationEstimator(first.config, [*EXTENDED, "snow"], ["jpeg", "snow"]).eval()
    start_estimator_from(second, first.state_dict(), EXTENDED, ["jpeg"])
    removed = DegradationEstimator(first.config, ["clean", "noise", "jpeg"], ["jpeg"]).eval()
    start_estimator_from(removed, first.state_dict(), EXTENDED, ["jpeg"])
    x = torch.rand(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(second(x)[:, :4], first(x))
        assert torch.allclose(removed(x), first(x)[:, [0, 1, 3]])


def test_no_new_class_trains_nothing(patches) -> None:
    base = _base()
    estimator = DegradationEstimator(base.config, BASE).eval()
    estimator.load_state_dict(base.state_dict())
    assert train_estimator(estimator, BASE, patches, _schedule(), train_heads=[]).steps == 0
    assert all(torch.equal(v, base.state_dict()[k]) for k, v in estimator.state_dict().items())


def test_new_classes_needs_the_base_estimator() -> None:
    with pytest.raises(ValidationError, match="warm_start must be 'base'"):
        _schedule(warm_start="scratch")


class _CountingTeacher(DegradationEstimator):
    """The base estimator, counting its forward passes."""

    calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        type(self).calls += 1
        return super().forward(x)


def test_the_frozen_estimator_stands_in_for_the_teacher_it_started_from(patches) -> None:
    base = _base()
    teacher = _CountingTeacher(base.config, BASE)
    teacher.load_state_dict(base.state_dict())
    schedule = _schedule(steps=5, log_every=5)
    runs = {}
    for started_from_base in (True, False):
        torch.manual_seed(3)
        estimator = DegradationEstimator(base.config, EXTENDED, ["jpeg"])
        if started_from_base:
            start_estimator_from(estimator, base.state_dict(), BASE)
        _CountingTeacher.calls = 0
        result = train_estimator(estimator, EXTENDED, patches, schedule, teacher=teacher.eval(), distill_weight=1.0,
                                 train_heads=["jpeg"])
        runs[started_from_base] = (_CountingTeacher.calls, result.metrics["distillation"])
    assert runs[True][0] == 1  # checked on the first batch, then the estimator's own old logits serve
    assert runs[False][0] == 5  # a student that is not the teacher: the teacher runs every step
