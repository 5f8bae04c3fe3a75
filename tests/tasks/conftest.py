"""Fixtures for task-layer tests: small real safetensors files and bundle directories."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file


def write_component(path: Path, seed: int = 0, metadata: dict[str, str] | None = None) -> Path:
    """A small real safetensors file with seeded tensors (distinct seeds give distinct bytes)."""
    generator = torch.Generator().manual_seed(seed)
    tensors = {
        "conv.weight": torch.randn(8, 3, 3, 3, generator=generator),
        "conv.bias": torch.randn(8, generator=generator),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(path), metadata=metadata or {"kind": "test"})
    return path


def write_bundle_dir(directory: Path, adapters: tuple[str, ...] = ("rain", "haze"), seed: int = 0) -> Path:
    """A bundle directory in the documented layout (the registry does not load its tensors)."""
    write_component(directory / "backbone.safetensors", seed)
    write_component(directory / "estimator.safetensors", seed + 1)
    for offset, adapter in enumerate(adapters):
        write_component(directory / f"adapter-{adapter}.safetensors", seed + 2 + offset)
    manifest = {"adapters": list(adapters), "class_names": ["clean", *adapters], "versions": {"seed": seed}}
    (directory / "bundle.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


@pytest.fixture
def make_component(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_component("backbone.safetensors", seed=1)`` writes a file under tmp_path."""

    def make(name: str, seed: int = 0) -> Path:
        return write_component(tmp_path / "components" / name, seed)

    return make


@pytest.fixture
def make_bundle_dir(tmp_path: Path) -> Callable[..., Path]:
    """Factory: ``make_bundle_dir("b1", adapters=("rain",), seed=3)`` writes a bundle directory."""

    def make(name: str, adapters: tuple[str, ...] = ("rain", "haze"), seed: int = 0) -> Path:
        return write_bundle_dir(tmp_path / name, adapters, seed)

    return make


@pytest.fixture(scope="session")
def bundle_writer() -> Callable[..., Path]:
    """``write_bundle_dir`` for module-scoped fixtures (which cannot use tmp_path factories)."""
    return write_bundle_dir
