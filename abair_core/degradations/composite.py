"""Mixed degradations: region-wise composites with label maps (Phase I) and sequential chains (blur then noise).

:func:`compose_regions` pastes several degradations into CutMix-style rectangles and soft-edged blobs of one
image. Each degradation is applied to the whole clean image and pasted through its region mask, so
image-level operations (JPEG blocks, blur, haze depth) look as they would on a full frame; later regions
overwrite earlier ones and the label map is the hard mask. Families are never special-cased here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from abair_core.config import StrictConfig
from abair_core.degradations.base import Degradation, DegradationResult, check_image
from abair_core.degradations.kernels import convolve, gaussian_kernel, smooth_noise
from abair_core.degradations.registry import CLEAN

__all__ = ["CompositeConfig", "CompositeResult", "apply_sequence", "compose_regions"]


class CompositeConfig(StrictConfig):
    """How regions are drawn for a composite image."""

    min_regions: int = Field(2, ge=1, le=64, description="fewest regions per image")
    max_regions: int = Field(4, ge=1, le=64, description="most regions per image")
    clean_probability: float = Field(0.15, ge=0.0, le=1.0, description="chance a region stays clean")
    blob_probability: float = Field(
        0.5, ge=0.0, le=1.0, description="chance a region is a blob, else a rectangle"
    )
    region_scale: tuple[float, float] = Field(
        (0.25, 0.75), description="[lo, hi] side of a region's box as a fraction of the image side"
    )
    blob_feather: float = Field(
        3.0, ge=0.0, le=64.0, description="blob edge softness in px (inside the mask)"
    )

    @field_validator("max_regions")
    @classmethod
    def _max_not_below_min(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("min_regions")
        if low is not None and value < low:
            raise ValueError(f"max_regions ({value}) must be >= min_regions ({low})")
        return value

    @field_validator("region_scale")
    @classmethod
    def _scale_range(cls, value: tuple[float, float]) -> tuple[float, float]:
        lo, hi = value
        if not 0.0 < lo <= hi <= 1.0:
            raise ValueError(f"must satisfy 0 < lo <= hi <= 1, got [{lo}, {hi}]")
        return value


@dataclass(frozen=True)
class CompositeResult:
    """A composite image, its (H, W) int64 label map (indices into ``label_names``) and per-region params."""

    image: np.ndarray
    labels: np.ndarray
    params: list[dict[str, Any]]


def _blob_mask(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """An organic blob filling an (h, w) box: an ellipse perturbed by a smooth random field."""
    yy = (np.arange(h, dtype=np.float32) + 0.5) / h * 2.0 - 1.0
    xx = (np.arange(w, dtype=np.float32) + 0.5) / w * 2.0 - 1.0
    r2 = yy[:, None] ** 2 + xx[None, :] ** 2
    field = smooth_noise(h, w, int(rng.integers(3, 6)), rng)
    mask = (1.0 - r2) + 0.8 * (field - 0.5) > 0.2
    return mask if mask.any() else r2 < 1.0


def _feather(mask: np.ndarray, sigma: float) -> np.ndarray:
    """Soft alpha that fades to ~0.5 at the mask edge and stays 0 outside the mask."""
    m = mask.astype(np.float32)
    if sigma <= 0:
        return m
    soft = convolve(m, gaussian_kernel(sigma))
    return m * np.clip((soft - 0.25) / 0.5, 0.0, 1.0)


def compose_regions(
    image: np.ndarray,
    degradations: Mapping[str, Degradation],
    label_names: Sequence[str],
    rng: np.random.Generator,
    config: CompositeConfig | None = None,
) -> CompositeResult:
    """Degrade random regions of ``image`` with different degradations; return image, labels and params.

    ``label_names[0]`` must be ``"clean"``; every key of ``degradations`` must be in ``label_names``.
    Region types are drawn without replacement while possible, so one image mixes several types.
    Pixels labelled clean are exactly the clean input.
    """
    config = config or CompositeConfig()
    clean = check_image(image)
    names = list(label_names)
    if not names or names[0] != CLEAN:
        raise ValueError(f"label_names[0] must be {CLEAN!r}, got {names[:1]}")
    missing = [n for n in degradations if n not in names]
    if missing:
        raise ValueError(f"degradations {missing} are not in label_names {names}")
    if not degradations:
        raise ValueError("compose_regions needs at least one degradation")
    h, w = clean.shape[:2]
    out = np.array(clean, dtype=np.float32)
    labels = np.zeros((h, w), np.int64)
    pool: list[str] = []
    regions: list[dict[str, Any]] = []
    for _ in range(int(rng.integers(config.min_regions, config.max_regions + 1))):
        if rng.random() < config.clean_probability:
            name = CLEAN
        else:
            if not pool:
                pool = [str(n) for n in rng.permutation(list(degradations))]
            name = pool.pop()
        bh = max(1, round(h * rng.uniform(*config.region_scale)))
        bw = max(1, round(w * rng.uniform(*config.region_scale)))
        top, left = int(rng.integers(0, h - bh + 1)), int(rng.integers(0, w - bw + 1))
        is_blob = bool(rng.random() < config.blob_probability)
        mask = np.zeros((h, w), bool)
        mask[top : top + bh, left : left + bw] = _blob_mask(bh, bw, rng) if is_blob else True
        if name == CLEAN:
            degraded, drawn, alpha = clean, {}, mask.astype(np.float32)
        else:
            result = degradations[name].apply(clean, rng)
            degraded, drawn = result.image, result.params
            alpha = _feather(mask, config.blob_feather) if is_blob else mask.astype(np.float32)
        a = alpha[..., None]
        out = np.where(mask[..., None], a * degraded + (1.0 - a) * out, out)
        labels[mask] = names.index(name)
        regions.append(
            {
                "type": name,
                "label": names.index(name),
                "shape": "blob" if is_blob else "rectangle",
                "box": [top, left, top + bh, left + bw],
                "params": drawn,
            }
        )
    return CompositeResult(np.clip(out, 0.0, 1.0).astype(np.float32), labels, regions)


def apply_sequence(
    image: np.ndarray, degradations: Sequence[Degradation], rng: np.random.Generator
) -> DegradationResult:
    """Apply degradations one after another (e.g. blur then noise); params list ``{"type", "params"}`` in order."""
    out = check_image(image)
    steps: list[dict[str, Any]] = []
    for degradation in degradations:
        result = degradation.apply(out, rng)
        out = result.image
        steps.append({"type": degradation.name, "params": result.params})
    return DegradationResult(np.array(out, dtype=np.float32), steps)
