"""Blur: isotropic Gaussian (defocus-like) or linear motion, drawn per image or fixed."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import Field

from abair_core.degradations.base import Degradation
from abair_core.degradations.kernels import convolve, gaussian_kernel, line_kernel
from abair_core.degradations.ranges import DegradationParams, FloatRange, draw, draw_choice, range_field
from abair_core.degradations.registry import register_degradation

__all__ = ["Blur", "BlurKind"]

BlurKind = Literal["gaussian", "motion"]


@register_degradation("blur")
class Blur(Degradation):
    """Convolve with a Gaussian (``sigma``) or a motion line (``length`` px at ``angle_deg`` from +x)."""

    class Params(DegradationParams):
        kind: BlurKind | tuple[BlurKind, ...] = Field(
            ("gaussian", "motion"), description="blur kind, or a list to draw from uniformly"
        )
        sigma: FloatRange = range_field((0.5, 3.0), lo=0.0, hi=25.0, description="Gaussian sigma in px")
        length: FloatRange = range_field((5.0, 21.0), lo=1.0, hi=101.0, description="motion length in px")
        angle_deg: FloatRange = range_field(
            (0.0, 180.0), lo=-360.0, hi=360.0, stronger="none", description="motion angle, degrees from +x"
        )

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        kind = draw_choice(self.params.kind, rng)
        if kind == "gaussian":
            sigma = draw(self.params.sigma, rng)
            return convolve(image, gaussian_kernel(sigma)), {"kind": kind, "sigma": sigma}
        length = draw(self.params.length, rng)
        angle = draw(self.params.angle_deg, rng)
        kernel = line_kernel(length, angle)
        return convolve(image, kernel), {"kind": kind, "length": length, "angle_deg": angle}
