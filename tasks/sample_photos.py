"""The real photos bundled with scikit-image, exported as a photo folder the pipeline reads by URI.

``samples://train`` and ``samples://holdout`` are fixed, disjoint lists: no training step ever sees a
held-out photo, so demo evaluations and restore samples are honest. The stereo motorcycle pair is
kept together in the training split (its two views show the same scene).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from typing import Any

import numpy as np
from PIL import Image

from abair_core.io.storage import atomic_write_bytes, exists, join_uri

SAMPLES_SCHEME = "samples://"
TRAIN_SAMPLES = ("rocket", "hubble_deep_field", "immunohistochemistry", "retina", "motorcycle_left",
                 "motorcycle_right", "brick", "grass", "gravel", "moon", "coins", "cell", "clock")
HOLDOUT_SAMPLES = ("astronaut", "chelsea", "coffee", "camera")
SPLITS = {"train": TRAIN_SAMPLES, "holdout": HOLDOUT_SAMPLES}


def load_sample(name: str) -> np.ndarray:
    """One bundled photo as uint8 HWC RGB (grey photos replicated to three channels)."""
    from skimage import data

    if name.startswith("motorcycle_"):
        left, right, _ = data.stereo_motorcycle()
        image = left if name.endswith("left") else right
    else:
        image = getattr(data, name)()
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def export_samples(split: str, dst_prefix: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """Write the photos of ``split`` as PNGs under ``dst_prefix`` (skipping ones already there)."""
    if split not in SPLITS:
        raise ValueError(f"unknown sample split {split!r} (allowed: {', '.join(SPLITS)})")
    for name in SPLITS[split]:
        uri = join_uri(dst_prefix, f"{name}.png")
        if exists(uri, storage_options):
            continue
        buffer = io.BytesIO()
        Image.fromarray(load_sample(name)).save(buffer, format="PNG")
        atomic_write_bytes(uri, buffer.getvalue(), storage_options)
    return dst_prefix


def resolve_photo_source(source: str, work_root: str, storage_options: Mapping[str, Any] | None = None) -> str:
    """A URI prefix of photos: ``samples://<split>`` is exported under the work root, others pass through."""
    if not source.startswith(SAMPLES_SCHEME):
        return source
    split = source[len(SAMPLES_SCHEME):].strip("/")
    return export_samples(split, join_uri(work_root, f"samples/{split}"), storage_options)
