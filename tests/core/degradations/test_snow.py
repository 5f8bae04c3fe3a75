"""Snow: flakes and a whitish veil brighten the image."""

from __future__ import annotations

import numpy as np

from abair_core.degradations import build_degradation


def test_snow_brightens_with_flakes_and_veil(photo: np.ndarray) -> None:
    out = build_degradation({"type": "snow"}).apply(photo, np.random.default_rng(0)).image
    assert np.all(out >= photo * 0.4 - 1e-6) and float(out.mean()) > float(photo.mean())


def test_veil_only_and_flake_count() -> None:
    black = np.zeros((80, 80, 3), np.float32)
    veil_only = {"type": "snow", "density": 0.0, "veil": 0.2}
    out = build_degradation(veil_only).apply(black, np.random.default_rng(0)).image
    np.testing.assert_allclose(out, 0.19, atol=1e-6)
    flakes = {"type": "snow", "density": 0.004, "veil": 0.0, "brightness": 1.0}
    out = build_degradation(flakes).apply(black, np.random.default_rng(0)).image
    assert 0.01 < float((out[..., 0] > 0.3).mean()) < 0.3
