"""Tiled restoration: run a model on overlapping tiles and blend them, so memory follows the tile size.

Tiles are ``tile`` x ``tile`` (smaller only where the image is), laid out with at least ``overlap``
pixels shared between neighbours; the last tile of a row/column sits flush with the image edge, so every
tile has the same size and tiles can be batched. Each tile's output is weighted by a separable window
that is 1 in the tile's interior and on image borders and, towards a neighbouring tile, is 0 for the
outer ``overlap // 4`` pixels (where the model sees the artificial tile edge) and then rises as a
raised cosine; outputs and weights accumulate in CPU buffers and are divided at the end. A model whose
receptive-field radius is at most ``overlap // 4`` therefore gives the same result as untiled inference.
Only ``batch_size`` tiles are on the model's device at a time; the image-sized buffers stay on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["blend_window", "restore_tiled", "tile_starts"]


def restore_tiled(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int = 256,
    overlap: int = 32,
    multiple: int = 8,
    batch_size: int = 1,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Restore ``x`` (N, C, H, W) tile by tile with ``fn`` (under ``torch.no_grad``); returns float32 on CPU.

    ``fn`` maps (B, C, h, w) to (B, C_out, h, w). Tiles whose sides are not a multiple of ``multiple``
    (only possible where the image side is smaller than ``tile``) are reflect-padded and cropped back.
    Images no larger than one tile go through ``fn`` whole. ``device`` is where tiles are sent (default:
    where ``x`` is).
    """
    if x.ndim != 4:
        raise ValueError(f"x must be (N, C, H, W), got {tuple(x.shape)}")
    if tile <= 0 or tile % multiple:
        raise ValueError(f"tile ({tile}) must be a positive multiple of {multiple}")
    if not 0 <= overlap <= tile // 2:
        raise ValueError(f"overlap ({overlap}) must be in [0, tile / 2]")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    device = torch.device(device) if device is not None else x.device
    return torch.cat(
        [
            _restore_one(fn, x[i : i + 1], tile, overlap, multiple, batch_size, device)
            for i in range(x.shape[0])
        ]
    )


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering ``length`` with tiles of ``tile`` sharing at least ``overlap`` pixels."""
    if length <= tile:
        return [0]
    step = tile - overlap
    count = math.ceil((length - tile) / step) + 1
    starts = [i * step for i in range(count - 1)]
    return starts + [length - tile]


def blend_window(size: int, overlap: int, taper_start: bool, taper_end: bool) -> torch.Tensor:
    """1-D weights: 1 inside, and at a tapered end 0 for ``overlap // 4`` pixels then a raised-cosine rise."""
    weights = torch.ones(size, dtype=torch.float64)
    margin = overlap // 4
    ramp_len = overlap - 2 * margin
    if overlap == 0:
        return weights.float()
    ramp = 0.5 - 0.5 * torch.cos(math.pi * (torch.arange(ramp_len, dtype=torch.float64) + 0.5) / ramp_len)
    profile = torch.cat([torch.zeros(margin, dtype=torch.float64), ramp])
    if taper_start:
        weights[: profile.numel()] = torch.minimum(weights[: profile.numel()], profile)
    if taper_end:
        weights[size - profile.numel() :] = torch.minimum(weights[size - profile.numel() :], profile.flip(0))
    return weights.float()


def _restore_one(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    tile: int,
    overlap: int,
    multiple: int,
    batch_size: int,
    device: torch.device,
) -> torch.Tensor:
    _, _, height, width = x.shape
    th, tw = min(tile, height), min(tile, width)
    if height <= tile and width <= tile:
        return _run(fn, x, multiple, device)[0:1]
    ys, xs = tile_starts(height, tile, overlap), tile_starts(width, tile, overlap)
    positions = [(y, x0) for y in ys for x0 in xs]
    output: torch.Tensor | None = None
    weight = torch.zeros(1, 1, height, width, dtype=torch.float32)
    for first in range(0, len(positions), batch_size):
        chunk = positions[first : first + batch_size]
        tiles = torch.cat([x[:, :, y : y + th, x0 : x0 + tw] for y, x0 in chunk])
        restored = _run(fn, tiles, multiple, device)
        if output is None:
            output = torch.zeros(1, restored.shape[1], height, width, dtype=torch.float32)
        for k, (y, x0) in enumerate(chunk):
            wy = blend_window(th, overlap, y > 0, y + th < height)
            wx = blend_window(tw, overlap, x0 > 0, x0 + tw < width)
            w = (wy[:, None] * wx[None, :])[None, None]
            output[:, :, y : y + th, x0 : x0 + tw] += restored[k : k + 1] * w
            weight[:, :, y : y + th, x0 : x0 + tw] += w
    assert output is not None
    return output / weight


def _run(
    fn: Callable[[torch.Tensor], torch.Tensor], tiles: torch.Tensor, multiple: int, device: torch.device
) -> torch.Tensor:
    """``fn`` on tiles padded to ``multiple``, cropped back, as float32 on the CPU."""
    height, width = tiles.shape[-2:]
    pad_h, pad_w = (-height) % multiple, (-width) % multiple
    batch = tiles.to(device)
    if pad_h or pad_w:
        mode = "reflect" if pad_h < height and pad_w < width else "replicate"
        batch = F.pad(batch, (0, pad_w, 0, pad_h), mode=mode)
    with torch.no_grad():
        out = fn(batch)
    if out.shape[0] != batch.shape[0] or out.shape[-2:] != batch.shape[-2:]:
        raise ValueError(f"fn changed the tile shape: {tuple(batch.shape)} -> {tuple(out.shape)}")
    return out[..., :height, :width].detach().to("cpu", torch.float32)
