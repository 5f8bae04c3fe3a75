"""Turn one clean photo into training patches: composites, single and sequential degradations, clean, mild.

*Mild* patches carry a degradation drawn below the training range of its type (``mild_specs``, by default
the ranges of ``configs/degradations/mild.yaml``: JPEG quality >= 75, noise sigma <= 5, ...). They are
labelled ``clean`` (label map 0, estimator class ``clean``) and their restoration target is the true clean
crop: the estimator learns that a lightly compressed or slightly soft photo needs no adapter (the
identity path), while the backbone, which sees them in Phase I, learns to correct them gently rather
than over-process them. See docs/DO_NO_HARM.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import Field, field_validator

from abair_core.config import StrictConfig, load_yaml
from abair_core.data.patches import PatchSet, to_uint8
from abair_core.degradations.base import Degradation
from abair_core.degradations.composite import CompositeConfig, apply_sequence, compose_regions
from abair_core.degradations.registry import build_degradation
from abair_core.io.image_codec import luma

#: The built-in mild ranges; ``configs/degradations/mild.yaml`` holds the same values (a test keeps them equal).
DEFAULT_MILD_SPECS: tuple[dict[str, Any], ...] = (
    {"type": "noise", "sigma": [0.5, 6.0]},
    {"type": "jpeg", "quality": [75, 95]},
    {"type": "blur", "kind": "gaussian", "sigma": [0.3, 0.6]},
    {"type": "haze", "t_mean": [0.9, 0.98], "airlight": [0.7, 1.0]},
    {"type": "low_light", "exposure": [0.85, 1.0], "gamma": [1.0, 1.1], "photons": [5000, 20000],
     "read_noise": [0.0, 1.0]},
)


class PatchCounts(StrictConfig):
    """How many patches of each kind one source photo yields."""

    composite: int = Field(24, ge=0, description="region-mixed composites (Phase I)")
    single: int = Field(6, ge=0, description="per degradation: one whole-patch degradation (Phases II and III)")
    sequence: int = Field(4, ge=0, description="two degradations applied in turn (Phase III mixed)")
    clean: int = Field(4, ge=0, description="undegraded patches (identity samples, estimator class clean)")
    mild: int = Field(0, ge=0, description="patches with a mild degradation (mild_specs), labelled clean; "
                      "target = the true clean crop. 0 keeps the pre-do-no-harm recipe")


class SynthesisConfig(StrictConfig):
    """Patch synthesis: crop size, counts per photo and the CutMix composite settings."""

    patch_size: int = Field(96, ge=16)
    counts: PatchCounts = PatchCounts()
    composite: CompositeConfig = CompositeConfig()
    greyscale_fraction: float = Field(
        0.0, ge=0, le=1, description="share of source crops turned black-and-white before they are degraded "
        "(archives hold greyscale photos with colour sensor or scan noise); 0 keeps the colour-only recipe"
    )
    mild_specs: list[dict[str, Any]] = Field(
        default_factory=lambda: [dict(s) for s in DEFAULT_MILD_SPECS],
        description="degradation specs of the mild patches (ranges below the training ranges), or the path "
                    "of a spec file (e.g. configs/degradations/mild.yaml) read once and inlined, so the "
                    "dataset's recipe hash covers the values",
    )
    seed: int = 0

    @field_validator("mild_specs", mode="before")
    @classmethod
    def _read_spec_file(cls, value: Any) -> Any:
        """A path to a spec file becomes its ``degradations:`` list."""
        if isinstance(value, (str, Path)):
            data = load_yaml(value)
            if not isinstance(data, dict) or not isinstance(data.get("degradations"), list):
                # a ValueError, not a TypeError: pydantic turns only ValueErrors into validation errors
                raise ValueError(f"{value}: a mild spec file needs a 'degradations:' list")  # noqa: TRY004
            return data["degradations"]
        return value

    @field_validator("mild_specs", mode="after")
    @classmethod
    def _check_specs(cls, value: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Every spec builds (known type, parameters in range); one spec per type."""
        try:
            names = [build_degradation(dict(spec), source="mild_specs", key=f"mild_specs.{i}").name
                     for i, spec in enumerate(value)]
        except KeyError as exc:  # an unknown type: pydantic reports only ValueErrors as validation errors
            raise ValueError(exc.args[0] if exc.args else str(exc)) from None
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"mild degradation(s) {twice} listed twice")
        return value


def build_mild_degradations(config: SynthesisConfig) -> dict[str, Degradation]:
    """The mild degradations of ``config``, keyed by type, in the configured order."""
    built = [build_degradation(dict(spec), source="mild_specs", key=f"mild_specs.{i}")
             for i, spec in enumerate(config.mild_specs)]
    return {d.name: d for d in built}


def _mild_side(mild: Any, train: Any, stronger: str) -> bool:
    """Whether every value of ``mild`` is at most as strong as the mildest value of ``train``."""
    if stronger not in ("higher", "lower") or isinstance(mild, str) or isinstance(train, str):
        return False
    m = mild if isinstance(mild, tuple) else (mild, mild)
    t = train if isinstance(train, tuple) else (train, train)
    return max(m) <= min(t) if stronger == "higher" else min(m) >= max(t)


def check_mild_below_training(mild: Mapping[str, Degradation], training: Mapping[str, Degradation]) -> None:
    """Refuse a mild range that could draw the same degradation as the training range of its type.

    For each type in both, at least one strength knob (a parameter with a ``stronger`` direction) must
    lie entirely on the mild side of the training range (touching at the boundary is allowed: noise
    sigma <= 5 against a training range from 5), otherwise one draw could be labelled both ``clean``
    and degraded. Raises ``ValueError`` naming the type and its knobs.
    """
    for name, mild_deg in mild.items():
        train_deg = training.get(name)
        if train_deg is None:
            continue
        fields = type(mild_deg.params).model_fields
        knobs = {}
        for field_name, info in fields.items():
            extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
            stronger = str(extra.get("stronger", "none"))
            if stronger in ("higher", "lower"):
                knobs[field_name] = _mild_side(getattr(mild_deg.params, field_name),
                                               getattr(train_deg.params, field_name), stronger)
        if knobs and not any(knobs.values()):
            raise ValueError(
                f"mild '{name}' overlaps its training range: none of {sorted(knobs)} lies entirely on the mild "
                f"side (mild {mild_deg.params.model_dump()} vs training {train_deg.params.model_dump()})"
            )


def source_seed(base_seed: int, source_key: str) -> int:
    """A stable per-source seed: the same photo gets the same patches whatever else is in the pool."""
    digest = hashlib.sha256(f"{base_seed}:{source_key}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def to_greyscale(image: np.ndarray) -> np.ndarray:
    """HWC RGB float -> its Rec. 601 luma in all three channels (a black-and-white photo)."""
    return np.repeat(luma(image)[..., None], 3, axis=2).astype(image.dtype)


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
    partners: Mapping[str, Degradation] | None = None,
) -> PatchSet:
    """All patches of one photo, deterministic for (config.seed, source_key).

    ``degradations`` maps degradation id -> built degradation (the training ranges); ``label_names`` is
    the segmentation vocabulary with ``clean`` first. Sequences use two distinct degradations; with
    ``partners`` (degradations that get no patches of their own), each sequence pairs one of
    ``degradations`` with one partner in random order (a new type mixed with the old ones). Mild
    patches (``config.counts.mild``) take the mild types in turn from a random start, are drawn last (so
    the other patches do not depend on them) and are labelled clean; their kind is ``mild`` and their
    name the mild degradation's type.
    """
    if label_names[0] != "clean":
        raise ValueError(f"label_names must start with 'clean', got {list(label_names)}")
    partners = dict(partners or {})
    unknown = [n for n in [*degradations, *partners] if n not in label_names]
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
                        "params": params, **({"greyscale": True} if grey[0] else {})})

    label_index = {n: i for i, n in enumerate(label_names)}
    grey = [False]  # whether the last crop was turned black-and-white (recorded by add() in its lineage)

    def crop() -> tuple[np.ndarray, list[int]]:
        clean, box = random_crop(photo, size, rng)
        grey[0] = bool(config.greyscale_fraction) and bool(rng.random() < config.greyscale_fraction)
        return (to_greyscale(clean) if grey[0] else clean), box

    for _ in range(config.counts.composite):
        clean, box = crop()
        result = compose_regions(clean, degradations, label_names, rng, config.composite)
        add("composite", "composite", clean, result.image, result.labels, box, result.params)
    for name in ids:
        for _ in range(config.counts.single):
            clean, box = crop()
            result = degradations[name].apply(clean, rng)
            labels = np.full((size, size), label_index[name], dtype=np.uint8)
            add("single", name, clean, result.image, labels, box, result.params)
    every = {**degradations, **partners}
    partner_ids = list(partners)

    def draw_pair() -> list[str]:
        """Two distinct ids in order: one own and one partner (either order) when partners are given."""
        if not partner_ids:
            return [ids[i] for i in rng.choice(len(ids), size=2, replace=False)]
        pair = [ids[int(rng.integers(len(ids)))], partner_ids[int(rng.integers(len(partner_ids)))]]
        return pair[::-1] if rng.random() < 0.5 else pair

    if (partner_ids and ids) or len(ids) >= 2:
        for _ in range(config.counts.sequence):
            clean, box = crop()
            pair = draw_pair()
            result = apply_sequence(clean, [every[n] for n in pair], rng)
            labels = np.full((size, size), label_index[pair[-1]], dtype=np.uint8)
            add("sequence", "+".join(pair), clean, result.image, labels, box, result.params)
    for _ in range(config.counts.clean):
        clean, box = crop()
        add("clean", "clean", clean, clean, np.zeros((size, size), np.uint8), box, {})
    if config.counts.mild:
        mild = build_mild_degradations(config)
        if not mild:
            raise ValueError("synthesis.counts.mild > 0 needs at least one entry in synthesis.mild_specs")
        check_mild_below_training(mild, every)
        mild_ids = list(mild)
        start = int(rng.integers(len(mild_ids)))
        for i in range(config.counts.mild):
            name = mild_ids[(start + i) % len(mild_ids)]
            clean, box = crop()
            result = mild[name].apply(clean, rng)
            add("mild", name, clean, result.image, np.zeros((size, size), np.uint8), box, result.params)

    empty = np.zeros((0, size, size, 3), np.uint8)
    return PatchSet(
        degraded=np.stack(out_degraded) if out_degraded else empty,
        clean=np.stack(out_clean) if out_clean else empty,
        labels=np.stack(out_labels) if out_labels else np.zeros((0, size, size), np.uint8),
        kinds=kinds, names=names, label_names=list(label_names), lineage=lineage,
    )
