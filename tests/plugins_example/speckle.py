"""Example degradation plugins for the add-degradation tests (a user's module, loaded by dotted path).

``Speckle`` honours the contract (deterministic for a seed, same shape, dtype and range). ``Flaky``
draws from an unseeded generator and ``Cropper`` crops its input: both must be refused before any
training. ``Brightener`` overrides ``apply`` and leaves [0, 1].
"""

from __future__ import annotations

from typing import Any

import numpy as np

from abair_core.degradations.base import Degradation, DegradationResult
from abair_core.degradations.ranges import DegradationParams, FloatRange, draw, range_field


class Speckle(Degradation):
    """Multiplicative speckle noise: ``x * (1 + amount * n)``, n standard normal, drawn from the rng."""

    registered_name = "speckle"

    class Params(DegradationParams):
        amount: FloatRange = range_field((0.1, 0.3), lo=0.0, hi=1.0, description="speckle strength")

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        amount = draw(self.params.amount, rng)
        noise = rng.standard_normal(image.shape).astype(np.float32)
        return image * (1.0 + np.float32(amount) * noise), {"amount": amount}


class Flaky(Degradation):
    """Not deterministic: ignores the rng it is given."""

    registered_name = "flaky"

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        own = np.random.default_rng()
        return image + own.normal(0.0, 0.05, image.shape).astype(np.float32), {}


class Cropper(Degradation):
    """Changes the shape: drops a border."""

    registered_name = "cropper"

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        return image[2:-2, 2:-2], {}


class Brightener(Degradation):
    """Leaves [0, 1] (overrides apply, bypassing the base class's clipping)."""

    registered_name = "brightener"

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        return image, {}

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> DegradationResult:
        return DegradationResult(np.asarray(image, np.float32) + 0.5, {})


class Anonymous(Degradation):
    """A valid plugin that does not declare its id (``registered_name``)."""

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        return image * np.float32(0.9), {}
