"""`DegradationEstimator`: a lightweight CNN giving degradation probabilities for an image.

It always looks at native-resolution crops, never at a resized image: resizing averages away the
evidence of noise, JPEG blocks and bit-depth banding. Training feeds it crops directly; at inference
:meth:`DegradationEstimator.predict_proba` averages the logits of ``num_crops`` fixed crops.
Class 0 is ``clean`` (the do-no-harm class); the others are degradation ids.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from abair_core.config import StrictConfig
from abair_core.models.image_statistics import NUM_STATISTICS, degradation_statistics
from abair_core.models.plausibility import (
    PlausibilityConfig,
    apply_plausibility,
    condition_out,
    implausible_classes,
)

__all__ = [
    "DegradationEstimator",
    "EstimatorConfig",
    "GatedProbabilities",
    "SpaceToDepth",
    "crop_positions",
    "crop_views",
    "native_crops",
    "spatial_std_mean",
]


class EstimatorConfig(StrictConfig):
    """Size of the estimator and of the crops it sees."""

    crop_size: int = Field(64, ge=16, le=1024, description="Side of the native-resolution crops.")
    num_crops: int = Field(4, ge=1, le=64, description="Crops averaged by predict_proba (fixed layout).")
    width: PositiveInt = Field(24, le=256, description="Channels of the first stage.")
    stem: Literal["full", "space_to_depth"] = Field(
        "full", description="How the first stage sees the crop: 'full' a 3x3 conv at full resolution; "
        "'space_to_depth' each 2x2 block of pixels as 12 channels, then a 3x3 conv at half resolution (every pixel "
        "still seen, a training step 2.6x cheaper on CPU; docs/DO_NO_HARM.md, 'A cheaper estimator step').")
    depth: int = Field(4, ge=1, le=6, description="Stride-2 stages after the stem.")
    max_width_multiplier: int = Field(4, ge=1, le=16, description="Channel cap: width * this.")
    statistics: bool = Field(True, description="Also feed classical image statistics (noise level, sharpness, "
                             "exposure, dark channel, blockiness, grey levels) to the classifier.")
    hidden: int = Field(64, ge=0, le=1024, description="Hidden units of the classifier (0: one linear layer).")
    plausibility: PlausibilityConfig = Field(
        default_factory=PlausibilityConfig,
        description="Physical gates on the probabilities (abair_core/models/plausibility.py); inference only.")
    sw_sharpness: float = Field(
        1.0, ge=1.0, le=64.0,
        description="Soft weights (sw) blend the adapters in proportion to p ** sw_sharpness (the degradation "
        "probabilities raised to this power, renormalised): 1 is the paper's soft weights, larger leans toward the "
        "arg-max adapter of oh. Inference only; the identity share p(clean) is not changed (docs/DO_NO_HARM.md).")
    tta: Literal["none", "flip", "dihedral"] = Field(
        "none", description="Test-time views of every crop whose logits are averaged: 'none' the crop as it is, "
        "'flip' it and its mirror image, 'dihedral' its 8 flips and quarter turns (the geometry training's crops "
        "are drawn with). Inference only (docs/DO_NO_HARM.md, 'Test-time views for the estimator').")


#: The fields that set an estimator's tensors' shapes: a warm start keeps its base's values of these.
SHAPE_FIELDS = ("width", "depth", "max_width_multiplier", "statistics", "hidden", "stem")


def crop_positions(height: int, width: int, crop: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` fixed crops: a ``g x g`` evenly spaced grid (g = ceil(sqrt(count))),
    nearest-to-centre first (ties in raster order). 1 -> centre, 4 -> corners, 5 -> centre + edges, 9 -> all.
    """
    g = max(1, math.ceil(math.sqrt(count)))

    def axis(size: int) -> list[int]:
        span = max(size - crop, 0)
        return [round(span / 2)] if g == 1 else [round(i * span / (g - 1)) for i in range(g)]

    ys, xs = axis(height), axis(width)
    centre = (g - 1) / 2
    cells = sorted(
        ((i, j) for i in range(g) for j in range(g)),
        key=lambda c: ((c[0] - centre) ** 2 + (c[1] - centre) ** 2, c),
    )
    return [(ys[i], xs[j]) for i, j in cells[:count]]


def native_crops(
    x: torch.Tensor, crop: int, count: int, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Cut ``count`` crops of ``crop`` pixels from each image of x (N, C, H, W) -> (N, count, C, crop, crop).

    Without a generator the layout of :func:`crop_positions` is used; with one, positions are drawn
    uniformly (the same positions for every image of the batch). Images smaller than a crop are
    padded (reflect where possible, else replicate), never resized.
    """
    h, w = x.shape[-2:]
    pad_h, pad_w = max(crop - h, 0), max(crop - w, 0)
    if pad_h or pad_w:
        mode = "reflect" if pad_h < h and pad_w < w else "replicate"
        x = F.pad(x, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), mode=mode)
        h, w = x.shape[-2:]
    if generator is None:
        positions = crop_positions(h, w, crop, count)
    else:
        ys = torch.randint(0, h - crop + 1, (count,), generator=generator).tolist()
        xs = torch.randint(0, w - crop + 1, (count,), generator=generator).tolist()
        positions = list(zip(ys, xs, strict=True))
    return torch.stack([x[:, :, y : y + crop, x0 : x0 + crop] for y, x0 in positions], dim=1)


def crop_views(crops: torch.Tensor, tta: str) -> torch.Tensor:
    """Crops (M, C, h, w) with their test-time views appended along the batch: 'none' -> M, 'flip' -> 2M (with the
    left-right mirror), 'dihedral' -> 8M (the four quarter turns of the crop and of its mirror). Square crops
    only for the quarter turns. View-major: row ``v * M + i`` is view v of crop i."""
    if tta == "none":
        return crops
    mirrored = crops.flip(-1)
    if tta == "flip":
        return torch.cat([crops, mirrored])
    if tta != "dihedral":
        raise ValueError(f"unknown tta {tta!r} (allowed: none, flip, dihedral)")
    return torch.cat([torch.rot90(v, k, dims=(-2, -1)) for v in (crops, mirrored) for k in range(4)])


def spatial_std_mean(f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel standard deviation (population) and mean over the pixels of f (N, C, H, W), each (N, C).

    The same numbers as ``torch.std_mean(f, dim=(2, 3), unbiased=False)`` (to float rounding), in two
    vectorised passes: on CPU torch.std_mean over the spatial axes took 10 ms for a 32 x 24 x 64 x 64
    batch and this takes under 1 ms, forward and backward about 2x faster.
    """
    flat = f.flatten(2)
    mean = flat.mean(dim=2)
    return torch.linalg.vector_norm(flat - mean.unsqueeze(2), dim=2) / math.sqrt(flat.shape[2]), mean


class SpaceToDepth(nn.Module):
    """(N, C, H, W) -> (N, 4C, ceil(H/2), ceil(W/2)): each 2x2 block of pixels as channels, nothing averaged
    away (an odd side is first padded by repeating its last row or column)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        if h % 2 or w % 2:
            x = F.pad(x, (0, w % 2, 0, h % 2), mode="replicate")
        return F.pixel_unshuffle(x, 2)


def _scorer(features: int, hidden: int, outputs: int) -> nn.Module:
    """features -> hidden (GELU) -> outputs, or one linear layer without a hidden layer."""
    if not hidden:
        return nn.Linear(features, outputs)
    return nn.Sequential(nn.Linear(features, hidden), nn.GELU(), nn.Linear(hidden, outputs))


class GatedProbabilities(NamedTuple):
    """What :meth:`DegradationEstimator.predict_proba_gated` returns, each (N, K)."""

    probabilities: torch.Tensor  #: after the plausibility gates (what routing uses)
    moved: torch.Tensor  #: the probability each vetoed class lost to the gates (0 where none did)
    raw: torch.Tensor  #: the learned estimator's own, before the gates


class DegradationEstimator(nn.Module):
    """Strided 3x3 conv stages with mean+std pooling of every stage, plus (optionally) the classical
    statistics of :mod:`abair_core.models.image_statistics`, into a small classifier -> logits (N, K).

    ``head_classes``: classes scored by a head of their own on the same pooled features instead of by the
    classifier (``phase3.trainable: new_classes`` before 2026-12-03; such files keep loading).
    ``experts``: class -> the classes of an estimator of its own (an "expert", trained over every class when that
    class was added). The expert's probability q of its class **gates** everything scored before it: the class gets
    q and every earlier class (1 - q) times its own probability, so the earlier classes keep their ranking and
    their ratios exactly. ``abair add-degradation`` with ``phase3.trainable: new_classes`` adds one expert per new
    type and keeps every other weight, so an old task can only change where the expert claims its inputs.
    """

    def __init__(self, config: EstimatorConfig, class_names: Sequence[str],
                 head_classes: Sequence[str] = (), experts: Mapping[str, Sequence[str]] | None = None) -> None:
        super().__init__()
        names = list(class_names)
        if len(names) < 2 or names[0] != "clean":
            raise ValueError(f"class_names must start with 'clean' and have >= 2 entries, got {names}")
        if len(set(names)) != len(names):
            raise ValueError(f"class_names has duplicates: {names}")
        heads = list(head_classes)
        if len(set(heads)) != len(heads) or "clean" in heads or not set(heads) <= set(names):
            raise ValueError(f"head_classes must be distinct classes of {names} other than 'clean', got {heads}")
        expert_classes = dict(experts or {})
        for name, vocabulary in expert_classes.items():
            if name == "clean" or name not in names or name in heads or name not in vocabulary:
                raise ValueError(f"expert {name!r} must be a class of {names} other than 'clean' without a head, "
                                 f"and one of its own classes {list(vocabulary)}")
        self.config = config
        self.class_names = names
        self.head_classes = heads
        self.expert_classes = {name: list(vocabulary) for name, vocabulary in expert_classes.items()}
        self.stem = (nn.Sequential(nn.Conv2d(3, config.width, 3, padding=1), nn.GELU()) if config.stem == "full"
                     else nn.Sequential(SpaceToDepth(), nn.Conv2d(12, config.width, 3, padding=1), nn.GELU()))
        channels = config.width
        stages: list[nn.Module] = []
        pooled = 2 * channels
        for i in range(config.depth):
            out = config.width * min(2**i, config.max_width_multiplier)
            stages.append(nn.Sequential(
                nn.Conv2d(channels, out, 3, stride=2, padding=1),
                nn.GELU(),
                nn.Conv2d(out, out, 3, padding=1),
                nn.GELU(),
            ))
            channels = out
            pooled += 2 * out
        self.stages = nn.ModuleList(stages)
        # Mean and standard deviation pooling of EVERY stage (stem included): the spread of early
        # activations carries noise/texture/JPEG statistics that deep features wash out. No
        # normalisation layers: absolute brightness (low light) and contrast (haze) are evidence.
        # The statistics are standardised by a BatchNorm (their natural scales differ by orders of magnitude).
        self.statistics_norm = nn.BatchNorm1d(NUM_STATISTICS) if config.statistics else None
        features = pooled + (NUM_STATISTICS if config.statistics else 0)
        classified = [n for n in names if n not in heads and n not in expert_classes]
        self.classifier = _scorer(features, config.hidden, len(classified))
        self.heads = nn.ModuleDict({name: _scorer(features, config.hidden, 1) for name in heads})
        self.experts = nn.ModuleDict({name: DegradationEstimator(config, vocabulary)
                                      for name, vocabulary in self.expert_classes.items()})
        scored = classified + heads + list(expert_classes)  # the concatenation's order; class_names' is restored
        self.register_buffer("class_order", torch.tensor([scored.index(n) for n in names]), persistent=False)
        # Variance-preserving init: without normalisation layers PyTorch's default conv init shrinks the
        # signal at every layer, and the deep features (and their gradients) all but vanish.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
                nn.init.zeros_(module.bias)

    @property
    def output_layer(self) -> nn.Linear:
        """The classifier's last linear layer (its bias alone sets those logits when its weight is zero)."""
        return self.classifier[-1] if isinstance(self.classifier, nn.Sequential) else self.classifier

    @property
    def classifier_classes(self) -> list[str]:
        """The classes the classifier scores (every class without a head or an expert), in its row order."""
        return [n for n in self.class_names if n not in self.head_classes and n not in self.expert_classes]

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Pooled features (N, F) the classifier and the heads read."""
        f = self.stem(x - 0.5)
        stats = list(spatial_std_mean(f))
        for stage in self.stages:
            f = stage(f)
            stats.extend(spatial_std_mean(f))
        if self.statistics_norm is not None:
            stats.append(self.statistics_norm(degradation_statistics(x)))
        return torch.cat(stats, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits (N, K) for images or crops x (N, 3, H, W) in [0, 1], at their native resolution."""
        f = self.features(x)
        logits = self.classifier(f)
        if not self.heads and not self.experts:
            return logits
        logits = torch.cat([logits, *(head(f) for head in self.heads.values())], dim=1)
        for name, expert in self.experts.items():  # each expert gates everything scored before it
            own = expert(x)
            index = expert.class_names.index(name)
            others = torch.cat([own[:, :index], own[:, index + 1:]], dim=1)
            log_odds = own[:, index] - torch.logsumexp(others, dim=1)  # log q / (1 - q) of the expert's softmax
            logits = torch.cat([logits, (torch.logsumexp(logits, dim=1) + log_odds).unsqueeze(1)], dim=1)
        return logits[:, self.class_order]

    def _crops(self, x: torch.Tensor, generator: torch.Generator | None, count: int | None = None) -> torch.Tensor:
        """``count`` (default ``num_crops``) native crops of each image, flattened to (N * count, 3, crop, crop)."""
        crops = native_crops(x, self.config.crop_size, count or self.config.num_crops, generator)
        return crops.reshape(-1, *crops.shape[2:])

    def _mean_logits(self, crops: torch.Tensor, n: int) -> torch.Tensor:
        """Logits (n, K) averaged over each image's crops and over their ``config.tta`` views."""
        logits = self(crop_views(crops, self.config.tta))  # (views * n * count, K), view-major
        return logits.reshape(-1, n, crops.shape[0] // n, logits.shape[-1]).mean(dim=(0, 2))

    def predict_logits(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Logits (N, K) averaged over ``num_crops`` native crops of each full image."""
        return self._mean_logits(self._crops(x, generator), x.shape[0])

    def predict_proba(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Class probabilities (N, K) for full images x (N, 3, H, W); deterministic without a generator.

        With ``config.plausibility.enabled`` the probability of each physically implausible class moves to
        ``clean`` (the gates read the same crops the classifier sees), except an expert's class (with
        ``plausibility.expert_veto: base``, the default): that one is conditioned out, which restores exactly the
        decision of the estimator the expert was added to (the expert's gate keeps the earlier classes' ratios),
        so a vetoed claim leaves an old task as it was.
        """
        return self.predict_proba_gated(x, generator).probabilities

    def predict_proba_gated(
        self, x: torch.Tensor, generator: torch.Generator | None = None, num_crops: int | None = None
    ) -> GatedProbabilities:
        """:meth:`predict_proba`, the probability (N, K) each class lost to the gates (0 where none did) and
        the probabilities before the gates, so a caller can report when physics overruled the estimator.

        ``num_crops`` replaces the stored crop count for this call: the stored 4 crops are the corners of the
        image, which cover a training patch but only the borders of a whole photo (its background: out of focus,
        sky, vignetting); production reads a denser grid (``RestoreSettings.estimator_crops``).
        """
        crops = self._crops(x, generator, num_crops)
        raw = self._mean_logits(crops, x.shape[0]).softmax(dim=-1)
        mask = implausible_classes(crops, x.shape[0], self.class_names, self.config.plausibility)
        # expert_veto 'base': an expert's vetoed claim is conditioned out (its gate undone); 'clean': gated like any
        by_base = self.config.plausibility.expert_veto == "base"
        experts = torch.tensor([by_base and n in self.expert_classes for n in self.class_names], device=mask.device)
        kept = condition_out(raw, mask & experts)
        gated = apply_plausibility(kept, mask & ~experts, self.config.plausibility.gated_mass)
        return GatedProbabilities(gated, raw.masked_fill(~mask, 0.0), raw)
