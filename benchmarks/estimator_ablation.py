"""Degradation-estimator ablation: what each design choice buys in accuracy on held-out photos.

Usage::

    python benchmarks/estimator_ablation.py --config configs/train/small.yaml \
        --manifest abair-work/datasets/<recipe>/manifest-<hash>.parquet \
        --suite configs/benchmark/small.yaml --images ./photos --variants cnn stats stats_originals

Trains one estimator per variant on the recipe's synthesized dataset (Phase III exactly as `abair train`
runs it, with the recipe's steps unless ``--steps``), then classifies every input of the suite's
estimator groups (known, clean, mild: the suite's photos, crops and seeds) and reports accuracy on the
known degradations and on clean + mild inputs (true class ``clean``). Variants:

- ``cnn``: the CNN alone (no statistics, one linear layer), clean class from clean + mild patches only;
- ``stats``: CNN + classical image statistics + MLP, clean class from clean + mild patches only;
- ``stats_originals``: as ``stats``, half the clean class from clean originals of every patch;
- ``stats_originals_grey``: as ``stats_originals``, 15% of the samples shown in greyscale (shipped).

Prints a Markdown table and replaces the "Estimator ablation" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import torch
from doc_sections import ROOT, update_section

from abair_core.components import class_names_for
from abair_core.config import load_config
from abair_core.data.dataset import load_dataset_patches
from abair_core.evaluation.images import load_images
from abair_core.evaluation.runner import task_inputs
from abair_core.evaluation.suite import load_suite
from abair_core.models.estimator import DegradationEstimator
from abair_core.training.config import TrainConfig
from abair_core.training.phase3 import train_estimator
from tasks.sample_photos import resolve_photo_source

SECTION = "Estimator ablation"
#: variant -> (estimator config update, Phase III schedule update, clean originals)
VARIANTS = {
    "cnn": ({"statistics": False, "hidden": 0}, {"greyscale_fraction": 0.0}, False),
    "stats": ({}, {"greyscale_fraction": 0.0}, False),
    "stats_originals": ({}, {"greyscale_fraction": 0.0}, True),
    "stats_originals_grey": ({}, {"greyscale_fraction": 0.15}, True),
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/train/small.yaml", help="training recipe")
    parser.add_argument("--manifest", required=True, help="dataset manifest the recipe synthesized")
    parser.add_argument("--suite", default="configs/benchmark/small.yaml")
    parser.add_argument("--images", default=None, help="photo folder/URI of the suite (default: the suite's)")
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=None, help="Phase III steps (default: the recipe's)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--doc", default=str(ROOT / "docs/BENCHMARKS.md"))
    parser.add_argument("--section", default=SECTION, help="the docs section this run replaces")
    return parser.parse_args(argv)


def suite_inputs(suite_path: str, images_uri: str | None) -> Iterator[tuple[str, str, np.ndarray]]:
    """(task id, true class, degraded image) for every input of the suite's estimator groups."""
    suite = load_suite(suite_path)
    # samples://holdout (the demo suite's bundled photos) is exported under the work folder first
    images = load_images(resolve_photo_source(images_uri or suite.images, str(ROOT / "abair-work")),
                         files=suite.files)
    for group, task in suite.tasks():
        if group in suite.estimator_groups and task.true_label() is not None:
            for *_, degraded, _ in task_inputs(suite, task, images):
                yield task.id, str(task.true_label()), degraded


def accuracy(estimator: DegradationEstimator, inputs: list[tuple[str, str, np.ndarray]]) -> dict[str, float]:
    """Per-task share of inputs whose arg-max class is the true class."""
    hits: dict[str, list[bool]] = {}
    with torch.no_grad():
        for task_id, label, image in inputs:
            x = torch.from_numpy(image).permute(2, 0, 1)[None].float()
            predicted = estimator.class_names[int(estimator.predict_proba(x)[0].argmax())]
            hits.setdefault(task_id, []).append(predicted == label)
    return {task: float(np.mean(v)) for task, v in hits.items()}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    base = load_config(args.config, TrainConfig)
    inputs = list(suite_inputs(args.suite, args.images))
    patches = load_dataset_patches(args.manifest)
    labels = {task: label for task, label, _ in inputs}
    rows = []
    for name in args.variants:
        estimator_update, schedule_update, originals = VARIANTS[name]
        schedule = base.phase3.model_copy(update={
            **schedule_update, "steps": args.steps or base.phase3.steps, "log_every": 10**6,
            "checkpoint_every": 10**6})
        torch.manual_seed(schedule.seed)
        estimator = DegradationEstimator(base.estimator.model_copy(update=estimator_update),
                                         class_names_for(base.degradations))
        began = time.perf_counter()
        train_estimator(estimator, estimator.class_names, patches, schedule, clean_originals=originals)
        seconds = time.perf_counter() - began
        estimator.eval()
        per_task = accuracy(estimator, inputs)
        known = [t for t, lab in labels.items() if lab != "clean"]
        harmless = [t for t, lab in labels.items() if lab == "clean"]
        rows.append((name, schedule.steps, seconds, float(np.mean([per_task[t] for t in known])),
                     float(np.mean([per_task[t] for t in harmless])), per_task))
        print(f"{name}: known {rows[-1][3]:.1%}, clean+mild {rows[-1][4]:.1%} ({seconds:.0f} s)", flush=True)
    tasks = list(labels)
    header = "| variant | steps | train s | known | clean + mild | " + " | ".join(tasks) + " |"
    lines = [header, "|---|---:|---:|---:|---:|" + "---:|" * len(tasks)]
    for name, steps, seconds, known_acc, harmless_acc, per_task in rows:
        cells = " | ".join(f"{per_task[t]:.0%}" for t in tasks)
        lines.append(f"| {name} | {steps} | {seconds:.0f} | {known_acc:.1%} | {harmless_acc:.1%} | {cells} |")
    table = "\n".join(lines)
    print(table)
    note = (f"Recipe `{args.config}`, dataset `{Path(args.manifest).name}`, suite `{args.suite}` "
            f"({len(inputs)} inputs), {platform.machine()}, torch {torch.__version__}, {args.threads} threads, "
            f"{dt.date.today().isoformat()}. Accuracy = arg-max class equals the true class (clean and mild "
            f"inputs: `clean`). Reproduce: `python benchmarks/estimator_ablation.py --config {args.config} "
            f"--manifest <dataset manifest> --suite {args.suite} --images <photos>`.\n\n")
    update_section(Path(args.doc), args.section, note + table + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
