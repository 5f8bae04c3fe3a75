"""Does a photo's tone decide the estimator's answer? Whole clean photos under global tone changes.

Usage::

    python benchmarks/estimator_tone_sensitivity.py --models BUNDLE [BUNDLE ...] \
        --suite configs/benchmark/small.yaml --images file:///path/to/photos [--clean-weight 1] [--no-write]

Every photo of the suite, whole and clean, is shown to each model's estimator as production reads it
(:class:`abair_core.bundle.Restorer`: ``estimator_crops`` crops, the plausibility gates and the archive's
``--clean-weight``), as it is and under tone changes a camera or an editor makes without degrading anything
(contrast about the mean luma, a tone curve, a gain, saturation). A restorer that does no harm should answer
``clean`` for all of them; a decision that flips with a 15% contrast change sits on a knife edge. Prints, per
model, each photo's answer under every change and how many photos keep the answer they had unchanged;
replaces the docs/BENCHMARKS.md section "Estimator tone sensitivity: <title>".
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
from haze_dark_channel import publish

from abair_core.bundle import Restorer, load_bundle
from abair_core.evaluation.images import load_images
from abair_core.evaluation.suite import load_suite
from abair_core.models.image_statistics import contrast_about_mean, luma
from abair_core.restore.plan import RestoreSettings


def _saturation(factor: float) -> Callable[[torch.Tensor], torch.Tensor]:
    def change(x: torch.Tensor) -> torch.Tensor:
        grey = luma(x)
        return grey + factor * (x - grey)
    return change


#: label -> tone change of a (1, 3, H, W) image in [0, 1] (the result is clipped to [0, 1])
TONES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "as is": lambda x: x,
    "contrast 0.85": lambda x: contrast_about_mean(x, 0.85),
    "contrast 1.15": lambda x: contrast_about_mean(x, 1.15),
    "gamma 0.8": lambda x: x ** 0.8,
    "gamma 1.25": lambda x: x ** 1.25,
    "gain 0.9": lambda x: 0.9 * x,
    "gain 1.1": lambda x: 1.1 * x,
    "saturation 0.7": _saturation(0.7),
    "saturation 1.3": _saturation(1.3),
}


def answers(restorer: Restorer, photos: dict[str, np.ndarray],
            tones: dict[str, Callable[[torch.Tensor], torch.Tensor]] = TONES) -> dict[str, dict[str, tuple[str, float]]]:
    """photo -> tone -> (the class production would act on, its probability), 8-bit quantised like a file."""
    out: dict[str, dict[str, tuple[str, float]]] = {}
    for key, rgb in photos.items():
        out[key] = {}
        photo = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
        for label, change in tones.items():
            x = torch.round(change(photo).clamp(0, 1) * 255) / 255
            probabilities = restorer.probabilities(x)
            top = max(probabilities, key=probabilities.get)
            out[key][label] = (top, probabilities[top])
    return out


def photo_table(found: dict[str, dict[str, tuple[str, float]]]) -> str:
    """Markdown: one row per photo, its answer (class and probability) under every tone change."""
    tones = list(next(iter(found.values())))
    lines = ["| photo | " + " | ".join(tones) + " |", "|---|" + "---|" * len(tones)]
    for key, row in found.items():
        cells = [f"{top} {p:.2f}" if top == "clean" else f"**{top} {p:.2f}**" for top, p in row.values()]
        lines.append(f"| {Path(key).stem} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def summary(found: dict[str, dict[str, tuple[str, float]]]) -> dict[str, int]:
    """Photos read as clean under every tone change, read as clean as they are, and whose answer any change flips."""
    rows = list(found.values())
    return {"photos": len(rows),
            "clean as is": sum(row["as is"][0] == "clean" for row in rows),
            "clean under every change": sum(all(top == "clean" for top, _ in row.values()) for row in rows),
            "answer flipped by a change": sum(len({top for top, _ in row.values()}) > 1 for row in rows)}


def model_label(model_dir: str) -> str:
    """A bundle's folder and its parent (``pair/bundle-with``): sibling bundles share their own names."""
    path = Path(model_dir).resolve()
    return f"{path.parent.name}/{path.name}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", required=True, help="model bundle folders")
    parser.add_argument("--suite", default="configs/benchmark/small.yaml", help="the suite whose photos are read")
    parser.add_argument("--images", default=None, help="photo folder/URI of the suite (default: the suite's)")
    parser.add_argument("--clean-weight", type=float, default=1.0, help="the archive's prior on clean")
    parser.add_argument("--title", default=None, help="section title (default: the model folders' names)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--no-write", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    suite = load_suite(args.suite)
    photos = load_images(args.images or suite.images, files=suite.files)
    crops = RestoreSettings().estimator_crops
    title = args.title or ", ".join(model_label(m) for m in args.models)
    parts = [(f"Every photo of `{args.suite}` ({len(photos)}), whole and clean, as production's estimator reads it "
              f"({crops} crops, gates on, `--clean-weight {args.clean_weight:g}`), as it is and under each tone "
              f"change; **bold**: an answer that would restore a clean photo. Command: `python "
              f"benchmarks/estimator_tone_sensitivity.py --models MODEL --suite {args.suite} --images PHOTOS "
              f"--clean-weight {args.clean_weight:g}`, {dt.date.today()}."), ""]
    for model_dir in args.models:
        restorer = Restorer(load_bundle(model_dir), clean_weight=args.clean_weight, estimator_crops=crops)
        found = answers(restorer, photos)
        counts = summary(found)
        parts += [f"`{model_label(model_dir)}`: " + ", ".join(f"{k} {v}" for k, v in counts.items()), "",
                  photo_table(found), ""]
    publish(f"Estimator tone sensitivity: {title}", "\n".join(parts), args.no_write)
    return 0


if __name__ == "__main__":
    sys.exit(main())
