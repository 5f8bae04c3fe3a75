"""SW's identity share: what mixing p(clean) of the input into a restored image costs and buys, group by group.

Usage: ``python benchmarks/sw_identity_share.py --models BUNDLE [BUNDLE ...] [--without BUNDLE ...]
--suite configs/benchmark/small_dense.yaml [--images DIR] [--floors 0.2 0.3] [--title "small, seeds 0-2"]
[--no-write]``

Under ``sw`` an input that ``clean`` does not win comes back as ``p_clean * x + (1 - p_clean) * model_p(x)``
(docs/DO_NO_HARM.md). That share protects a clean photo the estimator misreads, and it leaves a little veil or
streak in a degraded one. This script scores, on one forward pass per input, the shipped share against the
alternatives a maintainer would ask about:

- ``p_clean``: the shipped rule (the output equals ``ABAIR.restore(x, "sw")``; a test checks);
- ``floor T``: p(clean) only when it is at least T, else 0 (a degraded input's small p(clean) is dropped);
- ``none``: no share unless ``clean`` wins (then the input passes through, as under every rule).

Inputs of the known, clean and mild groups; ``--without`` names, in the same order, the same recipe trained without
the do-no-harm work (benchmarks/do_no_harm_ablation.py), scored under its own stored rule, so each row shows the
known-average difference per pair. Prints the tables and rewrites the docs/BENCHMARKS.md section
"SW identity share: <title>".
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
from clean_weight_sweep import psnr, task_means
from doc_sections import ROOT, update_section
from plausibility_gate import suite_inputs, suite_photos
from sw_sharpness_sweep import check_pairs, models_line, paired_command, paired_models_parser

from abair_core.bundle import load_bundle
from abair_core.models.abair import ABAIR

GROUPS = ("known", "clean", "mild")
SHIPPED = "p_clean"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = paired_models_parser(__doc__.splitlines()[0])
    parser.add_argument("--floors", nargs="*", type=float, default=[0.2, 0.3],
                        help="thresholds T of the 'floor T' rules (p(clean) kept only at or above T)")
    args = check_pairs(parser, parser.parse_args(argv))
    if any(not 0.0 < t < 1.0 for t in args.floors):
        parser.error(f"--floors must lie strictly between 0 and 1, got {args.floors}")
    return args


def rule_names(floors: list[float]) -> list[str]:
    return [SHIPPED, *(f"floor {t:g}" for t in floors), "none"]


def identity_share(p_clean: float, rule: str) -> float:
    """The input's share in the output under ``rule`` when ``clean`` did not win (it passes through when it did)."""
    if rule == SHIPPED:
        return p_clean
    if rule == "none":
        return 0.0
    return p_clean if p_clean >= float(rule.split()[1]) else 0.0


@torch.no_grad()
def measure(model: ABAIR, suite: Any, photos: dict[str, Any], rules: list[str],
            groups: tuple[str, ...] = GROUPS) -> list[dict[str, Any]]:
    """One row per (input, rule): group, task, input PSNR, SW PSNR under the rule and whether clean won."""
    rows = []
    for group, task, key, seed, c, degraded, clean, x in suite_inputs(suite, photos, groups):
        probs = model.estimator.predict_proba(x).to(x.dtype)
        weights, p_clean = model.plan_from_probabilities(probs, "sw")
        passed = bool(p_clean[0] >= 1.0)
        restored = None if passed else model.forward_blended(x, weights)
        entry = psnr(x, clean)
        for rule in rules:
            if passed:
                out = x
            else:
                a = identity_share(float(p_clean[0]), rule)
                out = (a * x + (1.0 - a) * restored).clamp(0.0, 1.0)  # as ABAIR.restore blends, then clamps
            rows.append({"group": group, "task": task.id, "rule": rule, "image": key, "seed": seed, "crop": c,
                         "input": entry, "sw": psnr(out, clean), "passed": passed})
    return rows


def known_average(rows: list[dict[str, Any]], rule: str) -> float:
    return statistics.fmean(task_means([r for r in rows if r["group"] == "known" and r["rule"] == rule]).values())


def summary_table(runs: list[list[dict[str, Any]]], without: list[list[dict[str, Any]]], rules: list[str]) -> str:
    """Markdown: one row per rule: known average (per model, and with - without per pair), clean, mild rows."""
    mild = list(task_means([r for r in runs[0] if r["group"] == "mild"]))
    head = ["identity share", "known SW (per model)", "mean", "clean mean / worst", *(f"{t} - input" for t in mild)]
    if without:
        head[3:3] = ["with - without, known (per pair)", "mean"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for rule in rules:
        known = [known_average(rows, rule) for rows in runs]
        cells = [rule, ", ".join(f"{k:.2f}" for k in known), f"{statistics.fmean(known):.2f}"]
        if without:
            diffs = [k - known_average(rows, SHIPPED) for k, rows in zip(known, without)]
            cells += [", ".join(f"{d:+.2f}" for d in diffs), f"{statistics.fmean(diffs):+.2f}"]
        clean = [r["sw"] for rows in runs for r in rows if r["task"] == "clean" and r["rule"] == rule]
        pooled_mild = [r for rows in runs for r in rows if r["group"] == "mild" and r["rule"] == rule]
        outputs, inputs = task_means(pooled_mild), task_means(pooled_mild, "input")
        cells += [f"{statistics.fmean(clean):.2f} / {min(clean):.2f}" if clean else "-",
                  *(f"{outputs[t] - inputs[t]:+.2f}" for t in mild)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def task_table(runs: list[list[dict[str, Any]]], without: list[list[dict[str, Any]]], rules: list[str]) -> str:
    """Markdown: per known task, with - without under each rule (mean over pairs), or the SW mean when unpaired."""
    tasks = list(task_means([r for r in runs[0] if r["group"] == "known"]))

    def mean(rows_list: list[list[dict[str, Any]]], task: str, rule: str) -> float:
        return statistics.fmean(task_means([r for r in rows if r["task"] == task and r["rule"] == rule])[task]
                                for rows in rows_list)

    label = "with - without" if without else "SW"
    lines = ["| known task | " + " | ".join(f"{label}, {rule}" for rule in rules) + " |",
             "|---|" + "---:|" * len(rules)]
    for task in tasks:
        cells = [(mean(runs, task, rule) - mean(without, task, SHIPPED)) if without else mean(runs, task, rule)
                 for rule in rules]
        lines.append(f"| {task} | " + " | ".join(f"{v:+.2f}" if without else f"{v:.2f}" for v in cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    suite, photos = suite_photos(args.suite, args.images)
    rules = rule_names(args.floors)
    began = time.perf_counter()
    runs = [measure(load_bundle(Path(m)).eval(), suite, photos, rules) for m in args.models]
    without = [measure(load_bundle(Path(m)).eval(), suite, photos, [SHIPPED], ("known",)) for m in args.without]
    seconds = time.perf_counter() - began
    command = (f"{paired_command('sw_identity_share.py', args)}"
               f"{' --floors ' + ' '.join(f'{t:g}' for t in args.floors) if args.floors else ''}")
    body = "\n".join([
        (f"{models_line(args, suite, photos)} "
         f"SW output of each input that `clean` does not win = share * input + (1 - share) * the blended model, "
         f"under each rule for the share (`{SHIPPED}` is shipped); inputs `clean` wins pass through under every rule; "
         f"`without` under its stored rule. Command: `{command}`. {dt.date.today()}, {seconds:.0f} s."),
        "", ("PSNR (dB, RGB), clean capped at 100 dB; the known average is the mean of the task means; clean and mild "
             "rows pool the models' inputs."), "",
        summary_table(runs, without, rules), "", task_table(runs, without, rules), ""])
    print(body)
    if not args.no_write:
        update_section(ROOT / "docs" / "BENCHMARKS.md", f"SW identity share: {args.title or suite.name}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
