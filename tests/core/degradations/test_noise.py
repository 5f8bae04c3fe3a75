"""Gaussian noise: the empirical sigma matches the parameter (8-bit units)."""

from __future__ import annotations

import numpy as np
import pytest

from abair_core.degradations import build_degradation


@pytest.mark.parametrize("sigma", [5.0, 15.0, 25.0])
def test_empirical_sigma_matches_param(sigma: float) -> None:
    grey = np.full((128, 128, 3), 0.5, np.float32)
    result = build_degradation({"type": "noise", "sigma": sigma}).apply(grey, np.random.default_rng(0))
    residual = (result.image - grey) * 255.0
    assert result.params == {"sigma": sigma}
    assert residual.std() == pytest.approx(sigma, rel=0.02)
    assert abs(residual.mean()) < 0.3


def test_sigma_zero_is_identity(photo: np.ndarray) -> None:
    result = build_degradation({"type": "noise", "sigma": 0}).apply(photo, np.random.default_rng(0))
    assert np.array_equal(result.image, photo)
