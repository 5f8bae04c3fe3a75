"""JPEG compression artefacts from a real Pillow encode/decode round trip."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image

from abair_core.degradations.base import Degradation
from abair_core.degradations.ranges import DegradationParams, IntRange, draw, range_field
from abair_core.degradations.registry import register_degradation

__all__ = ["Jpeg", "jpeg_round_trip"]


def jpeg_round_trip(image: np.ndarray, quality: int) -> np.ndarray:
    """Encode float HWC RGB as 8-bit JPEG at ``quality`` (Pillow defaults otherwise) and decode to float32."""
    data = np.rint(np.clip(image, 0.0, 1.0) * 255.0).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(data).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as decoded:
        return np.asarray(decoded.convert("RGB"), dtype=np.float32) / np.float32(255.0)


@register_degradation("jpeg")
class Jpeg(Degradation):
    """JPEG at ``quality`` 1-100 (lower is stronger), Pillow's default 4:2:0 chroma subsampling."""

    class Params(DegradationParams):
        quality: IntRange = range_field((10, 40), lo=1, hi=100, stronger="lower", description="JPEG quality")

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        quality = draw(self.params.quality, rng)
        return jpeg_round_trip(image, quality), {"quality": quality}
