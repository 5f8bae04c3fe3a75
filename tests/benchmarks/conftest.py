"""Benchmark scripts are not a package (each runs on its own): tests load them by path."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture
def load_script() -> Callable[[str], ModuleType]:
    """``load_script(name)``: ``benchmarks/<name>.py`` as a module, its folder importable (shared helpers)."""
    def load(name: str) -> ModuleType:
        if str(BENCHMARKS) not in sys.path:
            sys.path.insert(0, str(BENCHMARKS))
        spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        return module

    return load


@pytest.fixture
def untrained_bundle(tmp_path: Path) -> Path:
    """An untrained tiny ABAIR (noise and blur adapters) saved as a bundle: for scripts that need mechanics only."""
    import torch

    from abair_core.bundle import save_bundle
    from abair_core.components import class_names_for
    from abair_core.models import AdapterConfig, EstimatorConfig, build_abair

    torch.manual_seed(0)
    names = ["noise", "blur"]
    directory = tmp_path / "untrained-bundle"
    save_bundle(build_abair("tiny", AdapterConfig(), EstimatorConfig(), names, class_names_for(names)), directory)
    return directory


@pytest.fixture
def suite_on_holdout(tmp_path: Path) -> Callable[[dict], Path]:
    """``suite_on_holdout(suite)``: the suite dict written as YAML, its images two 96 px scikit-image crops."""
    import numpy as np
    import yaml
    from PIL import Image
    from skimage import data

    def write(suite: dict) -> Path:
        holdout = tmp_path / "holdout"
        holdout.mkdir(exist_ok=True)
        for name in ("astronaut", "chelsea"):
            Image.fromarray(np.ascontiguousarray(getattr(data, name)()[:96, :96])).save(holdout / f"{name}.png")
        path = tmp_path / "suite.yaml"
        path.write_text(yaml.safe_dump({**suite, "images": holdout.as_uri()}))
        return path

    return write


@pytest.fixture
def photos_and_holdout(tmp_path: Path) -> tuple[Path, Path]:
    """Two folders of scikit-image photos: two whole photos to train on, two 160 px crops held out to score."""
    import numpy as np
    from PIL import Image
    from skimage import data

    photos, holdout = tmp_path / "photos", tmp_path / "holdout"
    photos.mkdir()
    holdout.mkdir()
    for name in ("rocket", "coffee"):
        Image.fromarray(getattr(data, name)()).save(photos / f"{name}.png")
    for name in ("astronaut", "chelsea"):
        Image.fromarray(np.ascontiguousarray(getattr(data, name)()[:160, :160])).save(holdout / f"{name}.png")
    return photos, holdout
