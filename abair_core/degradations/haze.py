"""Haze by the atmospheric scattering model I = J t + A (1 - t), t = exp(-beta d), one knob: mean t."""

from __future__ import annotations

from typing import Any

import numpy as np

from abair_core.degradations.base import Degradation
from abair_core.degradations.kernels import smooth_noise
from abair_core.degradations.ranges import DegradationParams, FloatRange, draw, range_field
from abair_core.degradations.registry import register_degradation

__all__ = ["Haze", "depth_proxy", "transmission_map"]

_MIN_DEPTH = 0.2


def depth_proxy(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A plausible relative depth in [0.2, 1]: far at the top (a vertical gradient) plus a smooth random field."""
    gradient = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None] * np.ones((1, width), np.float32)
    field = smooth_noise(height, width, int(rng.integers(3, 6)), rng)
    mix = 0.6 * gradient + 0.4 * field
    mix = (mix - mix.min()) / max(float(mix.max() - mix.min()), 1e-6)
    return (_MIN_DEPTH + (1.0 - _MIN_DEPTH) * mix).astype(np.float32)


def _solve_beta(depth: np.ndarray, t_mean: float) -> float:
    """beta >= 0 with mean(exp(-beta d)) == t_mean (Newton from 0; monotone since the mean is convex in beta)."""
    if t_mean >= 1.0:
        return 0.0
    d = depth.astype(np.float64).ravel()
    beta = 0.0
    for _ in range(100):
        e = np.exp(-beta * d)
        f = float(e.mean()) - t_mean
        if abs(f) < 1e-7:
            break
        beta -= f / -float((d * e).mean())
    return beta


def transmission_map(
    height: int, width: int, t_mean: float, rng: np.random.Generator
) -> tuple[np.ndarray, float]:
    """The transmission map t (H, W) whose mean is ``t_mean``, and the scattering coefficient beta."""
    depth = depth_proxy(height, width, rng)
    beta = _solve_beta(depth, t_mean)
    return np.exp(-beta * depth).astype(np.float32), beta


@register_degradation("haze")
class Haze(Degradation):
    """Depth-varying haze with mean transmission ``t_mean`` (1 = clear, 0.05 = dense) and airlight A."""

    class Params(DegradationParams):
        t_mean: FloatRange = range_field(
            (0.3, 0.8), lo=0.05, hi=1.0, stronger="lower", description="mean transmission over the image"
        )
        airlight: FloatRange = range_field(
            (0.7, 1.0), lo=0.0, hi=1.0, stronger="none", description="atmospheric light A (grey level)"
        )

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        t_mean, airlight = draw(self.params.t_mean, rng), draw(self.params.airlight, rng)
        t, beta = transmission_map(image.shape[0], image.shape[1], t_mean, rng)
        t3 = t[..., None]
        out = image * t3 + np.float32(airlight) * (1.0 - t3)
        return out, {"t_mean": t_mean, "airlight": airlight, "beta": beta}
