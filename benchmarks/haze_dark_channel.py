"""Where the haze gate's bar could sit: the darkest estimator crop's mean dark channel, clean against hazed.

Usage: ``python benchmarks/haze_dark_channel.py --photos DIR [--crops 3] [--no-write]``

For random 128 px crops of every photo in DIR: the statistic the optional haze gate reads
(``abair_core.models.plausibility``: the smallest, over the estimator's four 64 px crops, of the mean dark
channel) on the clean crop and on the same crop hazed at the training range's weak corner, the whole training
range, the benchmark's ``haze`` task and the mild ``haze_t09``. Prints quantiles and the share of each set
under a few bars; rewrites the docs/BENCHMARKS.md section "Haze gate: dark channel".
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import torch
from doc_sections import ROOT, update_section

from abair_core.degradations.registry import build_degradation
from abair_core.evaluation.images import load_images
from abair_core.models.estimator import native_crops
from abair_core.models.image_statistics import STATISTIC_NAMES, degradation_statistics

DARK = STATISTIC_NAMES.index("dark_channel")
HAZE = {
    "clean": None,
    "training range (t 0.3-0.8, A 0.7-1)": {"type": "haze", "t_mean": [0.3, 0.8], "airlight": [0.7, 1.0]},
    "weakest training haze (t 0.8, A 0.7)": {"type": "haze", "t_mean": 0.8, "airlight": 0.7},
    "benchmark haze (t 0.5, A 0.85)": {"type": "haze", "t_mean": 0.5, "airlight": 0.85},
    "mild haze_t09 (class clean)": {"type": "haze", "t_mean": 0.9, "airlight": 0.85},
}
BARS = (0.05, 0.1, 0.12)
QUANTILES = (0.0, 0.01, 0.05, 0.5)


def crop_statistics(image: np.ndarray) -> torch.Tensor:
    """The estimator's statistics (crops x statistics) of one HWC image in [0, 1], four 64 px crops as it cuts them."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return degradation_statistics(native_crops(x, 64, 4).reshape(-1, 3, 64, 64))


def darkest_crop_dark_channel(image: np.ndarray) -> float:
    """The haze gate's statistic for one HWC image in [0, 1]: the smallest mean dark channel of the crops."""
    return float(crop_statistics(image)[:, DARK].min())


def measure(photos: dict[str, np.ndarray], crops: int, size: int = 128,
            specs: dict[str, dict | None] | None = None,
            statistic: Callable[[np.ndarray], float] = darkest_crop_dark_channel) -> dict[str, list[float]]:
    """``statistic`` of random crops of every photo, clean (spec None) and degraded by each of ``specs``.

    Every spec degrades the same crop with the same seed, so the sets are paired crop by crop.
    """
    specs = HAZE if specs is None else specs
    rng = np.random.default_rng(0)
    values: dict[str, list[float]] = {name: [] for name in specs}
    for photo in photos.values():
        h, w = photo.shape[:2]
        for _ in range(crops):
            y, x = int(rng.integers(0, h - size + 1)), int(rng.integers(0, w - size + 1))
            crop = photo[y:y + size, x:x + size]
            seed = int(rng.integers(1 << 31))
            for name, spec in specs.items():
                out = crop if spec is None else build_degradation(spec).apply(crop, np.random.default_rng(seed)).image
                values[name].append(statistic(np.round(np.clip(out, 0, 1) * 255) / 255))
    return values


def table(values: dict[str, list[float]], bars: tuple[float, ...] = BARS,
          quantiles: tuple[float, ...] = QUANTILES, above: bool = False) -> str:
    """Markdown: per set, its quantiles and the share of crops under (``above``: over) each bar."""
    sign = ">" if above else "<"
    head = ["crops", "n", *(f"q{q:g}" for q in quantiles), *(f"share {sign} {b:g}" for b in bars)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, v in values.items():
        a = np.asarray(v)
        cells = [name, str(a.size), *(f"{np.quantile(a, q):.3f}" for q in quantiles),
                 *(f"{((a > b) if above else (a < b)).mean():.0%}" for b in bars)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def crop_study(description: str, argv: list[str] | None = None) -> tuple[argparse.Namespace, dict[str, np.ndarray]]:
    """The flags every crop-statistics script shares (--photos, --crops, --no-write) and the photos they name."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--photos", required=True, help="folder of clean photos (e.g. the 74-photo pool)")
    parser.add_argument("--crops", type=int, default=3, help="random 128 px crops per photo")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    return args, load_images(Path(args.photos).resolve().as_uri())


def publish(section: str, body: str, no_write: bool) -> None:
    """Print the section and, unless ``no_write``, rewrite it in docs/BENCHMARKS.md."""
    print(body)
    if not no_write:
        update_section(ROOT / "docs" / "BENCHMARKS.md", section, body)


def main(argv: list[str] | None = None) -> int:
    args, photos = crop_study(__doc__.splitlines()[0], argv)
    values = measure(photos, args.crops)
    body = "\n".join([
        (f"{len(photos)} photos x {args.crops} random 128 px crops; statistic: the smallest mean dark channel of the "
         f"estimator's four 64 px crops (what `haze_min_dark_channel` compares). Command: `python "
         f"benchmarks/haze_dark_channel.py --photos PHOTOS --crops {args.crops}`, {dt.date.today()}."),
        "", table(values), ""])
    publish("Haze gate: dark channel", body, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
