"""Degradation spec files (``configs/degradations/*.yaml``): a ``degradations:`` list and a ``composite:`` section."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field

from abair_core.config import ConfigError, StrictConfig, load_config
from abair_core.degradations.base import Degradation
from abair_core.degradations.composite import CompositeConfig
from abair_core.degradations.registry import build_degradation, list_degradations

__all__ = ["DegradationSetConfig", "load_composite_config", "load_degradation_specs"]


class DegradationSetConfig(StrictConfig):
    """A spec file: one ``{type: name, ...params}`` entry per degradation, plus composite settings."""

    degradations: list[dict[str, Any]] = Field(min_length=1, description="degradation specs, one per type")
    composite: CompositeConfig = Field(default_factory=CompositeConfig, description="region-mixing settings")


def load_degradation_specs(path: str | Path) -> dict[str, Degradation]:
    """Build every degradation of a spec file, keyed by name; errors name the file, the key and valid names."""
    source = str(path)
    config = load_config(path, DegradationSetConfig)
    built: dict[str, Degradation] = {}
    for i, spec in enumerate(config.degradations):
        key = f"degradations.{i}"
        try:
            degradation = build_degradation(spec, source=source, key=key)
        except (KeyError, TypeError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise ConfigError(
                f"{source}: key '{key}.type': {message} (allowed: {', '.join(list_degradations())})"
            ) from None
        if degradation.name in built:
            raise ConfigError(f"{source}: key '{key}.type': {degradation.name!r} is listed twice")
        built[degradation.name] = degradation
    return built


def load_composite_config(path: str | Path) -> CompositeConfig:
    """The ``composite:`` section of a spec file (defaults where absent)."""
    return load_config(path, DegradationSetConfig).composite
