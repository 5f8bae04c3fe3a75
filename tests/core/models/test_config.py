"""BackboneConfig validation and preset loading."""

from __future__ import annotations

import pytest

from abair_core.config import ConfigError
from abair_core.models.config import BackboneConfig, list_model_presets, load_model_config


def test_presets_are_listed_and_load() -> None:
    assert list_model_presets() == ["paper", "small", "tiny"]
    for name in list_model_presets():
        config = load_model_config(name)
        assert config.preset == name
        assert config.feature_channels == 2 * config.dims[0]


def test_paper_preset_is_restormer() -> None:
    config = load_model_config("paper")
    assert config.dims == (48, 96, 192, 384)
    assert config.num_blocks == (4, 6, 6, 8)
    assert config.num_refinement_blocks == 4
    assert config.heads == (1, 2, 4, 8)
    assert config.ffn_expansion_factor == pytest.approx(2.66)


def test_unknown_preset_lists_valid_names() -> None:
    with pytest.raises(ConfigError, match="unknown model preset 'huge'.*paper, small, tiny"):
        load_model_config("huge")


def test_load_by_path(tmp_path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text("preset: mine\ndims: [8, 16, 32, 64]\nnum_blocks: [1, 1, 1, 1]\nheads: [1, 1, 1, 1]\n")
    config = load_model_config(path)
    assert config.dims == (8, 16, 32, 64) and config.num_refinement_blocks == 4
    assert load_model_config(str(path)) == config


def test_dims_not_divisible_by_heads_names_both_fields() -> None:
    with pytest.raises(ValueError, match=r"dims\[2\]=30 .*heads\[2\]=4"):
        BackboneConfig(dims=(8, 16, 30, 64), heads=(1, 1, 4, 2))


def test_downsample_needs_multiple_of_four() -> None:
    with pytest.raises(ValueError, match=r"dims\[1\]=18 must be a multiple of 4"):
        BackboneConfig(dims=(8, 18, 32, 64), heads=(1, 1, 1, 1))


def test_file_errors_name_file_key_and_allowed(tmp_path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("dims: [8, 16, 32, 64]\nlayer_norm: fancy\nwidth: 3\n")
    with pytest.raises(ConfigError) as info:
        load_model_config(path)
    text = str(info.value)
    assert "bad.yaml: key 'layer_norm'" in text and "'with_bias', 'bias_free'" in text
    assert "key 'width'" in text and "num_refinement_blocks" in text


def test_wrong_length_lists_rejected() -> None:
    with pytest.raises(ValueError):
        BackboneConfig(dims=(8, 16, 32))
