"""Blur: Gaussian and motion kernels, kind fixed or drawn."""

from __future__ import annotations

import numpy as np

from abair_core.degradations import build_degradation


def _high_freq(image: np.ndarray) -> float:
    return float(np.abs(np.diff(image, axis=0)).mean() + np.abs(np.diff(image, axis=1)).mean())


def test_gaussian_blur_smooths_and_keeps_flat_images(cat: np.ndarray) -> None:
    d = build_degradation({"type": "blur", "kind": "gaussian", "sigma": 2.0})
    result = d.apply(cat, np.random.default_rng(0))
    assert result.params == {"kind": "gaussian", "sigma": 2.0}
    assert _high_freq(result.image) < 0.5 * _high_freq(cat)
    flat = np.full((32, 32, 3), 0.3, np.float32)
    np.testing.assert_allclose(d.apply(flat, np.random.default_rng(0)).image, flat, atol=1e-5)


def test_motion_blur_smears_along_its_angle() -> None:
    dot = np.zeros((41, 41, 3), np.float32)
    dot[20, 20] = 1.0
    d = build_degradation({"type": "blur", "kind": "motion", "length": 11, "angle_deg": 0})
    out = d.apply(dot, np.random.default_rng(0)).image[..., 0]
    assert np.count_nonzero(out[20] > 1e-3) == 11 and np.count_nonzero(out[:, 20] > 1e-3) == 1
    vertical = build_degradation({"type": "blur", "kind": "motion", "length": 11, "angle_deg": 90})
    out = vertical.apply(dot, np.random.default_rng(0)).image[..., 0]
    assert np.count_nonzero(out[:, 20] > 1e-3) == 11


def test_kind_is_drawn_from_the_list(cat: np.ndarray) -> None:
    d = build_degradation({"type": "blur", "kind": ["gaussian", "motion"]})
    kinds = {d.apply(cat[:16, :16], np.random.default_rng(s)).params["kind"] for s in range(20)}
    assert kinds == {"gaussian", "motion"}
