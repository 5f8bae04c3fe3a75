"""The archive's prior on ``clean``: a label-shift correction of the estimator's probabilities.

The estimator learns class probabilities under its training mix (Phase III shows it about 30% clean and
mild samples). A real archive is mostly clean: by Bayes' rule, when only the prior of ``clean`` changes,
the posterior odds of ``clean`` against every degradation scale by the ratio of the prior odds
(Saerens et al., "Adjusting the outputs of a classifier to new a priori probabilities", 2002). A data team
that knows its archive sets that ratio, ``clean_weight``: 1 keeps the trained mix; 3 asks for three times
the evidence before an image is restored. The degradations keep their ratios to one another, so ``sw``
blends the same adapters in the same proportions; only the identity path and the pass-through decision move.
"""

from __future__ import annotations

import torch

__all__ = ["apply_clean_weight"]


def apply_clean_weight(probs: torch.Tensor, weight: float) -> torch.Tensor:
    """Scale the odds of ``clean`` (class 0) in probabilities (N, K) by ``weight`` > 0; rows still sum to 1."""
    if weight <= 0:
        raise ValueError(f"clean_weight must be > 0, got {weight}")
    if weight == 1.0:
        return probs
    scaled = probs.clone()
    scaled[:, 0] = scaled[:, 0] * weight
    return scaled / scaled.sum(dim=1, keepdim=True).clamp_min(1e-12)
