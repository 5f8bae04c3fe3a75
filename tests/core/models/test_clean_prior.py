"""The archive prior on clean: the odds of clean scale by the weight, the degradations keep their ratios."""

from __future__ import annotations

import pytest
import torch

from abair_core.models.clean_prior import apply_clean_weight


def test_weight_one_changes_nothing_and_other_weights_scale_the_clean_odds() -> None:
    probs = torch.tensor([[0.36, 0.60, 0.04], [0.05, 0.15, 0.80]])
    assert apply_clean_weight(probs, 1.0) is probs
    out = apply_clean_weight(probs, 3.0)
    torch.testing.assert_close(out.sum(dim=1), torch.ones(2))
    odds_in = probs[:, 0] / (1 - probs[:, 0])
    odds_out = out[:, 0] / (1 - out[:, 0])
    torch.testing.assert_close(odds_out, 3.0 * odds_in)
    torch.testing.assert_close(out[:, 1] / out[:, 2], probs[:, 1] / probs[:, 2])  # sw blends the same adapters
    assert int(out[0].argmax()) == 0 and int(out[1].argmax()) == 2  # 0.36 clean now wins; 0.05 does not
    torch.testing.assert_close(apply_clean_weight(out, 1 / 3), probs)


def test_a_non_positive_weight_is_refused() -> None:
    with pytest.raises(ValueError, match="clean_weight must be > 0"):
        apply_clean_weight(torch.tensor([[0.5, 0.5]]), 0.0)
