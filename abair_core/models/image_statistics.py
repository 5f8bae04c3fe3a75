"""Classical no-reference image statistics that tell degradations apart, for the degradation estimator.

A small CNN trained for minutes on a CPU learns the obvious classes (low light, haze) fast but confuses
clean photos with light noise, blur and texture. These measurements are what image-processing practice
uses to tell them apart, are exact at any training length, and cost a few element-wise passes:

- noise level: robust (median absolute deviation) std of the finest Haar diagonal detail, on luma and on a
  chroma difference, at two scales (white noise halves from one scale to the next, texture does not);
- sharpness: mean gradient and Laplacian magnitudes and their ratio (blur removes the highest frequencies);
- exposure and contrast: luma mean, spread and 1/50/99 % quantiles (low light, haze);
- haze: the dark channel (minimum over colours and a 7x7 window) and the colour saturation;
- JPEG: blockiness, the excess of gradients on the 8-pixel grid over the others (any grid phase);
- bit depth: the share of the 256 levels of each colour channel in use (banding);
- streaks: the share of pixels much brighter than their 5x5 neighbourhood (rain, snow).

Scale-like quantities are log-transformed so they span comparable ranges.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["NUM_STATISTICS", "STATISTIC_NAMES", "degradation_statistics"]

STATISTIC_NAMES = (
    "log_noise_luma", "log_noise_luma_scale2", "log_noise_chroma", "noise_scale_ratio",
    "log_gradient", "log_laplacian", "laplacian_to_gradient",
    "luma_mean", "luma_std", "luma_q01", "luma_q50", "luma_q99",
    "dark_channel", "saturation", "blockiness", "grey_levels_used", "bright_outliers",
)
NUM_STATISTICS = len(STATISTIC_NAMES)
_EPS = 1e-4
_MAD_TO_STD = 1.0 / 0.6745


def luma(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> (N, 1, H, W) Rec. 601 luma."""
    r, g, b = x.unbind(1)
    return (0.299 * r + 0.587 * g + 0.114 * b).unsqueeze(1)


def contrast_about_mean(x: torch.Tensor, factor: float) -> torch.Tensor:
    """(N, 3, H, W) RGB in [0, 1] with its contrast scaled by ``factor`` about each image's mean luma, clipped.

    A change a camera's contrast setting or an editor makes without degrading anything (0.85: flatter).
    """
    mean = luma(x).mean(dim=(1, 2, 3), keepdim=True)
    return (mean + factor * (x - mean)).clamp(0.0, 1.0)


def _haar_noise_std(y: torch.Tensor) -> torch.Tensor:
    """Robust noise std (N,) of single-channel y (N, 1, H, W) from its finest Haar diagonal detail."""
    h, w = y.shape[-2] // 2 * 2, y.shape[-1] // 2 * 2
    y = y[..., :h, :w]
    diagonal = (y[..., 0::2, 0::2] - y[..., 0::2, 1::2] - y[..., 1::2, 0::2] + y[..., 1::2, 1::2]) / 2
    return diagonal.abs().flatten(1).median(dim=1).values * _MAD_TO_STD


def _window_min(y: torch.Tensor, size: int) -> torch.Tensor:
    """Minimum of y (N, 1, H, W) over a ``size`` x ``size`` window (same size out; the border sees a smaller
    window). Separable, from shifted slices: the same numbers as a 2-D min pool at a fraction of its cost on CPU."""
    half = size // 2
    for axis in (-2, -1):
        padded = F.pad(y, (half, half, 0, 0) if axis == -1 else (0, 0, half, half), value=float("inf"))
        length = y.shape[axis]
        out = padded.narrow(axis, 0, length)
        for shift in range(1, size):
            out = torch.minimum(out, padded.narrow(axis, shift, length))
        y = out
    return y


def _blockiness(y: torch.Tensor) -> torch.Tensor:
    """Max over the 8 grid phases of (mean |dx| on the phase / mean |dx| overall) - 1, both axes averaged."""
    scores = []
    for diff in (y[..., :, 1:] - y[..., :, :-1], (y[..., 1:, :] - y[..., :-1, :]).transpose(-1, -2)):
        grad = diff.abs().mean(dim=(1, 2))  # (N, W-1): mean over channels and rows per column boundary
        usable = grad.shape[-1] // 8 * 8
        if usable == 0:
            scores.append(torch.zeros(y.shape[0], device=y.device))
            continue
        per_phase = grad[:, :usable].reshape(grad.shape[0], -1, 8).mean(dim=1)  # (N, 8)
        scores.append(per_phase.max(dim=1).values / (per_phase.mean(dim=1) + _EPS) - 1.0)
    return (scores[0] + scores[1]) / 2


def degradation_statistics(x: torch.Tensor) -> torch.Tensor:
    """Statistics (N, NUM_STATISTICS), in the order of STATISTIC_NAMES, of images x (N, 3, H, W) in [0, 1]."""
    x = x.float().clamp(0, 1)
    y = luma(x)
    chroma = (x[:, :1] - x[:, 1:2]) / 2
    noise = _haar_noise_std(y)
    noise2 = _haar_noise_std(F.avg_pool2d(y, 2))
    dx = y[..., :, 1:] - y[..., :, :-1]
    dy = y[..., 1:, :] - y[..., :-1, :]
    gradient = (dx.abs().mean(dim=(1, 2, 3)) + dy.abs().mean(dim=(1, 2, 3))) / 2
    laplacian = F.conv2d(F.pad(y, (1, 1, 1, 1), mode="replicate"),
                         y.new_tensor([[[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]])).abs().mean(dim=(1, 2, 3))
    flat = y.flatten(1)
    quantiles = torch.quantile(flat, y.new_tensor([0.01, 0.5, 0.99]), dim=1).T  # (N, 3)
    dark = _window_min(x.amin(dim=1, keepdim=True), 7)
    saturation = x.amax(dim=1) - x.amin(dim=1)
    # per colour channel: bit-depth reduction quantises each channel, not their luma mix
    levels = (x.flatten(2) * 255).round().long().clamp(0, 255) + 256 * torch.arange(3, device=x.device)[:, None]
    used = torch.zeros(x.shape[0], 768, device=x.device).scatter_(1, levels.flatten(1), 1.0).sum(dim=1) / 3
    local_mean = F.avg_pool2d(F.pad(y, (2, 2, 2, 2), mode="replicate"), 5, stride=1)
    outliers = (y - local_mean > 0.1).float().mean(dim=(1, 2, 3))
    columns = [
        torch.log(noise + _EPS), torch.log(noise2 + _EPS), torch.log(_haar_noise_std(chroma) + _EPS),
        torch.log((noise2 + _EPS) / (noise + _EPS)),
        torch.log(gradient + _EPS), torch.log(laplacian + _EPS), torch.log((laplacian + _EPS) / (gradient + _EPS)),
        flat.mean(dim=1), flat.std(dim=1), quantiles[:, 0], quantiles[:, 1], quantiles[:, 2],
        dark.mean(dim=(1, 2, 3)), saturation.mean(dim=(1, 2)), _blockiness(y),
        used / 256.0, torch.sqrt(outliers),
    ]
    return torch.stack(columns, dim=1)
