"""Load the photos of a benchmark from any URI prefix (folder, s3://, …) as float32 RGB arrays."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import PurePosixPath
from typing import Any

import numpy as np

from abair_core.io.image_codec import decode_image
from abair_core.io.storage import list_files, read_bytes

__all__ = ["IMAGE_SUFFIXES", "load_images", "load_pairs"]

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"})


def load_images(
    uri: str,
    include: str = "**/*",
    files: Sequence[str] | None = None,
    max_images: int | None = None,
    max_pixels: int = 50_000_000,
    storage_options: Mapping[str, Any] | None = None,
) -> dict[str, np.ndarray]:
    """Key -> HWC float32 RGB of every image under ``uri`` (sorted keys); non-image files are ignored.

    ``files`` pins a listed split: exactly those keys, in that order, and a missing one is an error.
    """
    listed = {info.key: info.uri for info in list_files(uri, include, storage_options)
              if PurePosixPath(info.key).suffix.lower() in IMAGE_SUFFIXES}
    if files is not None:
        missing = [f for f in files if f not in listed]
        if missing:
            raise FileNotFoundError(f"{uri}: listed benchmark images are missing: {', '.join(missing)}")
        keys = list(files)
    else:
        keys = sorted(listed)
    if max_images is not None:
        keys = keys[:max_images]
    if not keys:
        raise FileNotFoundError(f"{uri}: no images (include={include!r})")
    return {key: decode_image(read_bytes(listed[key], storage_options), max_pixels).rgb for key in keys}


def load_pairs(
    degraded_uri: str,
    clean_uri: str,
    include: str = "**/*",
    max_images: int | None = None,
    max_pixels: int = 50_000_000,
    storage_options: Mapping[str, Any] | None = None,
) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(name, degraded, clean) for every degraded image with a clean image of the same name (any extension).

    Names are keys without their extension, so ``rain-001.jpg`` pairs with ``rain-001.png``. A degraded
    image without a clean partner is an error (a silently smaller benchmark is a wrong benchmark).
    """
    def by_stem(uri: str) -> dict[str, str]:
        return {str(PurePosixPath(info.key).with_suffix("")): info.uri
                for info in list_files(uri, include, storage_options)
                if PurePosixPath(info.key).suffix.lower() in IMAGE_SUFFIXES}

    degraded, clean = by_stem(degraded_uri), by_stem(clean_uri)
    unmatched = sorted(set(degraded) - set(clean))
    if unmatched:
        raise FileNotFoundError(f"{clean_uri}: no clean image for {', '.join(unmatched[:10])}")
    names = sorted(degraded)[:max_images] if max_images else sorted(degraded)
    if not names:
        raise FileNotFoundError(f"{degraded_uri}: no images (include={include!r})")
    pairs = []
    for name in names:
        d = decode_image(read_bytes(degraded[name], storage_options), max_pixels).rgb
        c = decode_image(read_bytes(clean[name], storage_options), max_pixels).rgb
        if d.shape != c.shape:
            raise ValueError(f"{name}: degraded {d.shape} and clean {c.shape} differ in size")
        pairs.append((name, d, c))
    return pairs
