"""Small numpy signal helpers shared by the degradation families: kernels, FFT convolution, smooth fields.

scipy is not a dependency, so convolution is an FFT product on a reflect-padded array (exact linear
convolution of the padded signal, cropped back), and smooth random fields are low-resolution noise
upsampled with Pillow's bicubic resize.
"""

from __future__ import annotations

import math

import numpy as np
from PIL import Image

__all__ = ["capsule_mask", "convolve", "gaussian_kernel", "line_kernel", "smooth_noise"]


def gaussian_kernel(sigma: float) -> np.ndarray:
    """A normalised 2-D Gaussian kernel (radius 3 sigma); sigma 0 gives the identity kernel."""
    if sigma <= 0:
        return np.ones((1, 1), np.float64)
    radius = max(1, math.ceil(3.0 * sigma))
    x = np.arange(-radius, radius + 1, dtype=np.float64)
    g = np.exp(-0.5 * (x / sigma) ** 2)
    g /= g.sum()
    return np.outer(g, g)


def _grid(radius: int, angle_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates along and across a direction (angle counter-clockwise from +x, image y pointing down)."""
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1].astype(np.float64)
    a = math.radians(angle_deg)
    along = xx * math.cos(a) - yy * math.sin(a)
    across = xx * math.sin(a) + yy * math.cos(a)
    return along, across


def line_kernel(length: float, angle_deg: float, width: float = 1.0) -> np.ndarray:
    """A normalised anti-aliased line (motion-blur kernel) of ``length`` px at ``angle_deg`` from +x."""
    radius = math.ceil(max(length, width) / 2.0) + 1
    along, across = _grid(radius, angle_deg)
    k = np.clip(length / 2.0 + 0.5 - np.abs(along), 0, 1) * np.clip(width / 2.0 + 0.5 - np.abs(across), 0, 1)
    if k.sum() <= 0:
        k[radius, radius] = 1.0
    return k / k.sum()


def capsule_mask(length: float, angle_deg: float, sigma: float) -> np.ndarray:
    """A soft streak with peak 1: a Gaussian (``sigma`` px) swept along a segment of ``length`` px.

    Convolving sparse seeds with it draws rain streaks or falling snowflakes whose peak brightness is the
    seed's value, whatever their length.
    """
    sigma = max(sigma, 1e-3)
    radius = math.ceil(length / 2.0 + 3.0 * sigma) + 1
    along, across = _grid(radius, angle_deg)
    half = max(length - 1.0, 0.0) / 2.0
    beyond = np.maximum(np.abs(along) - half, 0.0)
    return np.exp(-0.5 * (beyond**2 + across**2) / sigma**2)


def _fast_len(n: int) -> int:
    """Smallest 2^a 3^b 5^c >= n (sizes pocketfft handles fastest)."""
    m = max(1, n)
    while True:
        r = m
        for p in (2, 3, 5):
            while r % p == 0:
                r //= p
        if r == 1:
            return m
        m += 1


def convolve(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Convolve an (H, W) or (H, W, C) array with an odd-sized 2-D kernel, reflect padding, float32 out."""
    kh, kw = kernel.shape
    if kh % 2 == 0 or kw % 2 == 0:
        raise ValueError(f"kernel sides must be odd, got {kernel.shape}")
    if kh == 1 and kw == 1:
        return (image * np.float32(kernel[0, 0])).astype(np.float32)
    squeeze = image.ndim == 2
    x = image[..., None] if squeeze else image
    h, w = x.shape[:2]
    ph, pw = kh // 2, kw // 2
    padded = np.pad(x, ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    size = (_fast_len(padded.shape[0]), _fast_len(padded.shape[1]))
    spec = np.fft.rfft2(padded, s=size, axes=(0, 1))
    kspec = np.fft.rfft2(kernel, s=size)
    full = np.fft.irfft2(spec * kspec[..., None], s=size, axes=(0, 1))
    out = full[2 * ph : 2 * ph + h, 2 * pw : 2 * pw + w].astype(np.float32)
    return out[..., 0] if squeeze else out


def sparse_streaks(shape: tuple[int, int], density: float, min_intensity: float, kernel: np.ndarray,
                   rng: np.random.Generator) -> np.ndarray:
    """A streak/flake layer in [0, 1]: a ``density`` fraction of pixels seeded with intensity in
    [``min_intensity``, 1), convolved with ``kernel`` (rain streaks, snow flakes)."""
    seeds = (rng.random(shape, dtype=np.float32) < density).astype(np.float32)
    seeds *= rng.uniform(min_intensity, 1.0, size=shape).astype(np.float32)
    return np.clip(convolve(seeds, kernel), 0.0, 1.0)


def smooth_noise(height: int, width: int, cells: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth random field in [0, 1] of shape (H, W): ``cells`` x ``cells`` uniform noise, bicubic-upsampled."""
    cells = max(2, int(cells))
    coarse = rng.random((cells, cells), dtype=np.float32)
    field = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC))
    lo, hi = float(field.min()), float(field.max())
    return ((field - lo) / max(hi - lo, 1e-6)).astype(np.float32)
