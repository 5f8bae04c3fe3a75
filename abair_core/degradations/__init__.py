"""Degradation synthesis: registered families, YAML specs, region composites and sequences.

Importing the package registers the built-ins (rain, haze, noise, blur, low_light, jpeg, bit_depth, snow).
"""

from abair_core.degradations import bitdepth, blur, haze, jpeg, lowlight, noise, rain, snow  # noqa: F401
from abair_core.degradations.base import Degradation, DegradationResult
from abair_core.degradations.composite import (
    CompositeConfig,
    CompositeResult,
    apply_sequence,
    compose_regions,
)
from abair_core.degradations.ranges import DegradationParams, FloatRange, IntRange, range_field
from abair_core.degradations.registry import (
    ADDED_DEGRADATIONS,
    CLEAN,
    ENTRY_POINT_GROUP,
    KNOWN_DEGRADATIONS,
    build_degradation,
    get_degradation_class,
    list_degradations,
    register_degradation,
    unregister_degradation,
    validate_plugin,
)
from abair_core.degradations.specs import DegradationSetConfig, load_composite_config, load_degradation_specs

__all__ = [
    "ADDED_DEGRADATIONS",
    "CLEAN",
    "ENTRY_POINT_GROUP",
    "KNOWN_DEGRADATIONS",
    "CompositeConfig",
    "CompositeResult",
    "Degradation",
    "DegradationParams",
    "DegradationResult",
    "DegradationSetConfig",
    "FloatRange",
    "IntRange",
    "apply_sequence",
    "build_degradation",
    "compose_regions",
    "get_degradation_class",
    "list_degradations",
    "load_composite_config",
    "load_degradation_specs",
    "range_field",
    "register_degradation",
    "unregister_degradation",
    "validate_plugin",
]
