"""The degradation registry: explicit snake_case names -> classes, built from YAML ``type:`` specs.

Built-ins register with ``@register_degradation("rain")``. Plugins come in two ways: the entry-point group
``abair.degradations`` (name -> class, loaded lazily the first time a name is not found) or a dotted
``type: "package.module:ClassName"``. :func:`validate_plugin` checks a plugin honours the contract.
"""

from __future__ import annotations

import importlib
import json
import logging
import re
from collections.abc import Callable, Mapping
from importlib.metadata import entry_points
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError

from abair_core.config import ConfigError, format_validation_error
from abair_core.degradations.base import Degradation, DegradationResult

__all__ = [
    "ADDED_DEGRADATIONS",
    "CLEAN",
    "ENTRY_POINT_GROUP",
    "KNOWN_DEGRADATIONS",
    "build_degradation",
    "get_degradation_class",
    "list_degradations",
    "register_degradation",
    "unregister_degradation",
    "validate_plugin",
]

logger = logging.getLogger(__name__)

KNOWN_DEGRADATIONS: tuple[str, ...] = ("rain", "haze", "noise", "blur", "low_light")
ADDED_DEGRADATIONS: tuple[str, ...] = ("jpeg", "bit_depth", "snow")
CLEAN = "clean"
ENTRY_POINT_GROUP = "abair.degradations"

_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_REGISTRY: dict[str, type[Degradation]] = {}
_ENTRY_POINT_ERRORS: dict[str, str] = {}
DegradationT = TypeVar("DegradationT", bound=type[Degradation])


def register_degradation(name: str) -> Callable[[DegradationT], DegradationT]:
    """Class decorator registering a :class:`Degradation` under an explicit snake_case ``name``."""
    if not isinstance(name, str) or not _NAME_RE.match(name):
        raise ValueError(f"degradation name must be snake_case ([a-z][a-z0-9_]*), got {name!r}")
    if name == CLEAN:
        raise ValueError(f"'{CLEAN}' is reserved for the no-degradation label")

    def decorator(cls: DegradationT) -> DegradationT:
        if not (isinstance(cls, type) and issubclass(cls, Degradation)):
            raise TypeError(f"@register_degradation({name!r}) needs a Degradation subclass, got {cls!r}")
        if name in _REGISTRY:
            raise ValueError(f"degradation {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        if cls.registered_name is None or "registered_name" not in cls.__dict__:
            cls.registered_name = name
        _REGISTRY[name] = cls
        return cls

    return decorator


def unregister_degradation(name: str) -> None:
    """Remove ``name`` from the registry (for tests and notebooks that register throw-away plugins)."""
    if name not in _REGISTRY:
        raise KeyError(f"degradation {name!r} is not registered")
    del _REGISTRY[name]


def _load_entry_points() -> None:
    """Register every ``abair.degradations`` entry point not registered yet; failures are remembered."""
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue
        try:
            cls = ep.load()
            if ep.name not in _REGISTRY:  # importing the module may already have registered it
                register_degradation(ep.name)(cls)
            _ENTRY_POINT_ERRORS.pop(ep.name, None)
        except Exception as exc:  # noqa: BLE001 - a broken plugin must not break lookups of the others
            _ENTRY_POINT_ERRORS[ep.name] = f"{type(exc).__name__}: {exc}"
            logger.warning("cannot load degradation plugin %r (%s): %s", ep.name, ep.value, exc)


def _import_dotted(path: str) -> type[Degradation]:
    """Import ``package.module:ClassName``; it must be a Degradation subclass."""
    module_name, _, attr = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise KeyError(
            f"unknown degradation type {path!r}: cannot import module {module_name!r} ({exc})"
        ) from exc
    obj: Any = module
    for part in attr.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            raise KeyError(f"unknown degradation type {path!r}: {module_name!r} has no attribute {attr!r}")
    if not (isinstance(obj, type) and issubclass(obj, Degradation)):
        raise TypeError(f"degradation type {path!r} must be a subclass of Degradation, got {obj!r}")
    return obj


def get_degradation_class(name: str) -> type[Degradation]:
    """The class registered as ``name`` (or a dotted ``pkg.module:Class``); ``KeyError`` lists known names."""
    if not isinstance(name, str):
        raise KeyError(f"degradation type must be a string, got {name!r}")
    if ":" in name:
        return _import_dotted(name)
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        hint = f" (plugin failed to load: {_ENTRY_POINT_ERRORS[name]})" if name in _ENTRY_POINT_ERRORS else ""
        raise KeyError(
            f"unknown degradation type {name!r}{hint}; known: {', '.join(sorted(_REGISTRY))} "
            f"(or a plugin 'package.module:ClassName')"
        )
    return _REGISTRY[name]


def list_degradations() -> list[str]:
    """Sorted names of all registered degradations, including entry-point plugins."""
    _load_entry_points()
    return sorted(_REGISTRY)


def build_degradation(spec: Mapping[str, Any], *, source: str = "<spec>", key: str = "") -> Degradation:
    """Build a degradation from ``{"type": name, **params}``; params validated against the class's Params.

    Errors: ``KeyError`` for an unknown type, :class:`~abair_core.config.ConfigError` naming ``source`` and
    the key (prefixed by ``key``, e.g. ``degradations.2``) for a bad or out-of-range parameter.
    """
    if not isinstance(spec, Mapping):
        raise ConfigError(
            f"{source}: key '{key or '<root>'}': a degradation spec must be a mapping with 'type'"
        )
    rest = dict(spec)
    type_name = rest.pop("type", None)
    if type_name is None:
        raise ConfigError(
            f"{source}: key '{_join(key, 'type')}': missing (allowed: {', '.join(sorted(_REGISTRY))})"
        )
    cls = get_degradation_class(type_name)
    try:
        params = cls.Params.model_validate(rest)
    except ValidationError as exc:
        message = format_validation_error(exc, cls.Params, source)
        if key:
            message = message.replace(f"{source}: key '", f"{source}: key '{key}.")
        raise ConfigError(message) from None
    name = type_name if ":" not in type_name else (cls.registered_name or type_name)
    return cls(params, name=name)


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _test_card(height: int = 48, width: int = 64) -> np.ndarray:
    """A small deterministic RGB image with gradients, edges, texture and pure black/white patches."""
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    r = x / (width - 1)
    g = y / (height - 1)
    b = 0.5 + 0.5 * np.sin(x / 3.0) * np.cos(y / 5.0)
    img = np.stack([r, g, b], axis=-1)
    img[: height // 4, : width // 4] = 0.0
    img[-height // 4 :, -width // 4 :] = 1.0
    img[height // 3 : height // 2, :] = ((x[height // 3 : height // 2] // 4) % 2)[..., None]
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def validate_plugin(
    cls_or_instance: type[Degradation] | Degradation, rng_seed: int = 0, image: np.ndarray | None = None
) -> Degradation:
    """Check a (plugin) degradation honours the contract; return the instance or raise ``ValueError``.

    Runs it twice with the same seed on ``image`` (a small real photo from the caller, else a built-in
    test card) and refuses it when the outputs differ, the shape or dtype changes, values leave [0, 1],
    the input is modified or the params are not JSON-serialisable.
    """
    target = cls_or_instance
    label = getattr(target, "__qualname__", None) or type(target).__qualname__
    if isinstance(target, type):
        if not issubclass(target, Degradation):
            raise ValueError(f"plugin {label} is not a subclass of Degradation")  # noqa: TRY004 - contract
        try:
            target = target()
        except Exception as exc:
            raise ValueError(f"plugin {label} cannot be built with its default params: {exc}") from exc
    elif not isinstance(target, Degradation):
        raise ValueError(f"plugin {label} is not a Degradation instance")  # noqa: TRY004 - contract
    label = f"{target.name} ({type(target).__qualname__})"
    img = _test_card() if image is None else np.asarray(image, dtype=np.float32)
    before = img.copy()
    outputs = []
    for _ in range(2):
        try:
            result = target.apply(img, np.random.default_rng(rng_seed))
        except Exception as exc:
            raise ValueError(f"plugin {label} refused: apply failed on a {img.shape} image: {exc}") from exc
        if not isinstance(result, DegradationResult):
            got = type(result).__name__
            raise ValueError(f"plugin {label} refused: apply must return DegradationResult, got {got}")  # noqa: TRY004
        out = result.image
        if not isinstance(out, np.ndarray) or out.shape != img.shape or out.dtype != np.float32:
            got = (getattr(out, "shape", None), getattr(out, "dtype", type(out).__name__))
            raise ValueError(
                f"plugin {label} refused: output must keep shape {img.shape} and dtype float32, got {got}"
            )
        if not np.all(np.isfinite(out)) or out.min() < 0.0 or out.max() > 1.0:
            raise ValueError(f"plugin {label} refused: output values leave [0, 1] (or are not finite)")
        if not np.array_equal(img, before):
            raise ValueError(f"plugin {label} refused: apply modified its input image")
        try:
            json.dumps(result.params)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"plugin {label} refused: params are not JSON-serialisable ({exc})") from exc
        outputs.append((out.tobytes(), json.dumps(result.params, sort_keys=True)))
    if outputs[0] != outputs[1]:
        raise ValueError(
            f"plugin {label} refused: not deterministic, two runs with seed {rng_seed} gave different "
            "outputs; draw all randomness from the rng argument of apply"
        )
    return target
