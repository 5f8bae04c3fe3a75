"""A set of training patches held in memory: degraded/clean pairs, label maps and their lineage."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

PATCH_KINDS = ("composite", "single", "sequence", "clean", "mild")
#: Kinds whose estimator class is ``clean``: undegraded and mildly degraded patches (labels all 0).
CLEAN_CLASS_KINDS = ("clean", "mild")


@dataclass
class PatchSet:
    """Patches of one shard or of many concatenated shards.

    ``degraded`` and ``clean`` are uint8 (N, P, P, 3) (8-bit, like the images they stand for), ``labels``
    uint8 (N, P, P) indices into ``label_names`` (0 = clean). ``kinds[i]`` is one of :data:`PATCH_KINDS`;
    ``names[i]`` is the degradation id (single), ``a+b`` (sequence), ``composite``, ``clean``, or for a
    ``mild`` patch the type of its mild degradation (its class is still ``clean``: see
    :func:`estimator_class`; its ``clean`` image is the true clean crop, the restoration target).
    ``lineage[i]`` records source key, crop box, seed and every drawn parameter.
    """

    degraded: np.ndarray
    clean: np.ndarray
    labels: np.ndarray
    kinds: list[str]
    names: list[str]
    label_names: list[str]
    lineage: list[dict[str, Any]] = field(default_factory=list)

    def __len__(self) -> int:
        return int(self.degraded.shape[0])

    def indices(self, kinds: tuple[str, ...], names: tuple[str, ...] | None = None) -> np.ndarray:
        """Indices of patches of the given kinds (and, when given, names)."""
        keep = [
            i for i, (k, n) in enumerate(zip(self.kinds, self.names))
            if k in kinds and (names is None or n in names)
        ]
        return np.asarray(keep, dtype=np.int64)

    @staticmethod
    def concatenate(sets: list[PatchSet]) -> PatchSet:
        """Join patch sets that share one label vocabulary and patch size."""
        sets = [s for s in sets if len(s)]
        if not sets:
            raise ValueError("no patches to concatenate: every shard is empty")
        label_names = sets[0].label_names
        for s in sets[1:]:
            if s.label_names != label_names:
                raise ValueError(f"shards disagree on label names: {s.label_names} vs {label_names}")
        return PatchSet(
            degraded=np.concatenate([s.degraded for s in sets]),
            clean=np.concatenate([s.clean for s in sets]),
            labels=np.concatenate([s.labels for s in sets]),
            kinds=[k for s in sets for k in s.kinds],
            names=[n for s in sets for n in s.names],
            label_names=list(label_names),
            lineage=[r for s in sets for r in s.lineage],
        )


def estimator_class(kind: str, name: str) -> list[str]:
    """The estimator classes of one patch: ``["clean"]`` for clean and mild patches, else the parts of ``name``."""
    return ["clean"] if kind in CLEAN_CLASS_KINDS else name.split("+")


def to_uint8(image: np.ndarray) -> np.ndarray:
    """Float [0, 1] -> uint8 with rounding (the storage format of patches)."""
    return np.clip(np.rint(image * 255.0), 0, 255).astype(np.uint8)
