"""The config loader names the file, the key and the allowed values in every error."""

from typing import Literal

import pytest

from abair_core.config import ConfigError, StrictConfig, load_config, validate_config


class InnerConfig(StrictConfig):
    mode: Literal["sw", "oh"] = "sw"
    rank: int = 4


class OuterConfig(StrictConfig):
    name: str
    inner: InnerConfig = InnerConfig()


def test_valid_file_loads(tmp_path):
    path = tmp_path / "ok.yaml"
    path.write_text("name: demo\ninner: {mode: oh, rank: 8}\n")
    config = load_config(path, OuterConfig)
    assert config.inner.mode == "oh" and config.inner.rank == 8


def test_unknown_key_lists_allowed_keys(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: demo\ninner: {mdoe: oh}\n")
    with pytest.raises(ConfigError) as info:
        load_config(path, OuterConfig)
    message = str(info.value)
    assert str(path) in message and "inner.mdoe" in message and "mode, rank" in message


def test_bad_literal_lists_allowed_values():
    with pytest.raises(ConfigError) as info:
        validate_config({"name": "x", "inner": {"mode": "blend"}}, OuterConfig, source="configs/x.yaml")
    message = str(info.value)
    assert "configs/x.yaml" in message and "inner.mode" in message and "'sw', 'oh'" in message


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml", OuterConfig)
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad, OuterConfig)
