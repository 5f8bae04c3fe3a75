"""PSNR and SSIM as image-restoration papers report them, matching scikit-image to 1e-4.

SSIM follows Wang et al. (2004) with scikit-image's ``gaussian_weights=True`` settings: an 11x11
Gaussian window (sigma 1.5, truncate 3.5), K1 = 0.01, K2 = 0.03, population covariances
(``use_sample_covariance=False``), "reflect" borders, a 5-pixel border cropped before averaging, and
RGB scored per channel then averaged. The Gaussian filter is a separable NumPy convolution so the core
needs no SciPy. ``*_y`` variants score ITU-R BT.601 luma, ``Y = 16/255 + (65.481 R + 128.553 G +
24.966 B) / 255``, as common all-in-one restoration evaluations do.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["psnr", "psnr_torch", "psnr_y", "rgb_to_y", "ssim", "ssim_y"]

SSIM_SIGMA = 1.5
SSIM_TRUNCATE = 3.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def psnr(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Peak signal-to-noise ratio in dB over all elements; ``inf`` for identical inputs."""
    x, y = _pair(a, b)
    mse = float(np.mean((x - y) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(data_range**2 / mse)


def ssim(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """Mean structural similarity of (H, W) or (H, W, C) images; channels are scored apart and averaged."""
    x, y = _pair(a, b)
    if x.ndim == 2:
        return _ssim_channel(x, y, data_range)
    if x.ndim != 3:
        raise ValueError(f"ssim expects (H, W) or (H, W, C) arrays, got {x.shape}")
    return float(np.mean([_ssim_channel(x[..., c], y[..., c], data_range) for c in range(x.shape[2])]))


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """ITU-R BT.601 luma of an (..., 3) RGB array in [0, 1], in [16/255, 235/255]."""
    rgb = np.asarray(rgb, dtype=np.float64)
    if rgb.shape[-1] != 3:
        raise ValueError(f"rgb_to_y expects a last axis of 3 channels, got {rgb.shape}")
    return 16.0 / 255.0 + (65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]) / 255.0


def psnr_y(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """PSNR on BT.601 luma of two RGB images."""
    return psnr(rgb_to_y(a), rgb_to_y(b), data_range)


def ssim_y(a: np.ndarray, b: np.ndarray, data_range: float = 1.0) -> float:
    """SSIM on BT.601 luma of two RGB images."""
    return ssim(rgb_to_y(a), rgb_to_y(b), data_range)


def psnr_torch(a: torch.Tensor, b: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-sample PSNR (N,) of two (N, ...) tensors, in float32 without gradients, for training logs."""
    if a.shape != b.shape:
        raise ValueError(f"shapes differ: {tuple(a.shape)} vs {tuple(b.shape)}")
    with torch.no_grad():
        diff = a.detach().double() - b.detach().double()
        mse = diff.pow(2).reshape(diff.shape[0], -1).mean(dim=1)
        return (10.0 * torch.log10(data_range**2 / mse)).float()


def _pair(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(a, dtype=np.float64)
    y = np.asarray(b, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"shapes differ: {x.shape} vs {y.shape}")
    return x, y


def _gaussian_kernel() -> np.ndarray:
    radius = int(SSIM_TRUNCATE * SSIM_SIGMA + 0.5)
    taps = np.arange(-radius, radius + 1, dtype=np.float64)
    kernel = np.exp(-0.5 * (taps / SSIM_SIGMA) ** 2)
    return kernel / kernel.sum()


def _filter_axis(image: np.ndarray, kernel: np.ndarray, axis: int) -> np.ndarray:
    """Correlate along one axis with SciPy's "reflect" border (edge sample repeated: d c b a | a b c d)."""
    radius = kernel.size // 2
    pad = [(0, 0)] * image.ndim
    pad[axis] = (radius, radius)
    padded = np.pad(image, pad, mode="symmetric")
    length = image.shape[axis]
    out = np.zeros_like(image)
    window = [slice(None)] * image.ndim
    for k, weight in enumerate(kernel):
        window[axis] = slice(k, k + length)
        out += weight * padded[tuple(window)]
    return out


def _gaussian_filter(image: np.ndarray) -> np.ndarray:
    kernel = _gaussian_kernel()
    return _filter_axis(_filter_axis(image, kernel, 0), kernel, 1)


def _ssim_channel(x: np.ndarray, y: np.ndarray, data_range: float) -> float:
    window = _gaussian_kernel().size
    if min(x.shape) < window:
        raise ValueError(f"ssim needs images of at least {window}x{window} pixels, got {x.shape}")
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x, mu_y = _gaussian_filter(x), _gaussian_filter(y)
    var_x = _gaussian_filter(x * x) - mu_x * mu_x
    var_y = _gaussian_filter(y * y) - mu_y * mu_y
    cov = _gaussian_filter(x * y) - mu_x * mu_y
    ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))
    crop = (window - 1) // 2
    return float(ssim_map[crop:-crop, crop:-crop].mean())
