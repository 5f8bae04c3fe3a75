"""Classical image statistics of the estimator: each one measures what its name says on real photos."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.degradations.registry import build_degradation
from abair_core.models.image_statistics import NUM_STATISTICS, STATISTIC_NAMES, degradation_statistics


def _crop(name: str = "astronaut", size: int = 128) -> np.ndarray:
    return getattr(data, name)()[100 : 100 + size, 100 : 100 + size].astype(np.float32) / 255.0


def _stats(*images: np.ndarray) -> dict[str, torch.Tensor]:
    x = torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)
    values = degradation_statistics(x)
    assert values.shape == (len(images), NUM_STATISTICS) and torch.isfinite(values).all()
    return {name: values[:, i] for i, name in enumerate(STATISTIC_NAMES)}


def _degrade(image: np.ndarray, **spec: object) -> np.ndarray:
    out = build_degradation(spec).apply(image, np.random.default_rng(0)).image
    return np.round(out * 255) / 255  # 8-bit, like every stored image


@pytest.mark.parametrize("sigma", [5.0, 15.0, 50.0])
def test_noise_level_estimate_tracks_the_true_sigma_on_a_flat_image(sigma: float) -> None:
    flat = np.full((128, 128, 3), 0.5, np.float32)
    estimate = float(_stats(_degrade(flat, type="noise", sigma=sigma))["log_noise_luma"].exp()[0]) * 255
    # luma averages three independent channels: its std is sigma * sqrt(.299² + .587² + .114²) ≈ 0.67 sigma
    assert estimate == pytest.approx(0.67 * sigma, rel=0.15)


def test_noise_raises_the_noise_statistic_above_the_photos_texture() -> None:
    clean = _crop("coffee")
    s = _stats(clean, _degrade(clean, type="noise", sigma=15))
    assert float(s["log_noise_luma"][1]) > float(s["log_noise_luma"][0]) + 0.5


def test_blur_lowers_the_high_frequency_share() -> None:
    clean = _crop("astronaut")
    s = _stats(clean, _degrade(clean, type="blur", kind="gaussian", sigma=2.0))
    assert float(s["laplacian_to_gradient"][1]) < float(s["laplacian_to_gradient"][0]) - 0.2


def test_low_light_darkens_and_haze_lifts_the_dark_channel() -> None:
    clean = _crop("chelsea")
    s = _stats(clean, _degrade(clean, type="low_light", exposure=0.2, gamma=1.2, photons=500, read_noise=2.0),
               _degrade(clean, type="haze", t_mean=0.5, airlight=0.85))
    assert float(s["luma_q50"][1]) < 0.5 * float(s["luma_q50"][0])
    assert float(s["dark_channel"][2]) > float(s["dark_channel"][0]) + 0.2
    assert float(s["saturation"][2]) < float(s["saturation"][0])


def test_jpeg_blockiness_and_bit_depth_banding() -> None:
    clean = _crop("astronaut")
    s = _stats(clean, _degrade(clean, type="jpeg", quality=10), _degrade(clean, type="bit_depth", bits=4))
    assert float(s["blockiness"][1]) > float(s["blockiness"][0]) + 0.3
    assert float(s["grey_levels_used"][2]) < 0.5 * float(s["grey_levels_used"][0])


def test_rain_streaks_are_bright_outliers() -> None:
    clean = _crop("coffee")
    rain = _degrade(clean, type="rain", density=0.004, length=25, width=0.9, brightness=0.6)
    s = _stats(clean, rain)
    assert float(s["bright_outliers"][1]) > float(s["bright_outliers"][0]) + 0.05


def test_the_separable_window_minimum_equals_the_two_dimensional_one() -> None:
    """The dark channel's 7x7 minimum, computed as a column pass then a row pass, border windows included."""
    from abair_core.models.image_statistics import _window_min

    y = torch.rand(3, 1, 23, 30)
    expected = -torch.nn.functional.max_pool2d(-y, 7, stride=1, padding=3)
    assert torch.equal(_window_min(y, 7), expected)
