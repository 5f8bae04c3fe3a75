"""Turn one clean photo into training patches: composites, single and sequential degradations, clean."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from pydantic import Field

from abair_core.config import StrictConfig
from abair_core.data.patches import PatchSet, to_uint8
from abair_core.degradations.base import Degradation
from abair_core.degradations.composite import CompositeConfig, apply_sequence, compose_regions


class PatchCounts(StrictConfig):
    """How many patches of each kind one source photo yields."""

    composite: int = Field(24, ge=0, description="region-mixed composites (Phase I)")
    single: int = Field(6, ge=0, description="per degradation: one whole-patch degradation (Phases II and III)")
    sequence: int = Field(4, ge=0, description="two degradations applied in turn (Phase III mixed)")
    clean: int = Field(4, ge=0, description="undegraded patches (identity samples, estimator class clean)")


class SynthesisConfig(StrictConfig):
    """Patch synthesis: crop size, counts per photo and the CutMix composite settings."""

    patch_size: int = Field(96, ge=16)
    counts: PatchCounts = PatchCounts()
    composite: CompositeConfig = CompositeConfig()
    seed: int = 0


def source_seed(base_seed: int, source_key: str) -> int:
    """A stable per-source seed: the same photo gets the same patches whatever else is in the pool."""
    digest = hashlib.sha256(f"{base_seed}:{source_key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def random_crop(photo: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, list[int]]:
    """A random ``size`` square crop (reflect-padded when the photo is smaller) and its box [y, x, h, w]."""
    h, w = photo.shape[:2]
    if h < size or w < size:
        pad_h, pad_w = max(0, size - h), max(0, size - w)
        photo = np.pad(photo, ((0, pad_h), (0, pad_w), (0, 0)), mode="reflect")
        h, w = photo.shape[:2]
    y = int(rng.integers(0, h - size + 1))
    x = int(rng.integers(0, w - size + 1))
    return np.ascontiguousarray(photo[y:y + size, x:x + size]), [y, x, size, size]


def synthesize_patches(
    photo: np.ndarray,
    source_key: str,
    degradations: Mapping[str, Degradation],
    label_names: Sequence[str],
    config: SynthesisConfig,
) -> PatchSet:
    """All patches of one photo, deterministic for (config.seed, source_key).

    ``degradations`` maps degradation id -> built degradation (the training ranges); ``label_names`` is
    the segmentation vocabulary with ``clean`` first. Sequences use two distinct degradations.
    """
    if label_names[0] != "clean":
        raise ValueError(f"label_names must start with 'clean', got {list(label_names)}")
    unknown = [n for n in degradations if n not in label_names]
    if unknown:
        raise ValueError(f"degradations {unknown} are not in label_names {list(label_names)}")
    seed = source_seed(config.seed, source_key)
    rng = np.random.default_rng(seed)
    size = config.patch_size
    ids = list(degradations)
    out_degraded, out_clean, out_labels = [], [], []
    kinds: list[str] = []
    names: list[str] = []
    lineage: list[dict[str, Any]] = []

    def add(kind: str, name: str, clean: np.ndarray, degraded: np.ndarray, labels: np.ndarray,
            box: list[int], params: Any) -> None:
        out_clean.append(to_uint8(clean))
        out_degraded.append(to_uint8(degraded))
        out_labels.append(labels.astype(np.uint8))
        kinds.append(kind)
        names.append(name)
        lineage.append({"source_key": source_key, "seed": seed, "box": box, "kind": kind, "name": name,
                        "params": params})

    label_index = {n: i for i, n in enumerate(label_names)}
    for _ in range(config.counts.composite):
        clean, box = random_crop(photo, size, rng)
        result = compose_regions(clean, degradations, label_names, rng, config.composite)
        add("composite", "composite", clean, result.image, result.labels, box, result.params)
    for name in ids:
        for _ in range(config.counts.single):
            clean, box = random_crop(photo, size, rng)
            result = degradations[name].apply(clean, rng)
            labels = np.full((size, size), label_index[name], dtype=np.uint8)
            add("single", name, clean, result.image, labels, box, result.params)
    if len(ids) >= 2:
        for _ in range(config.counts.sequence):
            clean, box = random_crop(photo, size, rng)
            pair = [ids[i] for i in rng.choice(len(ids), size=2, replace=False)]
            result = apply_sequence(clean, [degradations[n] for n in pair], rng)
            labels = np.full((size, size), label_index[pair[-1]], dtype=np.uint8)
            add("sequence", "+".join(pair), clean, result.image, labels, box, result.params)
    for _ in range(config.counts.clean):
        clean, box = random_crop(photo, size, rng)
        add("clean", "clean", clean, clean, np.zeros((size, size), np.uint8), box, {})

    empty = np.zeros((0, size, size, 3), np.uint8)
    return PatchSet(
        degraded=np.stack(out_degraded) if out_degraded else empty,
        clean=np.stack(out_clean) if out_clean else empty,
        labels=np.stack(out_labels) if out_labels else np.zeros((0, size, size), np.uint8),
        kinds=kinds, names=names, label_names=list(label_names), lineage=lineage,
    )
