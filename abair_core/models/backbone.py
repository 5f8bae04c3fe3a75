"""`RestormerBackbone`: the 4-level transformer encoder/decoder restoring an RGB image.

Structure (Restormer): 3x3 patch embedding, encoder levels 1-3 and a latent level joined by
pixel-unshuffle downsampling, a decoder that pixel-shuffles up, concatenates the encoder skip and
(at levels 3 and 2) reduces with a 1x1 conv, refinement blocks at full resolution, and an output
3x3 conv added to the input (global residual). Inputs of any size are padded to a multiple of 8.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from abair_core.models.blocks import Downsample, MultiDconvHeadTransposedAttention, TransformerBlock, Upsample
from abair_core.models.config import BackboneConfig

__all__ = [
    "RestormerBackbone",
    "build_backbone",
    "count_parameters",
    "flops_per_megapixel",
    "pad_to_multiple",
]


def _stage(config: BackboneConfig, dim: int, count: int, heads: int) -> nn.Sequential:
    with_bias = config.layer_norm == "with_bias"
    return nn.Sequential(
        *[
            TransformerBlock(dim, heads, config.ffn_expansion_factor, config.bias, with_bias)
            for _ in range(count)
        ]
    )


def pad_to_multiple(x: torch.Tensor, multiple: int) -> torch.Tensor:
    """Pad H, W (bottom/right) up to ``multiple``: reflect where the image is big enough, else replicate."""
    h, w = x.shape[-2:]
    pad_h, pad_w = (-h) % multiple, (-w) % multiple
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < h and pad_w < w else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


class RestormerBackbone(nn.Module):
    """Restormer-style restoration network; build it through ``build_model`` / ``build_backbone``."""

    def __init__(self, config: BackboneConfig) -> None:
        super().__init__()
        self.config = config
        d0, d1, d2, d3 = config.dims
        n0, n1, n2, n3 = config.num_blocks
        h0, h1, h2, h3 = config.heads
        bias = config.bias
        self.patch_embed = nn.Conv2d(config.in_channels, d0, kernel_size=3, padding=1, bias=bias)
        self.encoder_level1 = _stage(config, d0, n0, h0)
        self.down1_2 = Downsample(d0, d1, bias)
        self.encoder_level2 = _stage(config, d1, n1, h1)
        self.down2_3 = Downsample(d1, d2, bias)
        self.encoder_level3 = _stage(config, d2, n2, h2)
        self.down3_4 = Downsample(d2, d3, bias)
        self.latent = _stage(config, d3, n3, h3)
        self.up4_3 = Upsample(d3, d2, bias)
        self.reduce_chan_level3 = nn.Conv2d(2 * d2, d2, kernel_size=1, bias=bias)
        self.decoder_level3 = _stage(config, d2, n2, h2)
        self.up3_2 = Upsample(d2, d1, bias)
        self.reduce_chan_level2 = nn.Conv2d(2 * d1, d1, kernel_size=1, bias=bias)
        self.decoder_level2 = _stage(config, d1, n1, h1)
        self.up2_1 = Upsample(d1, d0, bias)
        self.decoder_level1 = _stage(config, 2 * d0, n0, h0)
        self.refinement = _stage(config, 2 * d0, config.num_refinement_blocks, h0)
        self.output = nn.Conv2d(2 * d0, config.in_channels, kernel_size=3, padding=1, bias=bias)
        if config.channels_last:
            self.to(memory_format=torch.channels_last)

    @property
    def feature_channels(self) -> int:
        """Channels of the feature map returned with ``return_features=True``."""
        return self.config.feature_channels

    def forward(
        self, x: torch.Tensor, return_features: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Restore ``x`` (N, C, H, W) in [0, 1]; optionally also return the full-resolution features.

        Any H, W: the input is padded to a multiple of 8 and the outputs are cropped back.
        """
        if x.ndim != 4 or x.shape[1] != self.config.in_channels:
            raise ValueError(f"expected (N, {self.config.in_channels}, H, W), got {tuple(x.shape)}")
        h, w = x.shape[-2:]
        padded = pad_to_multiple(x, self.config.size_multiple)
        if self.config.channels_last:
            padded = padded.contiguous(memory_format=torch.channels_last)
        enc1 = self.encoder_level1(self.patch_embed(padded))
        enc2 = self.encoder_level2(self.down1_2(enc1))
        enc3 = self.encoder_level3(self.down2_3(enc2))
        latent = self.latent(self.down3_4(enc3))
        dec3 = self.reduce_chan_level3(torch.cat([self.up4_3(latent), enc3], dim=1))
        dec3 = self.decoder_level3(dec3)
        dec2 = self.reduce_chan_level2(torch.cat([self.up3_2(dec3), enc2], dim=1))
        dec2 = self.decoder_level2(dec2)
        dec1 = self.decoder_level1(torch.cat([self.up2_1(dec2), enc1], dim=1))
        features = self.refinement(dec1)
        restored = (padded + self.output(features))[..., :h, :w]
        if self.config.channels_last:
            restored = restored.contiguous()
        if return_features:
            return restored, features[..., :h, :w]
        return restored


def build_backbone(config: BackboneConfig) -> RestormerBackbone:
    """Build a freshly initialised backbone from a validated config."""
    return RestormerBackbone(config)


def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (optionally only those with ``requires_grad``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def flops_per_megapixel(config: BackboneConfig, side: int = 256) -> float:
    """Forward FLOPs (2 x multiply-accumulates) per megapixel of input, counted on a ``side``² image.

    Counts every convolution and the two attention matmuls (the bulk of the work); norms,
    activations and softmax are left out. Runs on the ``meta`` device, so no arithmetic happens.
    """
    with torch.device("meta"):
        model = RestormerBackbone(config.model_copy(update={"channels_last": False}))
    macs = 0

    def conv_hook(module: nn.Conv2d, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal macs
        k_h, k_w = module.kernel_size
        macs += output.numel() * (module.in_channels // module.groups) * k_h * k_w

    def attention_hook(
        module: MultiDconvHeadTransposedAttention, inputs: tuple[torch.Tensor, ...], _output: torch.Tensor
    ) -> None:
        nonlocal macs
        n, c, h, w = inputs[0].shape
        per_head = c // module.heads
        macs += 2 * n * module.heads * per_head * per_head * h * w  # q @ k^T and attn @ v

    handles = []
    for mod in model.modules():
        if isinstance(mod, nn.Conv2d):
            handles.append(mod.register_forward_hook(conv_hook))
        elif isinstance(mod, MultiDconvHeadTransposedAttention):
            handles.append(mod.register_forward_hook(attention_hook))
    with torch.no_grad():
        model(torch.empty(1, config.in_channels, side, side, device="meta"))
    for handle in handles:
        handle.remove()
    return 2.0 * macs * 1e6 / (side * side)
