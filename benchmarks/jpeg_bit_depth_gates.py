"""Where the jpeg and bit-depth gates' bars could sit: blockiness and level fill, clean against degraded.

Usage: ``python benchmarks/jpeg_bit_depth_gates.py --photos DIR [--crops 3] [--no-write]``

An estimator that knows ``jpeg`` and ``bit_depth`` (added with ``abair add-degradation``) reads some soft clean
photos as one of them (docs/DO_NO_HARM.md). Both have a signature a learned feature cannot argue away
(``abair_core.models.plausibility``):

- jpeg: the median over the estimator's four 64 px crops of the blockiness (gradients on the 8-pixel grid over
  the others, any grid phase); the class is implausible below ``jpeg_min_blockiness``;
- bit_depth: the median over the crops of the level fill (share of the 8-bit levels inside each channel's
  central range that occur); implausible above ``bit_depth_max_level_fill``.

For random 128 px crops of every photo in DIR: each statistic on the clean crop, on the mild tasks (class
clean), across the added type's training range and at the benchmark's task. Prints quantiles and the share of
each set a few bars would gate; rewrites the docs/BENCHMARKS.md section "JPEG and bit-depth gates: signatures".
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import doc_sections  # noqa: F401  (puts the repository root on sys.path)
import numpy as np
import torch
from haze_dark_channel import crop_statistics, crop_study, measure, publish, table

from abair_core.models.estimator import native_crops
from abair_core.models.image_statistics import STATISTIC_NAMES
from abair_core.models.plausibility import level_fill

BLOCKINESS = STATISTIC_NAMES.index("blockiness")
MILD = {"mild noise_s5 (class clean)": {"type": "noise", "sigma": 5},
        "mild jpeg_q75 (class clean)": {"type": "jpeg", "quality": 75},
        "mild blur_s05 (class clean)": {"type": "blur", "kind": "gaussian", "sigma": 0.5}}
JPEG = {"clean": None, **MILD,
        "jpeg q90 (archive quality)": {"type": "jpeg", "quality": 90},
        "training range (quality 10-40)": {"type": "jpeg", "quality": [10, 40]},
        "weakest training (quality 40)": {"type": "jpeg", "quality": 40},
        "benchmark jpeg_q20": {"type": "jpeg", "quality": 20}}
BIT_DEPTH = {"clean": None, **MILD,
             "training range (4-7 bits)": {"type": "bit_depth", "bits": [4, 7]},
             "weakest training (7 bits)": {"type": "bit_depth", "bits": 7},
             "benchmark bit_depth_4": {"type": "bit_depth", "bits": 4}}
BLOCKINESS_BARS = (0.05, 0.1, 0.15, 0.2, 0.3)
FILL_BARS = (0.6, 0.7, 0.8, 0.9)
QUANTILES = (0.0, 0.01, 0.05, 0.5, 0.95, 1.0)


def median_blockiness(image: np.ndarray) -> float:
    """The jpeg gate's statistic for one HWC image in [0, 1]: the median blockiness of the estimator's crops."""
    return float(crop_statistics(image)[:, BLOCKINESS].median())


def median_level_fill(image: np.ndarray) -> float:
    """The bit-depth gate's statistic: the median level fill of the crops (NaN when every crop is flat)."""
    x = torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]
    return float(level_fill(native_crops(x, 64, 4).reshape(-1, 3, 64, 64)).nanmedian())


def main(argv: list[str] | None = None) -> int:
    args, photos = crop_study(__doc__.splitlines()[0], argv)
    blockiness = measure(photos, args.crops, specs=JPEG, statistic=median_blockiness)
    fill = measure(photos, args.crops, specs=BIT_DEPTH, statistic=median_level_fill)
    fill = {name: [v for v in values if not np.isnan(v)] for name, values in fill.items()}
    body = "\n".join([
        (f"{len(photos)} photos x {args.crops} random 128 px crops, each statistic over the estimator's four 64 px "
         f"crops (`abair_core.models.plausibility`). Command: `python benchmarks/jpeg_bit_depth_gates.py --photos "
         f"PHOTOS --crops {args.crops}`, {dt.date.today()}."),
        "", "JPEG: median blockiness; share of each set *below* a bar (what `jpeg_min_blockiness` would gate):", "",
        table(blockiness, BLOCKINESS_BARS, QUANTILES), "",
        ("Bit depth: median level fill (crops whose channels all span fewer than 16 levels are left out); share "
         "*above* a bar (what `bit_depth_max_level_fill` would gate):"), "",
        table(fill, FILL_BARS, QUANTILES, above=True), ""])
    publish("JPEG and bit-depth gates: signatures", body, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
