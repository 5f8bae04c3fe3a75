"""PSNR/SSIM match scikit-image on real photos; the torch PSNR matches the NumPy one per sample."""

import math

import numpy as np
import pytest
import torch
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from abair_core.metrics import psnr, psnr_torch, psnr_y, rgb_to_y, ssim, ssim_y


def _photo_pair(name: str, sigma: float) -> tuple[np.ndarray, np.ndarray]:
    clean = getattr(data, name)()[:200, :240].astype(np.float32) / 255.0
    rng = np.random.default_rng(7)
    noisy = np.clip(clean + rng.normal(0.0, sigma, clean.shape), 0.0, 1.0).astype(np.float32)
    return clean, noisy


def _skimage_ssim(a: np.ndarray, b: np.ndarray, **kw) -> float:
    return structural_similarity(
        a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1, **kw
    )


@pytest.mark.parametrize(("name", "sigma"), [("astronaut", 0.1), ("chelsea", 0.03), ("coffee", 0.2)])
def test_psnr_and_ssim_match_skimage_on_rgb_photos(name: str, sigma: float) -> None:
    clean, noisy = _photo_pair(name, sigma)
    assert psnr(clean, noisy) == pytest.approx(peak_signal_noise_ratio(clean, noisy, data_range=1), abs=1e-4)
    assert ssim(clean, noisy) == pytest.approx(_skimage_ssim(clean, noisy, channel_axis=-1), abs=1e-4)


def test_ssim_matches_skimage_on_a_grey_photo_and_another_data_range() -> None:
    clean = data.camera()[:128, :160].astype(np.float64)
    noisy = np.clip(clean + np.random.default_rng(1).normal(0, 20, clean.shape), 0, 255)
    expected = structural_similarity(
        clean, noisy, gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255
    )
    assert ssim(clean, noisy, data_range=255) == pytest.approx(expected, abs=1e-4)
    assert psnr(clean, noisy, 255) == pytest.approx(
        peak_signal_noise_ratio(clean, noisy, data_range=255), abs=1e-4
    )


def test_identical_images_score_perfectly() -> None:
    clean, _ = _photo_pair("astronaut", 0.0)
    assert psnr(clean, clean) == math.inf
    assert ssim(clean, clean) == pytest.approx(1.0, abs=1e-9)


def test_y_channel_metrics_use_bt601_luma() -> None:
    clean, noisy = _photo_pair("chelsea", 0.05)
    y_clean = 16 / 255 + (65.481 * clean[..., 0] + 128.553 * clean[..., 1] + 24.966 * clean[..., 2]) / 255
    np.testing.assert_allclose(rgb_to_y(clean), y_clean, atol=1e-6)
    assert rgb_to_y(np.ones((1, 1, 3)))[0, 0] == pytest.approx(235 / 255)
    y_noisy = rgb_to_y(noisy)
    assert psnr_y(clean, noisy) == pytest.approx(
        peak_signal_noise_ratio(y_clean, y_noisy, data_range=1), abs=1e-4
    )
    assert ssim_y(clean, noisy) == pytest.approx(_skimage_ssim(y_clean, y_noisy), abs=1e-4)


def test_psnr_torch_is_per_sample() -> None:
    pairs = [_photo_pair("astronaut", s) for s in (0.02, 0.1)]
    a = torch.from_numpy(np.stack([p[0] for p in pairs])).permute(0, 3, 1, 2)
    b = torch.from_numpy(np.stack([p[1] for p in pairs])).permute(0, 3, 1, 2)
    values = psnr_torch(a, b)
    assert values.shape == (2,)
    for value, (clean, noisy) in zip(values.tolist(), pairs, strict=True):
        assert value == pytest.approx(psnr(clean, noisy), abs=1e-4)
    assert values[0] > values[1]


def test_shape_mismatch_and_tiny_images_are_refused() -> None:
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(np.zeros((4, 4)), np.zeros((4, 5)))
    with pytest.raises(ValueError, match="at least 11x11"):
        ssim(np.zeros((8, 8)), np.zeros((8, 8)))
    with pytest.raises(ValueError, match="shapes differ"):
        psnr_torch(torch.zeros(1, 3, 4, 4), torch.zeros(2, 3, 4, 4))
