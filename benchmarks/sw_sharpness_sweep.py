"""Soft weights sharpened: what blending the adapters by p ** s instead of p does to every group of a suite.

Usage: ``python benchmarks/sw_sharpness_sweep.py --models BUNDLE [BUNDLE ...] [--without BUNDLE ...]
--suite configs/benchmark/small.yaml [--images DIR] [--sharpness 1 2 4] [--tta none dihedral] [--title "small, seeds 0-2"]
[--no-write]``

Every synthesized input of the suite's known, unseen, mixed, clean and mild groups is restored by
``ABAIR.restore(x, "sw")`` with the model's estimator set to each ``sw_sharpness`` in turn (its plausibility gates
and the identity share p(clean) as stored; the batch Restorer plans the same way, a test keeps them equal). Several
models (e.g. training seeds of one recipe) are averaged; ``--without`` names, in the same order, the same recipe
trained without the do-no-harm work (benchmarks/do_no_harm_ablation.py), and adds each pair's known-average
difference. ``--tta`` crosses every sharpness with the estimator's test-time views (``EstimatorConfig.tta``: none,
flip, dihedral), both inference-only settings. Prints one row per setting and a per-task table; rewrites the
docs/BENCHMARKS.md section "SW sharpness: <title>" (with ``--tta``: "Estimator test-time views: <title>").
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
from clean_weight_sweep import CAP, psnr, task_means
from doc_sections import ROOT, update_section
from plausibility_gate import suite_inputs, suite_photos

from abair_core.bundle import load_bundle
from abair_core.evaluation.runner import score_images
from abair_core.models.abair import ABAIR

GROUPS = ("known", "unseen", "mixed", "clean", "mild")


def paired_models_parser(description: str) -> argparse.ArgumentParser:
    """The flags of the scripts that score several models, each optionally paired with its ``without`` run:
    --models, --without, --suite, --images, --title, --no-write (check with :func:`check_pairs`)."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--models", nargs="+", required=True, help="bundle directories (e.g. one per training seed)")
    parser.add_argument("--without", nargs="*", default=[], help="the same recipe without the do-no-harm work, "
                        "one bundle per --models entry, same order")
    parser.add_argument("--suite", default="configs/benchmark/small.yaml")
    parser.add_argument("--images", default=None, help="photo folder URI when the suite names none")
    parser.add_argument("--title", default=None, help="section title suffix (default: the suite's name)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    return parser


def check_pairs(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.Namespace:
    """Refuse a --without list that does not pair one bundle with each --models entry."""
    if args.without and len(args.without) != len(args.models):
        parser.error(f"--without needs one bundle per --models entry ({len(args.models)}), got {len(args.without)}")
    return args


def paired_command(script: str, args: argparse.Namespace) -> str:
    """The command line of a paired-models script, as the section prints it (its own flags appended by the caller)."""
    return (f"python benchmarks/{script} --models {' '.join(args.models)}"
            f"{' --without ' + ' '.join(args.without) if args.without else ''} --suite {args.suite}"
            f"{' --images ' + args.images if args.images else ''}")


def models_line(args: argparse.Namespace, suite: Any, photos: dict[str, Any]) -> str:
    """The section's opening sentence: how many models (and ``without`` runs) on which suite."""
    return (f"Models: {len(args.models)}{f' (and {len(args.without)} without the do-no-harm work)' if args.without else ''}; "
            f"suite `{args.suite}` ({len(photos)} photos, {suite.crops_per_image} crop(s) x {len(suite.seeds)} seed(s)).")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = paired_models_parser(__doc__.splitlines()[0])
    parser.add_argument("--sharpness", nargs="+", type=float, default=[1.0, 2.0, 4.0])
    parser.add_argument("--tta", nargs="+", choices=["none", "flip", "dihedral"], default=None,
                        help="also sweep the estimator's test-time views (each crossed with every sharpness; "
                        "default: as stored)")
    return check_pairs(parser, parser.parse_args(argv))


def settings_of(sharpness: list[float], tta: list[str] | None) -> list[tuple[str, dict[str, Any]]]:
    """(label, estimator settings) for every sharpness, crossed with every ``--tta`` value when one is given
    (labels ``2`` or ``2, dihedral``)."""
    if not tta:
        return [(f"{s:g}", {"sw_sharpness": s}) for s in sharpness]
    return [(f"{s:g}, {t}", {"sw_sharpness": s, "tta": t}) for s in sharpness for t in tta]


@torch.no_grad()
def measure(model: ABAIR, suite: Any, photos: dict[str, Any], sharpness: list[float],
            tta: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per (input, setting): group, task, input PSNR and SW PSNR; the model's own settings are kept."""
    stored = model.estimator.config
    rows = []
    try:
        for group, task, key, seed, c, degraded, clean, x in suite_inputs(suite, photos, GROUPS):
            entry = min(score_images(degraded, clean)["psnr"], CAP)
            for label, update in settings_of(sharpness, tta):
                model.estimator.config = stored.model_copy(update=update)
                rows.append({"group": group, "task": task.id, "sharpness": update["sw_sharpness"],
                             "tta": model.estimator.config.tta, "setting": label, "image": key, "seed": seed,
                             "crop": c, "input": entry, "sw": psnr(model.restore(x, "sw"), clean)})
    finally:
        model.estimator.config = stored
    return rows


def group_average(rows: list[dict[str, Any]], group: str, setting: str) -> float | None:
    """Mean of the task means of one group at one setting (None when the suite has no such task)."""
    means = task_means([r for r in rows if r["group"] == group and r["setting"] == setting])
    return statistics.fmean(means.values()) if means else None


def summarize(runs: list[list[dict[str, Any]]], without: list[list[dict[str, Any]]], settings: list[str]
              ) -> list[dict[str, Any]]:
    """Per setting: each model's known average, group averages over the models, the clean row, the mild rows."""
    out = []
    for s in settings:
        known = [group_average(rows, "known", s) for rows in runs]
        line: dict[str, Any] = {"setting": s, "known": known}
        for group in ("unseen", "mixed"):
            values = [v for rows in runs if (v := group_average(rows, group, s)) is not None]
            line[group] = statistics.fmean(values) if values else None
        clean = [r["sw"] for rows in runs for r in rows if r["task"] == "clean" and r["setting"] == s]
        line["clean"] = (statistics.fmean(clean), min(clean)) if clean else None
        mild = [r for rows in runs for r in rows if r["group"] == "mild" and r["setting"] == s]
        outputs, inputs = task_means(mild), task_means(mild, "input")
        line["mild"] = {t: outputs[t] - inputs[t] for t in outputs}
        if without:
            line["known_without"] = [group_average(rows, "known", s) for rows in without]
        out.append(line)
    return out


def _cell(value: float | None, fmt: str = ".2f") -> str:
    return "-" if value is None else format(value, fmt)


def table(summary: list[dict[str, Any]], column: str = "sw_sharpness") -> str:
    """Markdown: one row per setting, labelled in a first column named ``column``."""
    mild = list(summary[0]["mild"]) if summary else []
    paired = bool(summary) and "known_without" in summary[0]
    head = [column, "known SW (mean of models)", "per model", "unseen", "mixed", "clean mean / worst",
            *(f"{t} - input" for t in mild)]
    if paired:
        head[3:3] = ["with - without, known (per pair)", "mean"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---:|" * len(head)]
    for s in summary:
        known = [k for k in s["known"] if k is not None]
        cells = [s["setting"], _cell(statistics.fmean(known) if known else None),
                 ", ".join(_cell(k) for k in s["known"])]
        if paired:
            diffs = [a - b for a, b in zip(s["known"], s["known_without"]) if a is not None and b is not None]
            cells += [", ".join(f"{d:+.2f}" for d in diffs), _cell(statistics.fmean(diffs) if diffs else None, "+.2f")]
        clean = s["clean"]
        cells += [_cell(s["unseen"]), _cell(s["mixed"]), "-" if clean is None else f"{clean[0]:.2f} / {clean[1]:.2f}",
                  *(f"{s['mild'][t]:+.2f}" for t in mild)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def task_table(runs: list[list[dict[str, Any]]], without: list[list[dict[str, Any]]], settings: list[str]) -> str:
    """Markdown: per task (clean aside), the mean over models at each setting, and with - without when paired."""
    pooled = [r for rows in runs for r in rows if r["task"] != "clean"]
    tasks = list(dict.fromkeys(r["task"] for r in pooled))
    groups = {r["task"]: r["group"] for r in pooled}

    def mean(rows_list: list[list[dict[str, Any]]], task: str, s: str) -> float:
        return statistics.fmean(task_means([r for r in rows if r["task"] == task and r["setting"] == s])[task]
                                for rows in rows_list)

    head = ["group", "task", *(f"s={s}" for s in settings)]
    if without:
        head += [f"with - without, s={s}" for s in settings]
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 2)]
    for task in tasks:
        cells = [groups[task], task, *(f"{mean(runs, task, s):.2f}" for s in settings)]
        if without:
            cells += [f"{mean(runs, task, s) - mean(without, task, s):+.2f}" for s in settings]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    suite, photos = suite_photos(args.suite, args.images)
    began = time.perf_counter()
    runs = [measure(load_bundle(Path(m)).eval(), suite, photos, args.sharpness, args.tta) for m in args.models]
    without = [measure(load_bundle(Path(m)).eval(), suite, photos, args.sharpness, args.tta) for m in args.without]
    seconds = time.perf_counter() - began
    settings = [label for label, _ in settings_of(args.sharpness, args.tta)]
    command = (f"{paired_command('sw_sharpness_sweep.py', args)} "
               f"--sharpness {' '.join(f'{s:g}' for s in args.sharpness)}{' --tta ' + ' '.join(args.tta) if args.tta else ''}")
    body = "\n".join([
        (f"{models_line(args, suite, photos)} "
         f"SW output with the adapters blended by p ** sw_sharpness (renormalised), identity share p(clean) and "
         f"plausibility gates as stored{'; tta: the views of each crop the estimator averages' if args.tta else ''}. Command: `{command}`. {dt.date.today()}, {seconds:.0f} s."),
        "", ("PSNR (dB, RGB), clean capped at 100 dB; group averages are means of the task means, averaged over the "
             "models; clean and mild rows pool the models' inputs."), "",
        table(summarize(runs, without, settings), "sw_sharpness, tta" if args.tta else "sw_sharpness"), "", task_table(runs, without, settings), ""])
    print(body)
    if not args.no_write:
        prefix = "Estimator test-time views" if args.tta else "SW sharpness"
        update_section(ROOT / "docs" / "BENCHMARKS.md", f"{prefix}: {args.title or suite.name}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
