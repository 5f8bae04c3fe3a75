"""Bit-depth reduction: quantise to ``bits`` per channel, shown again on the 8-bit scale (4-to-8-bit task)."""

from __future__ import annotations

from typing import Any

import numpy as np

from abair_core.degradations.base import Degradation
from abair_core.degradations.ranges import DegradationParams, IntRange, draw, range_field
from abair_core.degradations.registry import register_degradation

__all__ = ["BitDepth", "quantize_bits"]


def quantize_bits(image: np.ndarray, bits: int) -> np.ndarray:
    """Round to the 2**bits evenly spaced levels spanning [0, 1] (black and white kept), then snap to 8-bit."""
    levels = float(2**bits - 1)
    q = np.rint(np.clip(image, 0.0, 1.0) * levels) / levels
    return (np.rint(q * 255.0) / 255.0).astype(np.float32)


@register_degradation("bit_depth")
class BitDepth(Degradation):
    """Banding from a low bit depth: at most ``2**bits`` distinct values per channel (lower is stronger)."""

    class Params(DegradationParams):
        bits: IntRange = range_field((4, 7), lo=1, hi=8, stronger="lower", description="bits per channel")

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        bits = draw(self.params.bits, rng)
        return quantize_bits(image, bits), {"bits": bits}
