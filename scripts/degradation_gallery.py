"""Render docs/degradation_gallery.png: every degradation at low/mid/high strength plus a composite example.

Usage: python scripts/degradation_gallery.py [--config configs/degradations/train.yaml] [--out PATH] [--seed 0]

Strengths are the mildest end, the middle and the strongest end of each parameter range in the config
(see ``Degradation.at_strength``); blur gets one row per kind. The last row shows a region composite and
its colourised label map. The photo is a crop of scikit-image's bundled ``chelsea`` (fur texture, edges, smooth background).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from skimage import data

from abair_core.degradations import CLEAN, compose_regions, load_composite_config, load_degradation_specs

ROOT = Path(__file__).resolve().parent.parent
TILE = 160
LABEL_W = 150
HEADER_H = 24
LEVELS = (("low", 0.0), ("mid", 0.5), ("high", 1.0))
PALETTE = np.array(
    [
        [0, 0, 0],
        [31, 119, 180],
        [255, 127, 14],
        [44, 160, 44],
        [214, 39, 40],
        [148, 103, 189],
        [140, 86, 75],
        [227, 119, 194],
        [188, 189, 34],
        [23, 190, 207],
    ],
    dtype=np.uint8,
)


def photo_crop(size: int = TILE) -> np.ndarray:
    """A square float32 crop of scikit-image's chelsea (cat) photo."""
    img = data.chelsea()[0:300, 60 : 60 + 300]
    pil = Image.fromarray(img).resize((size, size), Image.Resampling.LANCZOS)
    return np.asarray(pil, dtype=np.float32) / 255.0


def to_pil(image: np.ndarray) -> Image.Image:
    return Image.fromarray(np.rint(np.clip(image, 0, 1) * 255).astype(np.uint8))


def describe(params: dict) -> str:
    """A short caption of the drawn parameters."""
    parts = []
    for k, v in params.items():
        if k in ("beta",):
            continue
        parts.append(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}")
    return " ".join(parts)


def build_rows(config: Path, seed: int) -> list[tuple[str, list[tuple[Image.Image, str]]]]:
    """Rows of (label, [(tile, caption), ...])."""
    clean = photo_crop()
    specs = load_degradation_specs(config)
    rows = []
    for name, degradation in specs.items():
        variants = [(name, {})]
        if name == "blur":
            variants = [("blur gaussian", {"kind": "gaussian"}), ("blur motion", {"kind": "motion"})]
        for label, overrides in variants:
            tiles = [(to_pil(clean), "clean")]
            for level_name, level in LEVELS:
                fixed = degradation.at_strength(level, **overrides)
                result = fixed.apply(clean, np.random.default_rng(seed))
                tiles.append((to_pil(result.image), f"{level_name}: {describe(result.params)}"))
            rows.append((label, tiles))
    label_names = [CLEAN, *specs]
    comp = compose_regions(
        clean, specs, label_names, np.random.default_rng(seed + 3), load_composite_config(config)
    )
    label_rgb = PALETTE[comp.labels % len(PALETTE)]
    legend = Image.new("RGB", (TILE, TILE), "white")
    draw = ImageDraw.Draw(legend)
    for i, name in enumerate(label_names):
        draw.rectangle(
            [6, 4 + i * 16, 18, 16 + i * 16], fill=tuple(int(c) for c in PALETTE[i % len(PALETTE)])
        )
        present = " *" if (comp.labels == i).any() else ""
        draw.text((24, 4 + i * 16), f"{i} {name}{present}", fill="black")
    types = ", ".join(r["type"] for r in comp.params)
    rows.append(
        (
            "composite",
            [
                (to_pil(clean), "clean"),
                (to_pil(comp.image), f"regions: {types}"),
                (Image.fromarray(label_rgb), "label map"),
                (legend, "legend (* present)"),
            ],
        )
    )
    return rows


def render(rows: list[tuple[str, list[tuple[Image.Image, str]]]]) -> Image.Image:
    """Lay the rows out on a grid with row labels, column headers and per-tile captions."""
    cols = max(len(tiles) for _, tiles in rows)
    cap_h = 14
    cell_h = TILE + cap_h
    sheet = Image.new("RGB", (LABEL_W + cols * (TILE + 4), HEADER_H + len(rows) * (cell_h + 6)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, head in enumerate(["clean", "low", "mid", "high"]):
        draw.text((LABEL_W + c * (TILE + 4) + 4, 6), head, fill="black")
    for r, (label, tiles) in enumerate(rows):
        y = HEADER_H + r * (cell_h + 6)
        draw.text((6, y + TILE // 2), label, fill="black")
        for c, (tile, caption) in enumerate(tiles):
            x = LABEL_W + c * (TILE + 4)
            sheet.paste(tile, (x, y))
            draw.text((x + 2, y + TILE + 1), caption[: TILE // 6], fill="black")
    return sheet


def main(argv: list[str] | None = None) -> Path:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=ROOT / "configs/degradations/train.yaml")
    parser.add_argument("--out", type=Path, default=ROOT / "docs/degradation_gallery.png")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    sheet = render(build_rows(args.config, args.seed))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(args.out, optimize=True)
    print(f"wrote {args.out} ({sheet.width}x{sheet.height})")
    return args.out


if __name__ == "__main__":
    main()
