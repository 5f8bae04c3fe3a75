"""JPEG: output equals a Pillow round trip at the drawn quality."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from abair_core.degradations import build_degradation


def _pillow_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    buf = io.BytesIO()
    Image.fromarray(np.rint(image * 255).astype(np.uint8)).save(buf, format="JPEG", quality=quality)
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"), dtype=np.float32) / 255.0


@pytest.mark.parametrize("quality", [10, 20, 75])
def test_jpeg_equals_pillow_round_trip(cat: np.ndarray, quality: int) -> None:
    result = build_degradation({"type": "jpeg", "quality": quality}).apply(cat, np.random.default_rng(0))
    assert result.params == {"quality": quality}
    assert np.array_equal(result.image, _pillow_round_trip(cat, quality))


def test_drawn_quality_is_reported_and_used(cat: np.ndarray) -> None:
    result = build_degradation({"type": "jpeg", "quality": [10, 40]}).apply(cat, np.random.default_rng(4))
    q = result.params["quality"]
    assert isinstance(q, int) and 10 <= q <= 40
    assert np.array_equal(result.image, _pillow_round_trip(cat, q))


def test_lower_quality_is_worse(cat: np.ndarray) -> None:
    err = {
        q: float(
            np.abs(
                build_degradation({"type": "jpeg", "quality": q}).apply(cat, np.random.default_rng(0)).image
                - cat
            ).mean()
        )
        for q in (10, 90)
    }
    assert err[10] > 2 * err[90]
