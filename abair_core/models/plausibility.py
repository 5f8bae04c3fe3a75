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

A gated class's probability moves to ``clean`` (which is never gated), so the identity path, one-hot and
soft-weight modes, manifests and evaluation all see the same probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from pydantic import Field

from abair_core.config import StrictConfig
from abair_core.models.image_statistics import STATISTIC_NAMES, degradation_statistics

__all__ = ["PlausibilityConfig", "apply_plausibility", "implausible_classes"]

_Q99 = STATISTIC_NAMES.index("luma_q99")
_LOG_NOISE = STATISTIC_NAMES.index("log_noise_luma")
_SHARPNESS = STATISTIC_NAMES.index("laplacian_to_gradient")
_DARK_CHANNEL = STATISTIC_NAMES.index("dark_channel")


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
    return mask


def apply_plausibility(probs: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Move the probability of the gated classes to ``clean`` (class 0); the others keep theirs.

    Not a renormalisation over the remaining degradations: when the estimator's best explanation is
    physically impossible it is confused about this image, and its runner-up is no safer a guess (measured:
    renormalising sent gated light noise to the haze and low-light adapters, 1.6 dB worse on ``noise_s5``).
    """
    if not bool(mask.any()):
        return probs
    gated = probs.masked_fill(~mask, 0.0).sum(dim=1)
    out = probs.masked_fill(mask, 0.0)
    out[:, 0] = out[:, 0] + gated
    return out
