"""Spec files: the shipped training ranges load, and bad files fail naming file, key and valid names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from abair_core.config import PROJECT_ROOT, ConfigError
from abair_core.degradations import (
    ADDED_DEGRADATIONS,
    KNOWN_DEGRADATIONS,
    CompositeConfig,
    load_composite_config,
    load_degradation_specs,
)

TRAIN = PROJECT_ROOT / "configs" / "degradations" / "train.yaml"


def test_train_yaml_builds_all_eight(photo: np.ndarray) -> None:
    specs = load_degradation_specs(TRAIN)
    assert set(specs) == set(KNOWN_DEGRADATIONS) | set(ADDED_DEGRADATIONS)
    assert specs["noise"].params.sigma == (10.0, 50.0)
    assert specs["jpeg"].params.quality == (10, 40)
    assert specs["bit_depth"].params.bits == (4, 7)
    for degradation in specs.values():
        assert degradation.apply(photo, np.random.default_rng(0)).image.shape == photo.shape
    composite = load_composite_config(TRAIN)
    assert isinstance(composite, CompositeConfig) and composite.max_regions >= composite.min_regions


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "specs.yaml"
    path.write_text(text)
    return path


def test_unknown_type_names_file_key_and_valid_names(tmp_path: Path) -> None:
    path = _write(tmp_path, "degradations:\n  - {type: noise, sigma: 5}\n  - {type: fog}\n")
    with pytest.raises(ConfigError) as info:
        load_degradation_specs(path)
    message = str(info.value)
    assert str(path) in message and "degradations.1.type" in message and "'fog'" in message
    assert "rain" in message and "bit_depth" in message


def test_out_of_range_value_names_file_and_key(tmp_path: Path) -> None:
    path = _write(tmp_path, "degradations:\n  - {type: jpeg, quality: [0, 40]}\n")
    with pytest.raises(
        ConfigError, match=r"specs.yaml: key 'degradations.0.quality': .*outside the valid range"
    ):
        load_degradation_specs(path)


def test_unknown_param_lists_allowed_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, "degradations:\n  - {type: haze, beta: 1.0}\n")
    with pytest.raises(ConfigError, match=r"key 'degradations.0.beta'.*allowed: airlight, t_mean"):
        load_degradation_specs(path)


def test_structure_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="key 'degradations'"):
        load_degradation_specs(_write(tmp_path, "degradations: []\n"))
    with pytest.raises(ConfigError, match="degradations.0.type': missing"):
        load_degradation_specs(_write(tmp_path, "degradations:\n  - {sigma: 3}\n"))
    with pytest.raises(ConfigError, match="listed twice"):
        load_degradation_specs(_write(tmp_path, "degradations:\n  - {type: noise}\n  - {type: noise}\n"))
    with pytest.raises(ConfigError, match="key 'composite.min_regions'"):
        load_composite_config(
            _write(tmp_path, "degradations:\n  - {type: noise}\ncomposite: {min_regions: 0}\n")
        )
    with pytest.raises(ConfigError, match="cannot read"):
        load_degradation_specs(tmp_path / "missing.yaml")
