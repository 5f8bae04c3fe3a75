"""Bit depth: at most 2**bits distinct levels per channel, on the 8-bit grid, black and white kept."""

from __future__ import annotations

import numpy as np
import pytest

from abair_core.degradations import build_degradation


@pytest.mark.parametrize("bits", [1, 3, 4, 7])
def test_at_most_2_pow_bits_levels(cat: np.ndarray, bits: int) -> None:
    ramp = np.repeat(np.linspace(0, 1, 256, dtype=np.float32)[None, :, None], 3, axis=2).repeat(4, axis=0)
    d = build_degradation({"type": "bit_depth", "bits": bits})
    for image in (cat, ramp):
        out = d.apply(image, np.random.default_rng(0)).image
        for c in range(3):
            assert len(np.unique(out[..., c])) <= 2**bits
    out = d.apply(ramp, np.random.default_rng(0)).image
    assert len(np.unique(out[..., 0])) == 2**bits
    assert out.min() == 0.0 and out.max() == 1.0
    np.testing.assert_allclose(out * 255, np.rint(out * 255), atol=1e-4)


def test_eight_bits_is_identity_on_8bit_images(cat: np.ndarray) -> None:
    out = build_degradation({"type": "bit_depth", "bits": 8}).apply(cat, np.random.default_rng(0)).image
    np.testing.assert_allclose(out, cat, atol=1e-6)
