"""Additive white Gaussian noise, sigma in 8-bit units (the BSD68 / CBSD68 denoising convention)."""

from __future__ import annotations

from typing import Any

import numpy as np

from abair_core.degradations.base import Degradation
from abair_core.degradations.ranges import DegradationParams, FloatRange, draw, range_field
from abair_core.degradations.registry import register_degradation

__all__ = ["GaussianNoise"]


@register_degradation("noise")
class GaussianNoise(Degradation):
    """I = J + n, n ~ N(0, (sigma/255)^2) i.i.d. per pixel and channel, then clipped to [0, 1]."""

    class Params(DegradationParams):
        sigma: FloatRange = range_field(
            (0.0, 50.0), lo=0.0, hi=100.0, description="noise standard deviation in 8-bit units (x/255)"
        )

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        sigma = draw(self.params.sigma, rng)
        noise = rng.standard_normal(image.shape, dtype=np.float32)
        return image + noise * np.float32(sigma / 255.0), {"sigma": sigma}
