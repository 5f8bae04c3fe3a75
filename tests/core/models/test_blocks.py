"""Restormer building blocks: norms, attention, feed-forward, resampling."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from abair_core.models.blocks import (
    ChannelLayerNorm,
    Downsample,
    GatedDconvFeedForward,
    MultiDconvHeadTransposedAttention,
    TransformerBlock,
    Upsample,
)


def _x(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


def test_layer_norm_with_bias_matches_reference_in_both_memory_formats() -> None:
    norm = ChannelLayerNorm(6, with_bias=True)
    with torch.no_grad():
        norm.weight.copy_(torch.linspace(0.5, 2.0, 6))
        norm.bias.copy_(torch.linspace(-1.0, 1.0, 6))
    x = _x(2, 6, 5, 7)
    ref = F.layer_norm(x.permute(0, 2, 3, 1), (6,), norm.weight, norm.bias, 1e-5).permute(0, 3, 1, 2)
    out = norm(x)
    assert out.is_contiguous()
    torch.testing.assert_close(out, ref)
    out_cl = norm(x.contiguous(memory_format=torch.channels_last))
    assert out_cl.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(out_cl, ref)


def test_layer_norm_bias_free_scales_without_centring() -> None:
    norm = ChannelLayerNorm(4, with_bias=False)
    assert norm.bias is None
    x = _x(1, 4, 3, 3) + 2.0
    var = x.var(dim=1, keepdim=True, unbiased=False)
    torch.testing.assert_close(norm(x), x / torch.sqrt(var + 1e-5))


def test_attention_and_ffn_shapes_and_lora_target_names() -> None:
    x = _x(2, 8, 6, 10)
    attn = MultiDconvHeadTransposedAttention(8, heads=2, bias=False)
    ffn = GatedDconvFeedForward(8, expansion=2.66, bias=False)
    assert attn(x).shape == x.shape and ffn(x).shape == x.shape
    assert attn.qkv.kernel_size == (1, 1) and attn.qkv.out_channels == 24
    assert attn.qkv_dwconv.groups == 24 and attn.project_out.kernel_size == (1, 1)
    hidden = int(8 * 2.66)
    assert ffn.project_in.out_channels == 2 * hidden and ffn.dwconv.groups == 2 * hidden
    assert ffn.project_out.in_channels == hidden


def test_attention_gives_the_same_output_and_gradients_in_both_memory_formats() -> None:
    """The channels_last path reads q, k and v as views of the NHWC memory; it must compute the same thing."""
    torch.manual_seed(0)
    attn = MultiDconvHeadTransposedAttention(8, heads=2, bias=False)
    results = []
    for fmt in (torch.contiguous_format, torch.channels_last):
        attn.to(memory_format=fmt)  # as the backbone does with channels_last: true
        attn.zero_grad()
        x = _x(2, 8, 6, 10).contiguous(memory_format=fmt).requires_grad_()
        out = attn(x)
        assert out.is_contiguous(memory_format=fmt)
        (out * _x(2, 8, 6, 10, seed=1)).sum().backward()
        results.append((out.detach(), x.grad, [p.grad.clone() for p in attn.parameters()]))
    (out_a, dx_a, dp_a), (out_b, dx_b, dp_b) = results
    torch.testing.assert_close(out_b, out_a)
    torch.testing.assert_close(dx_b, dx_a)
    for a, b in zip(dp_a, dp_b, strict=True):
        torch.testing.assert_close(b, a)


def test_attention_matches_per_head_channel_attention_reference() -> None:
    torch.manual_seed(0)
    attn = MultiDconvHeadTransposedAttention(4, heads=2, bias=False)
    with torch.no_grad():
        attn.temperature.copy_(torch.tensor([2.0, 0.5]).reshape(2, 1, 1))
    x = _x(1, 4, 5, 6)
    q, k, v = attn.qkv_dwconv(attn.qkv(x)).chunk(3, dim=1)
    heads = []
    for h in range(2):
        qh, kh, vh = (t[0, 2 * h : 2 * h + 2].reshape(2, -1) for t in (q, k, v))
        qh, kh = F.normalize(qh, dim=-1), F.normalize(kh, dim=-1)
        weights = torch.softmax(qh @ kh.T * attn.temperature[h, 0, 0], dim=-1)  # (C_h, C_h)
        heads.append(weights @ vh)
    ref = attn.project_out(torch.cat(heads).reshape(1, 4, 5, 6))
    torch.testing.assert_close(attn(x), ref)


def test_block_resampling_round_trip_shapes() -> None:
    x = _x(2, 8, 8, 12)
    down = Downsample(8, 16, bias=False)
    up = Upsample(16, 8, bias=False)
    y = down(x)
    assert y.shape == (2, 16, 4, 6)
    assert up(y).shape == x.shape
    block = TransformerBlock(8, 2, 2.0, bias=False, with_bias_norm=True)
    assert block(x).shape == x.shape
