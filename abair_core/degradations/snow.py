"""Synthetic snow: three layers of falling flakes (near: big and few, far: small and many) over a veil."""

from __future__ import annotations

from typing import Any

import numpy as np

from abair_core.degradations.base import Degradation
from abair_core.degradations.kernels import capsule_mask, sparse_streaks
from abair_core.degradations.ranges import DegradationParams, FloatRange, draw, range_field
from abair_core.degradations.registry import register_degradation

__all__ = ["Snow"]

# (size scale, share of the flake density) for near, middle and far layers
_LAYERS = ((1.0, 0.1), (0.6, 0.3), (0.35, 0.6))


@register_degradation("snow")
class Snow(Degradation):
    """Snow100K-like flakes: per layer, sparse seeds convolved with a soft flake of ``flake_size`` px (sigma)
    smeared ``length`` px along the fall direction (``angle_deg`` from vertical), screen-blended at
    ``brightness`` over a whitish veil ``I = J (1 - veil) + veil``."""

    class Params(DegradationParams):
        density: FloatRange = range_field(
            (0.001, 0.004), lo=0.0, hi=0.05, description="fraction of pixels that seed a flake (all layers)"
        )
        flake_size: FloatRange = range_field(
            (0.8, 2.0), lo=0.3, hi=8.0, description="near-layer flake radius (Gaussian sigma) in px"
        )
        length: FloatRange = range_field((1.0, 8.0), lo=1.0, hi=60.0, description="near-layer streak in px")
        angle_deg: FloatRange = range_field(
            (-30.0, 30.0), lo=-80.0, hi=80.0, stronger="none", description="fall direction from vertical"
        )
        veil: FloatRange = range_field((0.05, 0.2), lo=0.0, hi=0.6, description="whitish veil opacity")
        brightness: FloatRange = range_field((0.75, 1.0), lo=0.0, hi=1.0, description="flake opacity")

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.params
        density, size, length = draw(p.density, rng), draw(p.flake_size, rng), draw(p.length, rng)
        angle, veil, brightness = draw(p.angle_deg, rng), draw(p.veil, rng), draw(p.brightness, rng)
        h, w = image.shape[:2]
        clear = np.ones((h, w), np.float32)  # product of (1 - layer): screen blend of all layers
        for scale, share in _LAYERS:
            kernel = capsule_mask(max(1.0, length * scale), 90.0 - angle, max(0.3, size * scale))
            clear *= 1.0 - sparse_streaks((h, w), density * share, 0.6, kernel, rng)
        flakes = (1.0 - clear) * np.float32(brightness)
        veiled = image * np.float32(1.0 - veil) + np.float32(veil * 0.95)
        out = 1.0 - (1.0 - veiled) * (1.0 - flakes[..., None])
        drawn = {"density": density, "flake_size": size, "length": length, "angle_deg": angle, "veil": veil}
        return out, {**drawn, "brightness": brightness}
