"""Where the low-light gate's bar could sit: the brightest estimator crop's highlights, clean against under-exposed.

Usage: ``python benchmarks/low_light_highlights.py --photos DIR [--crops 3] [--no-write]``

For random 128 px crops of every photo in DIR: the statistic the low-light gate reads
(``abair_core.models.plausibility``: the largest, over the estimator's four 64 px crops, of the 99th luma
percentile; the class is implausible above ``low_light_max_highlights``) on the clean crop, on the same crop
under-exposed across the training range, at its brightest corner, at the benchmark's ``low_light`` task, and
with the mild ``noise_s5`` (class clean). Prints quantiles and the share of each set *above* a few bars (what a
bar would gate); rewrites the docs/BENCHMARKS.md section "Low-light gate: highlights".
"""

from __future__ import annotations

import datetime as dt
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import doc_sections  # noqa: F401  (puts the repository root on sys.path)
import numpy as np
from haze_dark_channel import crop_statistics, crop_study, measure, publish, table

from abair_core.models.image_statistics import STATISTIC_NAMES

Q99 = STATISTIC_NAMES.index("luma_q99")
LOW_LIGHT = {
    "clean": None,
    "mild noise_s5 (class clean)": {"type": "noise", "sigma": 5},
    "training range (exposure 0.1-0.4)": {"type": "low_light", "exposure": [0.1, 0.4], "gamma": [1.0, 1.5],
                                          "photons": [150, 2000], "read_noise": [0.5, 4.0]},
    "brightest training corner (exposure 0.4, gamma 1)": {"type": "low_light", "exposure": 0.4, "gamma": 1.0,
                                                          "photons": 2000, "read_noise": 0.5},
    "benchmark low_light (exposure 0.2, gamma 1.2)": {"type": "low_light", "exposure": 0.2, "gamma": 1.2,
                                                      "photons": 500, "read_noise": 2.0},
}
BARS = (0.25, 0.3, 0.35, 0.42, 0.5)
QUANTILES = (0.05, 0.5, 0.95, 0.99, 1.0)


def brightest_crop_highlights(image: np.ndarray) -> float:
    """The low-light gate's statistic for one HWC image in [0, 1]: the largest 99th luma percentile of the crops."""
    return float(crop_statistics(image)[:, Q99].max())


def main(argv: list[str] | None = None) -> int:
    args, photos = crop_study(__doc__.splitlines()[0], argv)
    values = measure(photos, args.crops, specs=LOW_LIGHT, statistic=brightest_crop_highlights)
    body = "\n".join([
        (f"{len(photos)} photos x {args.crops} random 128 px crops; statistic: the largest 99th luma percentile of "
         f"the estimator's four 64 px crops (what `low_light_max_highlights` compares; above the bar, low light is "
         f"gated). Command: `python benchmarks/low_light_highlights.py --photos PHOTOS --crops {args.crops}`, "
         f"{dt.date.today()}."),
        "", table(values, BARS, QUANTILES, above=True), ""])
    publish("Low-light gate: highlights", body, args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
