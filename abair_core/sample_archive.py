"""A small degraded "archive" made from held-out photos, and the before/after report of its restoration.

The demo restores this archive with the real pipeline and then, because it knows the clean originals,
prints PSNR before and after per image and writes one side-by-side PNG a person can look at.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from abair_core.data.patches import to_uint8
from abair_core.degradations.registry import build_degradation
from abair_core.io.image_codec import decode_image
from abair_core.io.storage import atomic_write_bytes, join_uri, read_bytes
from abair_core.metrics import psnr, ssim


@dataclass(frozen=True)
class ArchiveItem:
    """One image of the sample archive: its key, the clean photo it came from and what degraded it."""

    key: str
    photo: str
    degradation: Mapping[str, Any] | None  # a degradation spec, or None for an untouched clean photo


def write_sample_archive(photos: Mapping[str, np.ndarray], items: Sequence[ArchiveItem], archive_uri: str,
                         reference_uri: str, seed: int = 0) -> None:
    """Write each item's degraded PNG under ``archive_uri`` and its clean reference under ``reference_uri``."""
    for index, item in enumerate(items):
        clean = photos[item.photo]
        degraded = clean
        if item.degradation is not None:
            degraded = build_degradation(dict(item.degradation)).apply(clean, np.random.default_rng([seed, index])).image
        atomic_write_bytes(join_uri(archive_uri, item.key), _png(degraded))
        atomic_write_bytes(join_uri(reference_uri, item.key), _png(clean))


def compare_restoration(items: Sequence[ArchiveItem], archive_uri: str, restored_uri: str,
                        reference_uri: str) -> list[dict[str, Any]]:
    """PSNR/SSIM of the archive image and of its restoration, both against the clean reference."""
    rows = []
    for item in items:
        clean = decode_image(read_bytes(join_uri(reference_uri, item.key))).rgb
        before = decode_image(read_bytes(join_uri(archive_uri, item.key))).rgb
        after = decode_image(read_bytes(join_uri(restored_uri, item.key))).rgb
        rows.append({
            "key": item.key,
            "degradation": "clean" if item.degradation is None else _describe(item.degradation),
            "psnr_before": psnr(clean, before), "psnr_after": psnr(clean, after),
            "ssim_before": ssim(clean, before), "ssim_after": ssim(clean, after),
        })
    return rows


def render_comparison_markdown(rows: Sequence[Mapping[str, Any]]) -> str:
    """A Markdown table of :func:`compare_restoration` rows with the mean gain."""
    lines = ["| image | degradation | PSNR before | PSNR after | gain (dB) | SSIM before | SSIM after |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['key']} | {r['degradation']} | {_db(r['psnr_before'])} | {_db(r['psnr_after'])} | "
                     f"{_gain(r)} | {r['ssim_before']:.4f} | {r['ssim_after']:.4f} |")
    finite = [r for r in rows if np.isfinite(r["psnr_before"]) and np.isfinite(r["psnr_after"])]
    if finite:
        mean_gain = float(np.mean([r["psnr_after"] - r["psnr_before"] for r in finite]))
        lines.append(f"| **mean of degraded** | | | | **{mean_gain:+.2f}** | | |")
    return "\n".join(lines)


def side_by_side_png(items: Sequence[ArchiveItem], archive_uri: str, restored_uri: str, reference_uri: str,
                     height: int = 192) -> bytes:
    """One PNG: a row per image with degraded | restored | clean, scaled to ``height`` pixels."""
    rows = []
    for item in items:
        tiles = []
        for label, prefix in (("input", archive_uri), ("restored", restored_uri), ("clean", reference_uri)):
            image = Image.open(io.BytesIO(read_bytes(join_uri(prefix, item.key)))).convert("RGB")
            width = max(1, round(image.width * height / image.height))
            tile = image.resize((width, height), Image.Resampling.LANCZOS)
            ImageDraw.Draw(tile).text((4, 4), f"{label}: {item.key}", fill=(255, 255, 0))
            tiles.append(tile)
        row = Image.new("RGB", (sum(t.width for t in tiles) + 8 * (len(tiles) - 1), height), (255, 255, 255))
        x = 0
        for tile in tiles:
            row.paste(tile, (x, 0))
            x += tile.width + 8
        rows.append(row)
    sheet = Image.new("RGB", (max(r.width for r in rows), sum(r.height + 8 for r in rows)), (255, 255, 255))
    y = 0
    for row in rows:
        sheet.paste(row, (0, y))
        y += row.height + 8
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return buffer.getvalue()


def _png(image: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(to_uint8(image)).save(buffer, format="PNG")
    return buffer.getvalue()


def _describe(spec: Mapping[str, Any]) -> str:
    params = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "type")
    return f"{spec['type']} ({params})" if params else str(spec["type"])


def _db(value: float) -> str:
    return "inf" if not np.isfinite(value) else f"{value:.2f}"


def _gain(row: Mapping[str, Any]) -> str:
    if not (np.isfinite(row["psnr_before"]) and np.isfinite(row["psnr_after"])):
        return "n/a"
    return f"{row['psnr_after'] - row['psnr_before']:+.2f}"
