"""Where do mild and clean inputs lose PSNR? Their routing by the estimator, and what each route costs.

Usage: ``python benchmarks/mild_routing.py --model BUNDLE_OR_MODELS_URI --suite configs/benchmark/small.yaml
[--images DIR] [--title "demo v1"] [--no-write]``

Every input of the suite's clean and mild groups goes through the estimator (with the bundle's plausibility
gates) and ``ABAIR.restore(x, "sw")``. The table has one row per task and winning class: how many inputs it
took, the mean SW output minus input PSNR (clean: output against the untouched input, capped at 100 dB) and
the mean winning probability. A route with many inputs and a large loss is what a fix has to target.
Rewrites the docs/BENCHMARKS.md section "Mild routing: <title>".
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from clean_weight_sweep import CAP, psnr
from doc_sections import ROOT, update_section
from plausibility_gate import bundle_dir, model_suite_parser, suite_inputs, suite_photos

from abair_core.bundle import load_bundle
from abair_core.evaluation.runner import score_images
from abair_core.models.abair import ABAIR

GROUPS = ("clean", "mild")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return model_suite_parser(__doc__.splitlines()[0]).parse_args(argv)


@torch.no_grad()
def measure(model: ABAIR, suite: Any, photos: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per clean or mild input: task, image, winning class and its probability, input and SW PSNR."""
    rows = []
    for group, task, key, seed, c, degraded, clean, x in suite_inputs(suite, photos, GROUPS):
        probs = model.estimator.predict_proba(x)[0]
        top = int(probs.argmax())
        rows.append({"task": task.id, "image": key, "seed": seed, "crop": c,
                     "top": model.estimator.class_names[top], "p_top": float(probs[top]),
                     "input": min(score_images(degraded, clean)["psnr"], CAP),
                     "sw": psnr(model.restore(x, "sw"), clean)})
    return rows


def route_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per task and winning class, the count, the mean SW - input and the mean winning probability."""
    lines = ["| task | routed to | inputs | SW - input (dB) | mean p(top) | share of the task's loss |",
             "|---|---|---:|---:|---:|---:|"]
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = [r for r in rows if r["task"] == task]
        total = sum(r["sw"] - r["input"] for r in mine)
        for top in sorted({r["top"] for r in mine}):
            sel = [r for r in mine if r["top"] == top]
            loss = sum(r["sw"] - r["input"] for r in sel)
            share = f"{loss / total:.0%}" if total < 0 and loss < 0 else "-"
            lines.append(f"| {task} | {top} | {len(sel)}/{len(mine)} | "
                         f"{statistics.fmean(r['sw'] - r['input'] for r in sel):+.2f} | "
                         f"{statistics.fmean(r['p_top'] for r in sel):.2f} | {share} |")
    return "\n".join(lines)


def worst_table(rows: list[dict[str, Any]], count: int = 3) -> str:
    """Markdown: the ``count`` inputs of each task that lose most, with their photo and route."""
    lines = ["| task | photo | seed | crop | routed to | p(top) | input | SW |", "|---|---|---:|---:|---|---:|---:|---:|"]
    for task in dict.fromkeys(r["task"] for r in rows):
        mine = sorted((r for r in rows if r["task"] == task), key=lambda r: r["sw"] - r["input"])[:count]
        lines += [f"| {r['task']} | {r['image']} | {r['seed']} | {r['crop']} | {r['top']} | {r['p_top']:.2f} | "
                  f"{r['input']:.2f} | {r['sw']:.2f} |" for r in mine]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    began = time.perf_counter()
    folder = bundle_dir(args.model)
    model = load_bundle(folder).eval()
    suite, photos = suite_photos(args.suite, args.images)
    rows = measure(model, suite, photos)
    body = route_table(rows) + "\n\nThe inputs of each task that lose most:\n\n" + worst_table(rows)
    print(body)
    if not args.no_write:
        title = args.title or suite.name
        note = (f"Model: `{args.model}`. Suite `{args.suite}`. Command: `python benchmarks/mild_routing.py --model "
                f"{args.model} --suite {args.suite}" + (f" --images {args.images}" if args.images else "") +
                f"`. {dt.date.today().isoformat()}, {time.perf_counter() - began:.0f} s.\n\n")
        update_section(ROOT / "docs/BENCHMARKS.md", f"Mild routing: {title}", note + body + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
