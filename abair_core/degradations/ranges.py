"""Scalar-or-range degradation parameters: validity bounds, random draws and fixed strengths.

Every numeric parameter of a degradation is either a scalar (fixed, e.g. evaluation ``sigma: 25``) or a
``[lo, hi]`` range drawn uniformly per image (training). The *validity* bounds are declared once per field
with :func:`range_field` and checked at build time, so a typo in YAML fails before any image is touched.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np
from pydantic import ConfigDict, Field, ValidationInfo, field_validator

from abair_core.config import StrictConfig

__all__ = [
    "DegradationParams",
    "FloatRange",
    "IntRange",
    "Stronger",
    "draw",
    "draw_choice",
    "range_field",
    "strength_value",
]

FloatRange = float | tuple[float, float]
IntRange = int | tuple[int, int]
Stronger = Literal["higher", "lower", "none"]


def range_field(
    default: Any, *, lo: float, hi: float, stronger: Stronger = "higher", description: str = ""
) -> Any:
    """A pydantic field that is a scalar or ``[lo, hi]`` range inside the validity bounds ``[lo, hi]``.

    ``stronger`` says which direction makes the degradation more severe ("lower" for JPEG quality), so
    :func:`strength_value` can pick low/mid/high strengths without knowing the family.
    """
    return Field(
        default, description=description, json_schema_extra={"lo": lo, "hi": hi, "stronger": stronger}
    )


class DegradationParams(StrictConfig):
    """Base of every ``Degradation.Params``: unknown keys rejected, bounds checked, immutable."""

    model_config = ConfigDict(frozen=True)

    @field_validator("*", mode="after")
    @classmethod
    def _check_bounds(cls, value: Any, info: ValidationInfo) -> Any:
        """Check scalar and range values against the field's validity bounds (error names the field)."""
        if isinstance(value, tuple) and len(value) == 0:
            raise ValueError("must not be empty")
        field = cls.model_fields.get(info.field_name or "")
        extra = field.json_schema_extra if field is not None else None
        if not isinstance(extra, dict) or "lo" not in extra:
            return value
        lo, hi = extra["lo"], extra["hi"]
        values = value if isinstance(value, tuple) else (value,)
        for v in values:
            if not math.isfinite(float(v)) or not lo <= v <= hi:
                raise ValueError(f"{v} is outside the valid range [{lo}, {hi}]")
        if isinstance(value, tuple) and value[0] > value[1]:
            raise ValueError(f"range [{value[0]}, {value[1]}] must have lo <= hi")
        return value


def draw(value: FloatRange | IntRange, rng: np.random.Generator) -> float | int:
    """A scalar as is; a range drawn uniformly (integers inclusive of both ends). Returns Python numbers."""
    if not isinstance(value, tuple):
        return value
    lo, hi = value
    if isinstance(lo, int) and isinstance(hi, int):
        return int(rng.integers(lo, hi + 1))
    if lo == hi:
        return float(lo)
    return float(rng.uniform(lo, hi))


def draw_choice(value: str | tuple[str, ...], rng: np.random.Generator) -> str:
    """A fixed choice as is; one of several drawn uniformly."""
    if isinstance(value, str):
        return value
    if len(value) == 1:
        return value[0]
    return value[int(rng.integers(len(value)))]


def strength_value(value: Any, field_extra: Any, level: float) -> Any:
    """The scalar at strength ``level`` (0 = mildest, 1 = strongest) of a range value; scalars unchanged.

    Used for galleries and evaluation presets: low/mid/high of the configured range, in the direction
    that makes the degradation stronger.
    """
    if not isinstance(value, tuple) or not isinstance(field_extra, dict) or "lo" not in field_extra:
        return value
    if not 0.0 <= level <= 1.0:
        raise ValueError(f"strength level must be in [0, 1], got {level}")
    lo, hi = value
    frac = 1.0 - level if field_extra.get("stronger") == "lower" else level
    if field_extra.get("stronger") == "none":
        frac = 0.5
    picked = lo + frac * (hi - lo)
    if isinstance(lo, int) and isinstance(hi, int):
        return round(picked)
    return float(picked)
