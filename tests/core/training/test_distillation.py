"""Distillation from the base estimator: class mapping, which samples count, and that it keeps the base's answers."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abair_core.models.estimator import DegradationEstimator, EstimatorConfig
from abair_core.training.config import EstimatorSchedule
from abair_core.training.distillation import distillation_loss, known_to_teacher, teacher_probabilities
from abair_core.training.phase3 import train_estimator

TEACHER = ["clean", "noise", "blur"]
STUDENT = ["clean", "noise", "blur", "jpeg"]


def test_the_teachers_probabilities_land_on_the_students_classes_by_name() -> None:
    logits = torch.tensor([[0.0, 1.0, 2.0], [3.0, 0.0, -1.0]])
    probs = teacher_probabilities(logits, TEACHER, ["clean", "blur", "jpeg", "noise"])
    expected = logits.softmax(dim=1)
    assert torch.allclose(probs[:, [0, 1, 3]], expected[:, [0, 2, 1]])
    assert torch.equal(probs[:, 2], torch.zeros(2))  # the new class: the teacher never said it
    # a class the student no longer has (a removed adapter) is dropped and the rest renormalised
    dropped = teacher_probabilities(logits, TEACHER, ["clean", "noise"])
    assert torch.allclose(dropped, logits[:, :2].softmax(dim=1))
    assert torch.allclose(dropped.sum(dim=1), torch.ones(2))
    with pytest.raises(ValueError, match="share none"):
        teacher_probabilities(logits, TEACHER, ["rain", "snow"])


def test_only_samples_made_of_the_teachers_classes_are_distilled() -> None:
    targets = torch.tensor([[1.0, 0, 0, 0], [0, 0.5, 0.5, 0], [0, 0, 0, 1], [0, 0.5, 0, 0.5]])
    assert known_to_teacher(targets, TEACHER, STUDENT).tolist() == [True, True, False, False]
    assert known_to_teacher(targets[:, :3], TEACHER, TEACHER).all()  # same classes (a replacement): all known


def test_the_loss_is_the_cross_entropy_on_known_samples_and_zero_without_any() -> None:
    student = torch.randn(3, 4, requires_grad=True)
    soft = torch.tensor([[0.2, 0.3, 0.5, 0.0], [1.0, 0, 0, 0], [0.1, 0.1, 0.1, 0.7]])
    known = torch.tensor([True, True, False])
    loss = distillation_loss(student, soft, known)
    manual = -(soft[:2] * torch.log_softmax(student[:2], dim=1)).sum(1).mean()
    assert loss.item() == pytest.approx(manual.item(), rel=1e-6)
    none = distillation_loss(student, soft, torch.zeros(3, dtype=torch.bool))
    none.backward()  # a batch with no known sample still backpropagates (zero gradient)
    assert none.item() == 0.0 and torch.equal(student.grad, torch.zeros_like(student))


def _disagreement(student: DegradationEstimator, teacher: DegradationEstimator, x: torch.Tensor) -> float:
    """Mean KL(teacher || student) over the teacher's classes on ``x``."""
    with torch.no_grad():
        soft = teacher_probabilities(teacher(x), teacher.class_names, student.class_names)
        log_student = torch.log_softmax(student(x), dim=1)
        return float((soft * (torch.log(soft.clamp_min(1e-12)) - log_student)).sum(1).mean())


def test_distillation_keeps_the_base_estimators_answers(patches) -> None:
    """A student trained beside the base's answers agrees with them far more than one trained without."""
    config = EstimatorConfig()
    torch.manual_seed(1)
    teacher = DegradationEstimator(config, TEACHER).eval()
    with torch.no_grad():  # a decided teacher, whose answers are not the labels: the test sees whom the student follows
        teacher.output_layer.weight.mul_(20.0)
    schedule = EstimatorSchedule(steps=40, batch_size=8, patch_size=32, lr=0.003, warmup_steps=1, log_every=40,
                                 clean_fraction=0.3, mixed_fraction=0.0)
    known = torch.from_numpy(np.asarray([n in TEACHER for n in patches.names]))
    x = torch.from_numpy(patches.degraded[known.numpy()]).permute(0, 3, 1, 2).float()[:, :, :32, :32] / 255
    gaps = {}
    for weight in (0.0, 3.0):
        torch.manual_seed(2)
        student = DegradationEstimator(config, STUDENT)
        result = train_estimator(student, STUDENT, patches, schedule, teacher=teacher, distill_weight=weight)
        assert ("distillation" in result.metrics) == (weight > 0)
        gaps[weight] = _disagreement(student.eval(), teacher, x)
    assert gaps[3.0] < 0.5 * gaps[0.0], gaps
