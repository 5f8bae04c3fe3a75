"""Low light: darker by the exposure/gamma model, noisier with fewer photons."""

from __future__ import annotations

import numpy as np
import pytest

from abair_core.degradations import build_degradation


def test_mean_follows_exposure_and_gamma(cat: np.ndarray) -> None:
    spec = {"type": "low_light", "exposure": 0.2, "gamma": 1.5, "photons": 1e5, "read_noise": 0.0}
    out = build_degradation(spec).apply(cat, np.random.default_rng(0)).image
    assert float(out.mean()) == pytest.approx(float((0.2 * cat**1.5).mean()), rel=0.01)


def test_fewer_photons_means_more_shot_noise() -> None:
    grey = np.full((64, 64, 3), 0.5, np.float32)

    def noise_std(photons: float) -> float:
        spec = {"type": "low_light", "exposure": 0.5, "gamma": 1.0, "photons": photons, "read_noise": 0.0}
        out = build_degradation(spec).apply(grey, np.random.default_rng(0)).image
        return float(out.std())

    # Poisson: std of x = sqrt(0.25 * photons) / photons
    assert noise_std(100.0) == pytest.approx(np.sqrt(25.0) / 100.0, rel=0.05)
    assert noise_std(100.0) > 3 * noise_std(2000.0)
