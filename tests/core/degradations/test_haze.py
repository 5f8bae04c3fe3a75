"""Haze: the scattering model honours the mean transmission; t_mean = 1 is the identity."""

from __future__ import annotations

import numpy as np
import pytest

from abair_core.degradations import build_degradation
from abair_core.degradations.haze import depth_proxy, transmission_map


def test_t_mean_one_is_identity(photo: np.ndarray) -> None:
    result = build_degradation({"type": "haze", "t_mean": 1.0}).apply(photo, np.random.default_rng(0))
    np.testing.assert_allclose(result.image, photo, atol=1e-6)
    assert result.params["beta"] == 0.0


@pytest.mark.parametrize("t_mean", [0.05, 0.3, 0.7])
def test_mean_transmission_is_honoured(t_mean: float) -> None:
    black = np.zeros((64, 96, 3), np.float32)  # I = A (1 - t) on J = 0, so t = 1 - I / A exactly
    result = build_degradation({"type": "haze", "t_mean": t_mean, "airlight": 0.9}).apply(
        black, np.random.default_rng(1)
    )
    t = 1.0 - result.image[..., 0] / 0.9
    assert float(t.mean()) == pytest.approx(t_mean, abs=2e-3)
    assert float(t.std()) > 0.01  # varies across the image with the depth proxy
    assert float(t[:8].mean()) < float(t[-8:].mean())  # far (top) is hazier than near (bottom)


def test_transmission_map_and_depth_proxy() -> None:
    t, beta = transmission_map(50, 70, 0.4, np.random.default_rng(2))
    assert t.shape == (50, 70) and beta > 0
    assert float(t.mean()) == pytest.approx(0.4, abs=1e-4)
    d = depth_proxy(50, 70, np.random.default_rng(2))
    assert d.min() == pytest.approx(0.2) and d.max() == pytest.approx(1.0)


def test_lower_transmission_is_closer_to_airlight(photo: np.ndarray) -> None:
    def gap(t: float) -> float:
        out = build_degradation({"type": "haze", "t_mean": t, "airlight": 0.8}).apply(
            photo, np.random.default_rng(0)
        )
        return float(np.abs(out.image - 0.8).mean())

    assert gap(0.2) < gap(0.5) < gap(0.9)
