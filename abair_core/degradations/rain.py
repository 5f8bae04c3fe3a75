"""Synthetic rain streaks: sparse drops smeared along the fall direction and screen-blended on the image."""

from __future__ import annotations

from typing import Any

import numpy as np

from abair_core.degradations.base import Degradation
from abair_core.degradations.kernels import capsule_mask, sparse_streaks
from abair_core.degradations.ranges import DegradationParams, FloatRange, draw, range_field
from abair_core.degradations.registry import register_degradation

__all__ = ["Rain"]


@register_degradation("rain")
class Rain(Degradation):
    """Rain100L-style streaks.

    Drops seed a fraction ``density`` of pixels with random brightness; convolving with a soft streak of
    ``length`` px and ``width`` px, tilted ``angle_deg`` from vertical (positive leans right at the top),
    draws the streaks; they are screen-blended (``1 - (1 - I)(1 - S)``) at ``brightness``, so bright
    areas stay bright and dark areas get visible streaks, as real rain does.
    """

    class Params(DegradationParams):
        density: FloatRange = range_field(
            (0.001, 0.005), lo=0.0, hi=0.1, description="fraction of pixels that seed a streak"
        )
        length: FloatRange = range_field((10.0, 35.0), lo=1.0, hi=150.0, description="streak length in px")
        angle_deg: FloatRange = range_field(
            (-20.0, 20.0), lo=-80.0, hi=80.0, stronger="none", description="tilt from vertical, degrees"
        )
        width: FloatRange = range_field((0.6, 1.2), lo=0.3, hi=6.0, description="streak width in px")
        brightness: FloatRange = range_field((0.35, 0.75), lo=0.0, hi=1.0, description="streak opacity")

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        p = self.params
        density, length, angle = draw(p.density, rng), draw(p.length, rng), draw(p.angle_deg, rng)
        width, brightness = draw(p.width, rng), draw(p.brightness, rng)
        h, w = image.shape[:2]
        kernel = capsule_mask(length, 90.0 - angle, width / 2.0)
        streaks = sparse_streaks((h, w), density, 0.3, kernel, rng) * np.float32(brightness)
        out = 1.0 - (1.0 - image) * (1.0 - streaks[..., None])
        drawn = {"density": density, "length": length, "angle_deg": angle, "width": width}
        return out, {**drawn, "brightness": brightness}
