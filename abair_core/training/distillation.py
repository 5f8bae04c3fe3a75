"""Keep a retrained estimator's answers on the classes its base already knew (Learning without Forgetting).

``abair add-degradation`` retrains the estimator over every adapter. The old adapters are reused
untouched, so the only way the old tasks can change is the estimator's routing: a retraining that
reads a few blurred photos as clean (a new type synthesized from many varied photos teaches a wider
``clean``) costs the blur task decibels although no adapter changed. Distillation from the base
estimator (Li & Hoiem, "Learning without Forgetting", 2016) adds, on every sample whose target is
made of classes the base knows, the cross-entropy between the base's probabilities and the new
estimator's, so the new estimator stays close to the old routing while it learns the new class
(measured in docs/ADDING_A_DEGRADATION.md, "Keeping the old routing": it reduces the drift, it does not remove it).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F


def teacher_probabilities(teacher_logits: torch.Tensor, teacher_classes: Sequence[str],
                          student_classes: Sequence[str]) -> torch.Tensor:
    """The teacher's softmax over the classes both know, in the student's class order (N, S).

    A class only the student has (the new type) gets 0; a class only the teacher has (a removed
    adapter) is dropped and the rest renormalised.
    """
    shared = [c for c in student_classes if c in teacher_classes]
    if not shared:
        raise ValueError(f"the base estimator's classes {list(teacher_classes)} share none with "
                         f"{list(student_classes)}")
    columns = torch.tensor([list(teacher_classes).index(c) for c in shared], device=teacher_logits.device)
    probs = teacher_logits.float().index_select(1, columns).softmax(dim=1)
    out = probs.new_zeros(teacher_logits.shape[0], len(student_classes))
    out[:, [list(student_classes).index(c) for c in shared]] = probs
    return out


def known_to_teacher(targets: torch.Tensor, teacher_classes: Sequence[str],
                     student_classes: Sequence[str]) -> torch.Tensor:
    """Samples (N,) whose target puts no mass on a class the teacher does not know."""
    unknown = [i for i, c in enumerate(student_classes) if c not in teacher_classes]
    if not unknown:
        return torch.ones(targets.shape[0], dtype=torch.bool, device=targets.device)
    return targets[:, unknown].sum(dim=1) == 0


def distillation_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor,
                      known: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the student against the teacher's probabilities over the ``known`` samples.

    Zero (with a gradient path) when no sample of the batch is known to the teacher.
    """
    log_probs = F.log_softmax(student_logits.float(), dim=1)
    per_sample = -(teacher_probs * log_probs).sum(dim=1)
    if not bool(known.any()):
        return per_sample.sum() * 0.0
    return per_sample[known].mean()
