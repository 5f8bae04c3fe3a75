"""One model under several archive priors on clean (``clean_weight``): what each costs known tasks and buys
clean and mild inputs.

Usage: ``python benchmarks/clean_weight_sweep.py --model BUNDLE_OR_MODELS_URI --suite configs/benchmark/small.yaml
[--images DIR] [--weights 1 1.5 2 3 5 10] [--title "demo v1"] [--no-write]``

Every synthesized input of the suite's known, clean and mild groups is restored in the SW and OH modes as
``ABAIR.restore(..., clean_weight=w)`` would (the batch Restorer's behaviour, a test keeps them equal), with the
bundle's own plausibility gates; the network runs once per input and mode, whatever the number of weights.
Prints one row per weight: the known average (SW, OH) and how many known inputs were passed through as clean,
the clean row's mean and worst image, and each mild task against its input; rewrites the docs/BENCHMARKS.md
section "Clean weight: <title>".
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
from doc_sections import ROOT, update_section
from plausibility_gate import bundle_dir, model_suite_parser, suite_inputs, suite_photos, to_array

from abair_core.bundle import load_bundle
from abair_core.evaluation.runner import score_images
from abair_core.models.abair import ABAIR
from abair_core.models.clean_prior import apply_clean_weight

GROUPS = ("known", "clean", "mild")
CAP = 100.0  # an untouched output scores infinity; the evaluation tables cap it at 100 dB too


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = model_suite_parser(__doc__.splitlines()[0])
    parser.add_argument("--weights", nargs="+", type=float, default=[1.0, 1.5, 2.0, 3.0, 5.0, 10.0])
    return parser.parse_args(argv)


def psnr(output: torch.Tensor, clean: Any) -> float:
    return min(score_images(to_array(output), clean)["psnr"], CAP)


@torch.no_grad()
def restore_at_weights(model: ABAIR, x: torch.Tensor, weights: list[float],
                       probs: torch.Tensor | None = None) -> dict[float, dict[str, torch.Tensor]]:
    """``model.restore(x, mode, clean_weight=w)`` for both blind modes and every weight, with one network pass per
    mode instead of one per weight. ``probs``: the estimator's probabilities for ``x`` when the caller has them.

    The weight moves only the odds of ``clean`` (the degradations keep their ratios), so the adapter blend, and the
    network's output for it, is the same at every weight; only the identity share ``p_clean`` changes. A test keeps
    this equal to ``model.restore``.
    """
    probs = (model.estimator.predict_proba(x) if probs is None else probs).to(x.dtype)
    out: dict[float, dict[str, torch.Tensor]] = {w: {} for w in weights}
    for mode in ("sw", "oh"):
        plans = {w: model.plan_from_probabilities(apply_clean_weight(probs, w), mode) for w in weights}
        network = None  # run lazily: an input every weight passes through never needs it
        for w, (adapter_weights, p_clean) in plans.items():
            if bool((p_clean < 1.0).any()) and network is None:
                network = model.forward_blended(x, adapter_weights)
            pc = p_clean[:, None, None, None]
            blended = x if network is None else pc * x + (1.0 - pc) * network
            out[w][mode] = torch.where(pc >= 1.0, x, blended).clamp(0.0, 1.0)
    return out


@torch.no_grad()
def measure(model: ABAIR, suite: Any, photos: dict[str, Any], weights: list[float]) -> list[dict[str, Any]]:
    """One row per (input, weight): group, task, input PSNR, SW and OH PSNR, whether clean won."""
    rows = []
    for group, task, key, seed, c, degraded, clean, x in suite_inputs(suite, photos, GROUPS):
        probs = model.estimator.predict_proba(x)
        outputs = restore_at_weights(model, x, weights, probs)
        input_psnr = min(score_images(degraded, clean)["psnr"], CAP)
        for w in weights:
            rows.append({
                "group": group, "task": task.id, "weight": w, "image": key, "seed": seed, "crop": c,
                "input": input_psnr,
                "sw": psnr(outputs[w]["sw"], clean),
                "oh": psnr(outputs[w]["oh"], clean),
                "clean_top": int(apply_clean_weight(probs, w)[0].argmax()) == 0,
            })
    return rows


def task_means(rows: list[dict[str, Any]], key: str = "sw") -> dict[str, float]:
    """Mean of ``key`` per task, in the rows' order."""
    per_task: dict[str, list[float]] = {}
    for r in rows:
        per_task.setdefault(r["task"], []).append(r[key])
    return {t: statistics.fmean(v) for t, v in per_task.items()}


def summarize(rows: list[dict[str, Any]], weights: list[float]) -> list[dict[str, Any]]:
    """Per weight: known averages (mean of task means), known passed through, clean mean/worst, mild - input."""
    out = []
    for w in weights:
        sel = [r for r in rows if r["weight"] == w]
        known = [r for r in sel if r["group"] == "known"]
        clean = [r for r in sel if r["task"] == "clean"]
        mild = [r for r in sel if r["group"] == "mild"]
        line: dict[str, Any] = {"weight": w}
        if known:
            line["known_sw"] = statistics.fmean(task_means(known, "sw").values())
            line["known_oh"] = statistics.fmean(task_means(known, "oh").values())
            line["known_passed"] = f"{sum(r['clean_top'] for r in known)}/{len(known)}"
        if clean:
            line["clean_mean"] = statistics.fmean(r["sw"] for r in clean)
            line["clean_worst"] = min(r["sw"] for r in clean)
        gains = task_means(mild, "sw")
        inputs = task_means(mild, "input")
        line["mild"] = {t: gains[t] - inputs[t] for t in gains}
        out.append(line)
    return out


def table(summary: list[dict[str, Any]]) -> str:
    mild_tasks = list(summary[0]["mild"]) if summary else []
    head = ["clean_weight", "known SW", "known OH", "known passed as clean", "clean SW mean", "clean SW worst",
            *(f"{t} SW - input" for t in mild_tasks)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for s in summary:
        cells = [f"{s['weight']:g}", f"{s.get('known_sw', float('nan')):.2f}", f"{s.get('known_oh', float('nan')):.2f}",
                 s.get("known_passed", "-"), f"{s.get('clean_mean', float('nan')):.2f}",
                 f"{s.get('clean_worst', float('nan')):.2f}", *(f"{s['mild'][t]:+.2f}" for t in mild_tasks)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model = load_bundle(bundle_dir(args.model))
    suite, photos = suite_photos(args.suite, args.images)
    began = time.perf_counter()
    rows = measure(model, suite, photos, args.weights)
    seconds = time.perf_counter() - began
    gates = model.estimator.config.plausibility
    command = (f"python benchmarks/clean_weight_sweep.py --model {args.model} --suite {args.suite}"
               f"{' --images ' + args.images if args.images else ''} --weights {' '.join(f'{w:g}' for w in args.weights)}")
    body = "\n".join([
        (f"Model: `{args.model}` ({model.backbone.config.preset}, adapters {', '.join(model.adapter_names)}; "
         f"plausibility gates {'on' if gates.enabled else 'off'}). Suite `{args.suite}` ({len(photos)} photos, "
         f"{suite.crops_per_image} crop(s) x {len(suite.seeds)} seed(s)). Command: `{command}`. "
         f"{dt.date.today()}, {seconds:.0f} s."),
        "", ("PSNR (dB, RGB), clean capped at 100 dB; known averages are means of the task means; 'passed as "
             "clean': known inputs whose top class became clean (returned untouched)."), "",
        table(summarize(rows, args.weights)), ""])
    print(body)
    if not args.no_write:
        update_section(ROOT / "docs" / "BENCHMARKS.md", f"Clean weight: {args.title or suite.name}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
