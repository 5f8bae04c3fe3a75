"""Strict, pydantic-validated YAML configuration.

Every knob of ABAIR-flow lives in a YAML file under ``configs/``. Loading goes through
:func:`load_config`, which turns pydantic's validation errors into one :class:`ConfigError` whose
message names the file, the dotted key and the allowed values or keys, so a user can fix a typo
without reading code.
"""

from __future__ import annotations

import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

__all__ = ["PROJECT_ROOT", "ConfigError", "StrictConfig", "load_config", "load_yaml", "validate_config"]

PROJECT_ROOT = Path(__file__).resolve().parent.parent
ConfigT = TypeVar("ConfigT", bound=BaseModel)


class ConfigError(ValueError):
    """A configuration file (or mapping) failed validation; the message says where and why."""


class StrictConfig(BaseModel):
    """Base for every config: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


def load_yaml(path: str | Path) -> Any:
    """Read a YAML file, raising :class:`ConfigError` (naming the file) when it is missing or malformed."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc.strerror or exc})") from exc
    try:
        return yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from exc


def load_config(path: str | Path, model: type[ConfigT]) -> ConfigT:
    """Load ``path`` and validate it as ``model``; errors name the file, key and allowed values."""
    return validate_config(load_yaml(path), model, source=str(path))


def validate_config(data: Any, model: type[ConfigT], source: str = "<config>") -> ConfigT:
    """Validate a mapping as ``model``; see :func:`load_config` for the error format."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, model, source)) from None


def format_validation_error(exc: ValidationError, model: type[BaseModel], source: str) -> str:
    """Render every pydantic error as ``source: key 'a.b': message (allowed: ...)``."""
    lines = []
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        key = ".".join(loc) or "<root>"
        msg = err["msg"]
        allowed = _allowed_for(model, err["loc"], err["type"])
        suffix = f" (allowed: {allowed})" if allowed else ""
        lines.append(f"{source}: key '{key}': {msg}{suffix}")
    return "\n".join(lines)


def _allowed_for(model: type[BaseModel], loc: tuple[Any, ...], err_type: str) -> str:
    """Describe what would have been accepted at ``loc``: field names for an unknown key, else values."""
    if err_type == "extra_forbidden":
        parent = _model_at(model, loc[:-1])
        if parent is not None:
            return ", ".join(sorted(parent.model_fields))
        return ""
    field_annotation = _annotation_at(model, loc)
    if field_annotation is None:
        return ""
    literals = _literal_values(field_annotation)
    if literals:
        return ", ".join(repr(v) for v in literals)
    return ""


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _first_model(field.annotation)
    if isinstance(current, type) and issubclass(current, BaseModel):
        return current
    return None


def _annotation_at(model: type[BaseModel], loc: tuple[Any, ...]) -> Any:
    parent = _model_at(model, tuple(p for p in loc[:-1]))
    if parent is None or not loc:
        return None
    field = parent.model_fields.get(str(loc[-1]))
    return None if field is None else field.annotation


def _first_model(annotation: Any) -> Any:
    """The first BaseModel class inside ``annotation`` (unwrapping list/Optional/Union), else itself."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _first_model(arg)
        if isinstance(found, type) and issubclass(found, BaseModel):
            return found
    return annotation


def _literal_values(annotation: Any) -> list[Any]:
    if typing.get_origin(annotation) is typing.Literal:
        return list(typing.get_args(annotation))
    values: list[Any] = []
    for arg in typing.get_args(annotation):
        values.extend(_literal_values(arg))
    return values
