"""Low light: exposure and gamma reduction, then sensor noise (Poisson shot noise plus Gaussian read noise)."""

from __future__ import annotations

from typing import Any

import numpy as np

from abair_core.degradations.base import Degradation
from abair_core.degradations.ranges import DegradationParams, FloatRange, draw, range_field
from abair_core.degradations.registry import register_degradation

__all__ = ["LowLight"]


@register_degradation("low_light")
class LowLight(Degradation):
    """LOL-like under-exposure: ``x = exposure * J**gamma``; shot noise ``Poisson(x * photons) / photons``
    (``photons`` = photo-electrons at full scale: fewer is noisier) plus read noise (8-bit units)."""

    class Params(DegradationParams):
        exposure: FloatRange = range_field(
            (0.1, 0.4), lo=0.01, hi=1.0, stronger="lower", description="linear exposure scale"
        )
        gamma: FloatRange = range_field(
            (1.0, 1.5), lo=0.2, hi=5.0, description="gamma applied before exposure (>1 darkens mid-tones)"
        )
        photons: FloatRange = range_field(
            (150.0, 2000.0), lo=1.0, hi=1e6, stronger="lower", description="photo-electrons at white"
        )
        read_noise: FloatRange = range_field(
            (0.5, 4.0), lo=0.0, hi=50.0, description="Gaussian read noise std in 8-bit units"
        )

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.params
        exposure, gamma = draw(p.exposure, rng), draw(p.gamma, rng)
        photons, read_noise = draw(p.photons, rng), draw(p.read_noise, rng)
        dark = np.float32(exposure) * np.power(image, np.float32(gamma))
        shot = rng.poisson(dark * np.float32(photons)).astype(np.float32) / np.float32(photons)
        read = rng.standard_normal(image.shape, dtype=np.float32) * np.float32(read_noise / 255.0)
        drawn = {"exposure": exposure, "gamma": gamma, "photons": photons, "read_noise": read_noise}
        return shot + read, drawn
