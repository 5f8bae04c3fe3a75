"""`BackboneConfig`: the validated description of one Restormer-style backbone size.

Sizes are named presets, one YAML file each under ``configs/model/`` (``tiny``, ``small``,
``paper``); :func:`load_model_config` reads a preset by name or any YAML file by path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, PositiveInt, model_validator

from abair_core.config import PROJECT_ROOT, ConfigError, StrictConfig, load_config

__all__ = ["MODEL_CONFIG_DIR", "BackboneConfig", "list_model_presets", "load_model_config"]

MODEL_CONFIG_DIR = PROJECT_ROOT / "configs" / "model"

FourInts = tuple[PositiveInt, PositiveInt, PositiveInt, PositiveInt]


class BackboneConfig(StrictConfig):
    """Hyperparameters of the 4-level Restormer-style encoder/decoder.

    Level ``i`` runs ``num_blocks[i]`` transformer blocks at ``dims[i]`` channels with ``heads[i]``
    attention heads; the full-resolution decoder and refinement run at ``2 * dims[0]`` channels
    (skip concatenation without reduction, as in Restormer).
    """

    preset: str = Field("custom", description="Name of the preset this config came from (metadata only).")
    in_channels: PositiveInt = Field(3, description="Input and output channels (global residual).")
    dims: FourInts = Field((48, 96, 192, 384), description="Channels per level, full resolution first.")
    num_blocks: FourInts = Field((4, 6, 6, 8), description="Transformer blocks per level (latent last).")
    num_refinement_blocks: int = Field(4, ge=0, description="Full-resolution blocks after the decoder.")
    heads: FourInts = Field((1, 2, 4, 8), description="Attention heads per level; must divide dims.")
    ffn_expansion_factor: float = Field(2.66, gt=0.0, le=16.0, description="GDFN hidden width / dim.")
    bias: bool = Field(False, description="Bias in every convolution.")
    layer_norm: Literal["with_bias", "bias_free"] = Field(
        "with_bias", description="Channel LayerNorm variant (Restormer: WithBias)."
    )
    channels_last: bool = Field(True, description="Run convolutions in channels_last memory format.")

    @model_validator(mode="after")
    def _check_consistency(self) -> BackboneConfig:
        for i, (dim, heads) in enumerate(zip(self.dims, self.heads, strict=True)):
            if dim % heads:
                raise ValueError(f"dims[{i}]={dim} is not divisible by heads[{i}]={heads}")
        for i in range(1, 4):
            if self.dims[i] % 4:
                raise ValueError(
                    f"dims[{i}]={self.dims[i]} must be a multiple of 4 (pixel-unshuffle downsample from "
                    f"dims[{i - 1}]={self.dims[i - 1]})"
                )
        for i, dim in enumerate(self.dims):
            if int(dim * self.ffn_expansion_factor) < 1:
                raise ValueError(
                    f"ffn_expansion_factor={self.ffn_expansion_factor} gives no hidden channels "
                    f"for dims[{i}]={dim}"
                )
        return self

    @property
    def feature_channels(self) -> int:
        """Channels of the full-resolution feature map returned with ``return_features=True``."""
        return 2 * self.dims[0]

    @property
    def size_multiple(self) -> int:
        """Inputs are padded to a multiple of this (three 2x downsamplings)."""
        return 8


def list_model_presets() -> list[str]:
    """Names of the presets under ``configs/model/`` (sorted)."""
    return sorted(p.stem for p in MODEL_CONFIG_DIR.glob("*.yaml"))


def load_model_config(name_or_path: str | Path) -> BackboneConfig:
    """Load a preset by name (``"tiny"``) or a YAML file by path; errors name the file and key."""
    text = str(name_or_path)
    is_path = isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text
    if is_path:
        return load_config(Path(name_or_path), BackboneConfig)
    path = MODEL_CONFIG_DIR / f"{text}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown model preset {text!r} (allowed: {', '.join(list_model_presets())})")
    return load_config(path, BackboneConfig)
