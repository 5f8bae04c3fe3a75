"""Physical plausibility gates on the estimator's classes: no adapter for a degradation whose signature is absent.

The learned estimator misreads a handful of photos with high confidence (docs/DO_NO_HARM.md): a dark crop of a
black-and-white photo with light sensor noise reads as low light and is brightened by 20 dB; light noise
reads as noise and is smoothed. Two classes have a signature that no learned feature can argue away:

- low light: training's low-light images come from exposures <= 0.4, so their brightest pixels stay dark.
  An image whose highlights (99th luma percentile, brightest of the estimator's crops) are bright is not
  under-exposed, whatever its dark regions look like.
- noise: the noise adapter learned sigma >= 10 (8-bit units); "mild" noise (<= 6) is class ``clean``. The
  robust Haar estimate of the noise level (median over the crops: texture only raises it) below the bar
  means there is nothing for the noise adapter to remove.

Two more classes, for bundles that ``abair add-degradation`` extended with them:

- jpeg: JPEG's artefacts sit on its 8x8 block grid; a photo whose gradients show no excess on any 8-pixel grid
  phase (blockiness, median over the crops) was not compressed at the training qualities (<= 40).
- bit_depth: a photo reduced to b bits uses one 8-bit level in 255 / (2**b - 1) (at most half of them at 7 bits),
  whatever quantiser made it; one that fills its levels is not banded.

Gates for classes a bundle does not have never run. A gated class's probability moves to ``clean`` (which is
never gated), so the identity path, one-hot and soft-weight modes, manifests and evaluation all see the same
probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import torch
from pydantic import Field

from abair_core.config import StrictConfig
from abair_core.models.image_statistics import STATISTIC_NAMES, degradation_statistics

__all__ = ["PlausibilityConfig", "apply_plausibility", "condition_out", "implausible_classes", "level_fill"]

_Q99 = STATISTIC_NAMES.index("luma_q99")
_LOG_NOISE = STATISTIC_NAMES.index("log_noise_luma")
_SHARPNESS = STATISTIC_NAMES.index("laplacian_to_gradient")
_DARK_CHANNEL = STATISTIC_NAMES.index("dark_channel")
_BLOCKINESS = STATISTIC_NAMES.index("blockiness")
#: a channel whose central 98% spans fewer 8-bit levels than this says nothing about banding (a flat sky)
MIN_LEVEL_SPAN = 16


class PlausibilityConfig(StrictConfig):
    """Which physical gates run and where their bars are (estimator files written before the gates load with
    them off, so registered versions keep their outputs)."""

    enabled: bool = Field(True, description="apply the gates below to the estimator's probabilities")
    low_light_max_highlights: float = Field(
        0.5, gt=0.0, le=1.0, description="low light is implausible when the brightest crop's 99th luma "
        "percentile is above this (training exposures <= 0.4 keep it <= 0.41 on the benchmark photos)")
    noise_min_sigma: float = Field(
        5.5, ge=0.0, le=255.0, description="noise is implausible when the median over crops of the robust "
        "noise level (8-bit units) is below this (training sigma >= 10 reads >= 6 on quantised photos; "
        "mild sigma 5 reads 3.3-5)")
    blur_max_sharpness: float | None = Field(
        None, description="blur is implausible when the median over crops of log(laplacian / gradient) is above "
        "this (noise-like fine detail that a blur removes); null: no blur gate")
    haze_min_dark_channel: float | None = Field(
        None, ge=0.0, le=1.0, description="haze is implausible when the darkest crop's mean dark channel (minimum "
        "over colours and a 7x7 window) is below this: haze adds airlight A(1 - t) to every pixel, so a crop "
        "with true blacks in it is not hazy; null: no haze gate")
    jpeg_min_blockiness: float | None = Field(
        0.15, description="jpeg is implausible when the median over crops of the blockiness (excess of gradients "
        "on the 8-pixel grid, any phase) is below this: JPEG's artefacts sit on its 8x8 block grid (training "
        "quality <= 40 reads >= 0.17 on the 74-photo pool, 60% of clean crops read below 0.15); null: no jpeg gate")
    bit_depth_max_level_fill: float | None = Field(
        0.6, gt=0.0, le=1.0, description="bit_depth is implausible when the median over crops of the share of "
        "8-bit levels in use inside each channel's central range is above this (b bits use at most one level in "
        "255 / (2**b - 1): 7 bits reads <= 0.53 on the 74-photo pool, clean crops >= 0.53, 99% above 0.7); null: "
        "no bit-depth gate")
    gated_mass: Literal["clean", "clean_if_top"] = Field(
        "clean", description="where a gated class's probability goes: 'clean' always; 'clean_if_top' to clean "
        "only when a gated class is the estimator's top answer (it is confused about this image), otherwise "
        "the gated classes are dropped and every other class renormalised, so the top answer stands (a noisy "
        "photo half read as bit_depth stays noise instead of passing through as clean)")
    expert_veto: Literal["base", "clean"] = Field(
        "base", description="where the probability of an added degradation's expert goes when its class is gated: "
        "'base' conditions it out, so the classes the expert gates get back exactly what the estimator it was "
        "added to said (an old task keeps its route); 'clean' sends it to clean like any gated class (estimator "
        "files written before 2026-12-04 load with 'clean'; it passed 10 of the small suite's 132 noise inputs "
        "through after the jpeg expert claimed them)")


def implausible_classes(crops: torch.Tensor, n: int, class_names: Sequence[str],
                        config: PlausibilityConfig) -> torch.Tensor:
    """Mask (n, K), True where a class is physically implausible; ``crops`` is (n * count, 3, h, w)."""
    mask = torch.zeros(n, len(class_names), dtype=torch.bool, device=crops.device)
    if not config.enabled:
        return mask
    stats = degradation_statistics(crops).reshape(n, -1, len(STATISTIC_NAMES))
    if "low_light" in class_names:
        highlights = stats[:, :, _Q99].amax(dim=1)
        mask[:, class_names.index("low_light")] = highlights > config.low_light_max_highlights
    if "noise" in class_names:
        sigma = stats[:, :, _LOG_NOISE].median(dim=1).values
        mask[:, class_names.index("noise")] = sigma < math.log(config.noise_min_sigma / 255.0)
    if "blur" in class_names and config.blur_max_sharpness is not None:
        sharpness = stats[:, :, _SHARPNESS].median(dim=1).values
        mask[:, class_names.index("blur")] = sharpness > config.blur_max_sharpness
    if "haze" in class_names and config.haze_min_dark_channel is not None:
        darkest = stats[:, :, _DARK_CHANNEL].amin(dim=1)
        mask[:, class_names.index("haze")] = darkest < config.haze_min_dark_channel
    if "jpeg" in class_names and config.jpeg_min_blockiness is not None:
        blockiness = stats[:, :, _BLOCKINESS].median(dim=1).values
        mask[:, class_names.index("jpeg")] = blockiness < config.jpeg_min_blockiness
    if "bit_depth" in class_names and config.bit_depth_max_level_fill is not None:
        fill = level_fill(crops).reshape(n, -1).nanmedian(dim=1).values  # NaN (no informative crop): not gated
        mask[:, class_names.index("bit_depth")] = fill > config.bit_depth_max_level_fill
    return mask


def level_fill(crops: torch.Tensor) -> torch.Tensor:
    """Per crop (M,): the share of the 8-bit levels between each channel's 1st and 99th percentile that occur.

    A photo reduced to b bits uses one level in 255 / (2**b - 1) whatever quantiser made it (at most 0.5 for
    7 bits), while an 8-bit photo fills its range (texture, noise and gradients leave no gaps). The mean over
    the channels whose central range spans at least ``MIN_LEVEL_SPAN`` levels; NaN when none does (a flat
    crop shows no banding either way).
    """
    levels = (crops.float().clamp(0, 1) * 255).round().flatten(2)  # (M, 3, P)
    lo = torch.quantile(levels, 0.01, dim=2).round()
    hi = torch.quantile(levels, 0.99, dim=2).round()
    inside = (levels >= lo[..., None]) & (levels <= hi[..., None])
    m, c = levels.shape[:2]
    index = (levels.long() + 256 * torch.arange(m * c, device=crops.device).reshape(m, c, 1)).flatten()
    seen = torch.zeros(m * c * 256, device=crops.device)
    seen[index[inside.flatten()]] = 1.0
    used = seen.reshape(m, c, 256).sum(dim=2)
    span = hi - lo + 1
    ok = span >= MIN_LEVEL_SPAN
    fill = torch.where(ok, used / span, torch.zeros_like(span))
    count = ok.sum(dim=1)
    return torch.where(count > 0, fill.sum(dim=1) / count.clamp(min=1), torch.full_like(fill[:, 0], float("nan")))


def apply_plausibility(probs: torch.Tensor, mask: torch.Tensor, gated_mass: str = "clean") -> torch.Tensor:
    """Move the probability of the gated classes to ``clean`` (class 0); the others keep theirs.

    Not a renormalisation over the remaining degradations: when the estimator's best explanation is
    physically impossible it is confused about this image, and its runner-up is no safer a guess (measured:
    renormalising sent gated light noise to the haze and low-light adapters, 1.6 dB worse on ``noise_s5``).
    ``gated_mass="clean_if_top"`` does that only for images whose top class is gated; where a gated class is
    not the top, the gated classes are dropped and the rest (clean included) renormalised, so the estimator's
    top answer stands.
    """
    if gated_mass not in ("clean", "clean_if_top"):
        raise ValueError(f"gated_mass must be 'clean' or 'clean_if_top', got {gated_mass!r}")
    if not bool(mask.any()):
        return probs
    to_clean = probs.masked_fill(mask, 0.0)  # a new tensor: probs stays as it was
    to_clean[:, 0] = to_clean[:, 0] + probs.masked_fill(~mask, 0.0).sum(dim=1)
    if gated_mass == "clean":
        return to_clean
    top_gated = mask.gather(1, probs.argmax(dim=1, keepdim=True)).squeeze(1)
    return torch.where(top_gated[:, None], to_clean, condition_out(probs, mask))


def condition_out(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The probabilities given that none of the masked classes is the answer: those dropped, the rest renormalised.

    For an expert's class (see ``DegradationEstimator``) this undoes the expert's gate exactly: the classes scored
    before it return to the probabilities their own estimator gave. A row whose every class is masked keeps its
    probabilities.
    """
    if not bool(mask.any()):
        return probs
    kept = probs.masked_fill(mask, 0.0)
    total = kept.sum(dim=1, keepdim=True)
    return torch.where(total > 0, kept / total.clamp_min(1e-12), probs)
