"""Seconds per Phase III (estimator) training step, by estimator stem, and what the image statistics cost.

Usage: ``python benchmarks/estimator_step_time.py [--steps 30] [--repeats 3]``.
Why: the demo recipe's estimator wants about 3,600 steps to stay within issue 9's known-task bound, and at
1,200 steps Phase III already took about three minutes of the demo's fifteen. One step here is what
:func:`abair_core.training.phase3.train_estimator` runs: a batch of ``batch_size`` crops of ``patch_size`` px
drawn by :func:`estimator_batches` from patches of scikit-image photos (the demo's synthesis), soft-target
cross-entropy, gradient clipping and AdamW, all cores as torch threads. The stems take turns, ``--repeats``
rounds of ``--steps`` steps each; the table gives each stem's median round. Prints a Markdown table and
replaces the "Estimator step time" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import ROOT, update_section

SECTION = "Estimator step time"
STEMS = ("full", "space_to_depth")
PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/train/demo.yaml", help="recipe (relative to the repository)")
    parser.add_argument("--steps", type=int, default=30, help="timed steps per round")
    parser.add_argument("--repeats", type=int, default=3, help="rounds per stem (they alternate)")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import numpy as np
    import torch
    from skimage import data

    from abair_core.config import load_config
    from abair_core.degradations.specs import load_degradation_specs
    from abair_core.models.estimator import DegradationEstimator
    from abair_core.models.image_statistics import degradation_statistics
    from abair_core.training.batches import estimator_batches
    from abair_core.training.config import TrainConfig
    from abair_core.training.phase3 import soft_cross_entropy
    from abair_core.training.recipe import synthesize_pool

    torch.set_num_threads(os.cpu_count() or 1)
    config = load_config(ROOT / args.config, TrainConfig)
    photos = {name: getattr(data, name)().astype(np.float32) / 255.0 for name in PHOTOS}
    patches = synthesize_pool(photos, load_degradation_specs(ROOT / config.data.degradation_specs), config)
    names = ["clean", *config.degradations]
    schedule = config.phase3
    batches = estimator_batches(patches, names, schedule.batch_size, schedule.patch_size, schedule.seed,
                                schedule.mixed_fraction, schedule.clean_fraction, 0, True,
                                schedule.greyscale_fraction)
    pool = [next(batches) for _ in range(args.steps)]

    def trainer(stem: str):
        torch.manual_seed(0)
        model = DegradationEstimator(config.estimator.model_copy(update={"stem": stem}), names).train()
        optimizer = torch.optim.AdamW(model.parameters(), lr=schedule.lr, weight_decay=schedule.weight_decay)

        def step(i: int) -> None:
            batch = pool[i % len(pool)]
            loss = soft_cross_entropy(model(batch.degraded), batch.targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), schedule.grad_clip)
            optimizer.step()

        return step

    def timed(run, n: int) -> float:
        for i in range(3):
            run(i)
        start = time.perf_counter()
        for i in range(n):
            run(i)
        return (time.perf_counter() - start) / n

    steps = {stem: trainer(stem) for stem in STEMS}
    rounds: dict[str, list[float]] = {stem: [] for stem in STEMS}
    for _ in range(args.repeats):
        for stem in STEMS:
            rounds[stem].append(timed(steps[stem], args.steps))
    stats_seconds = statistics.median(
        timed(lambda i: degradation_statistics(pool[i % len(pool)].degraded), args.steps) for _ in range(args.repeats))
    median = {stem: statistics.median(values) for stem, values in rounds.items()}
    demo_steps = (1200, 3600)  # the demo's Phase III before and after 2026-12-07
    lines = ["| estimator stem | s/step | x faster | "
             + " | ".join(f"Phase III at {n:,} steps (s)" for n in demo_steps) + " |",
             "|---|---:|---:|" + "---:|" * len(demo_steps)]
    for stem in STEMS:
        lines.append(f"| {stem} | {median[stem]:.4f} | {median['full'] / median[stem]:.2f} | "
                     + " | ".join(f"{n * median[stem]:.0f}" for n in demo_steps) + " |")
    table = "\n".join(lines)
    intro = (
        f"`python benchmarks/estimator_step_time.py --steps {args.steps} --repeats {args.repeats}` on "
        f"{dt.date.today().isoformat()}, {platform.machine()}, {os.cpu_count()} CPU cores, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads. One Phase III step of `{args.config}`'s schedule "
        f"(batch {schedule.batch_size} of {schedule.patch_size} px crops from the demo's synthesis of "
        f"{len(PHOTOS)} scikit-image photos; forward, soft-target cross-entropy, backward, clipping, AdamW), "
        f"the median of {args.repeats} alternating rounds of {args.steps} steps. The image statistics alone "
        f"(`degradation_statistics` of one batch, inside every step) take {stats_seconds:.4f} s.")
    note = (
        "`full` is the estimator's first stage at full resolution; `space_to_depth` reads each 2x2 block of pixels "
        "as 12 channels and starts at half resolution (docs/DO_NO_HARM.md, \"A cheaper estimator step\"). The last "
        "columns are the steps times the step time, without the loop's logging and checkpoints.")
    body = f"{intro}\n\n{table}\n\n{note}"
    print(body)
    if not args.no_doc:
        update_section(args.doc, SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
