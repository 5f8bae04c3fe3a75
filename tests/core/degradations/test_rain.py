"""Rain: bright streaks screen-blended along the fall direction."""

from __future__ import annotations

import numpy as np

from abair_core.degradations import build_degradation


def test_rain_only_brightens_and_density_zero_is_identity(photo: np.ndarray) -> None:
    out = build_degradation({"type": "rain"}).apply(photo, np.random.default_rng(0)).image
    assert np.all(out >= photo - 1e-6) and float((out - photo).mean()) > 0.005
    none = build_degradation({"type": "rain", "density": 0.0}).apply(photo, np.random.default_rng(0)).image
    np.testing.assert_allclose(none, photo, atol=1e-6)


def test_vertical_streaks_are_longer_than_wide() -> None:
    black = np.zeros((96, 96, 3), np.float32)
    spec = {"type": "rain", "density": 0.003, "length": 25, "angle_deg": 0, "width": 1.0, "brightness": 1.0}
    streaks = build_degradation(spec).apply(black, np.random.default_rng(3)).image[..., 0]
    vertical_corr = np.corrcoef(streaks[:-1].ravel(), streaks[1:].ravel())[0, 1]
    horizontal_corr = np.corrcoef(streaks[:, :-1].ravel(), streaks[:, 1:].ravel())[0, 1]
    assert vertical_corr > 0.9 > horizontal_corr + 0.3
