"""The ``Degradation`` base class: validated params, and an ``apply`` that enforces the image contract.

Subclasses declare a nested ``Params`` (a :class:`~abair_core.degradations.ranges.DegradationParams`) and
implement ``_degrade(image, rng) -> (array, drawn_params)``. :meth:`Degradation.apply` checks the input
(float32-able HWC RGB in [0, 1]), hands the family a read-only view so it cannot mutate the caller's
array, and returns a float32 copy clipped to [0, 1] with the same shape plus JSON-ready parameters.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from abair_core.config import validate_config
from abair_core.degradations.ranges import DegradationParams, strength_value

__all__ = ["Degradation", "DegradationResult", "check_image", "to_builtin"]


@dataclass(frozen=True)
class DegradationResult:
    """A degraded image (float32 HWC in [0, 1]) and the parameters actually drawn.

    ``params`` is a dict of drawn values for one degradation, or a list of ``{"type", "params"}`` dicts,
    in order, for a sequence (see :func:`abair_core.degradations.composite.apply_sequence`).
    """

    image: np.ndarray
    params: dict[str, Any] | list[dict[str, Any]]


def to_builtin(value: Any) -> Any:
    """Convert numpy scalars/arrays and tuples inside ``value`` to plain JSON-serialisable Python."""
    if isinstance(value, dict):
        return {str(k): to_builtin(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_builtin(v) for v in value]
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def check_image(image: Any) -> np.ndarray:
    """Validate an HWC RGB float image in [0, 1]; return it as float32 behind a read-only view."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy array, got {type(image).__name__}")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 2 or image.shape[1] < 2:
        raise ValueError(f"image must be HWC RGB with H, W >= 2, got shape {image.shape}")
    if not np.issubdtype(image.dtype, np.floating):
        raise TypeError(f"image must be float in [0, 1], got dtype {image.dtype}")
    lo, hi = float(image.min()), float(image.max())
    if not (lo >= -1e-6 and hi <= 1.0 + 1e-6):
        raise ValueError(f"image values must lie in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    view = image.astype(np.float32, copy=False).view()
    view.flags.writeable = False
    return view


class Degradation(ABC):
    """A registered image degradation; ``apply`` is deterministic for a given ``numpy.random.Generator``."""

    registered_name: ClassVar[str | None] = None

    class Params(DegradationParams):
        """No parameters; families override this."""

    def __init__(
        self, params: DegradationParams | Mapping[str, Any] | None = None, *, name: str | None = None
    ):
        if isinstance(params, DegradationParams):
            if not isinstance(params, self.Params):
                raise TypeError(
                    f"{type(self).__name__} expects {self.Params.__qualname__}, got {type(params)}"
                )
            self.params = params
        else:
            label = name or self.registered_name or type(self).__name__
            self.params = validate_config(dict(params or {}), self.Params, source=f"degradation '{label}'")
        cls = type(self)
        self.name: str = name or cls.registered_name or f"{cls.__module__}:{cls.__qualname__}"

    @abstractmethod
    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        """Return the degraded image (any float dtype, clipping optional) and the drawn parameter values."""

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> DegradationResult:
        """Degrade ``image`` (float HWC RGB in [0, 1]) drawing only from ``rng``; the input is not modified."""
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}")
        x = check_image(image)
        out, params = self._degrade(x, rng)
        out = np.asarray(out)
        if out.shape != x.shape:
            raise ValueError(f"degradation '{self.name}' changed the shape {x.shape} -> {out.shape}")
        if not np.all(np.isfinite(out)):
            raise ValueError(f"degradation '{self.name}' produced non-finite values")
        return DegradationResult(np.clip(out, 0.0, 1.0).astype(np.float32), to_builtin(dict(params)))

    def at_strength(self, level: float, **overrides: Any) -> Degradation:
        """A copy with every range fixed at strength ``level`` (0 mildest, 1 strongest) plus ``overrides``."""
        values = {
            name: strength_value(getattr(self.params, name), field.json_schema_extra, level)
            for name, field in type(self.params).model_fields.items()
        }
        return type(self)({**values, **overrides}, name=self.name)

    def to_spec(self) -> dict[str, Any]:
        """The YAML/manifest spec that rebuilds this degradation: ``{"type": name, **params}``."""
        return {"type": self.name, **self.params.model_dump(mode="json")}

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in self.params.model_dump().items())
        return f"{type(self).__name__}(name={self.name!r}, {fields})"
