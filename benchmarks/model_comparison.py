"""Two evaluations of the same suite side by side: every task's PSNR before and after, OH and SW, and the oracle.

Usage::

    python benchmarks/model_comparison.py BEFORE_REPORT_DIR AFTER_REPORT_DIR --section "..." [--note "..."]
    python benchmarks/model_comparison.py DIR DIR DIR ... --summary --names v1 v2 v3 ... --section "..."
    python benchmarks/model_comparison.py BASE1 AFTER1 BASE2 AFTER2 ... --steps --names step1 step2 ... --section "..."

Each folder is what ``abair evaluate --report-dir`` writes (``scores.json``). Rows follow the after-model's
groups (known, unseen, mixed, clean, mild); a task the before-model has no score for shows N/A. Below the
table: the estimator accuracy of both, and the known average under OH and SW. ``--summary`` takes any number of
evaluations and prints one row each instead: known average OH / SW, the clean row (SW), the mild rows' mean SW
minus input, every unseen task under OH, and the estimator's accuracy. ``--steps`` takes (base, after) pairs,
one row per retraining: each known task's OH change, the worst against 0.2 dB, the clean row's and each unseen
task's change (issue 6's "every known task within 0.2 dB under OH"). Rewrites the docs/BENCHMARKS.md section
given by ``--section`` (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import ROOT, update_section

METHODS = ("oh", "sw")


def _psnr(scores: dict[str, Any], task: str, method: str) -> float | None:
    value = scores.get("scores", {}).get(task, {}).get(method, {}).get("psnr")
    return None if value is None else float(value)


def _db(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "N/A"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _diff(after: float | None, before: float | None) -> float | None:
    return None if after is None or before is None else after - before


def _change(before: dict[str, Any], after: dict[str, Any], task: str, method: str = "oh") -> float | None:
    """``task``'s PSNR after minus before under ``method`` (None where either has no score)."""
    return _diff(_psnr(after, task, method), _psnr(before, task, method))


def render(before: dict[str, Any], after: dict[str, Any], names: tuple[str, str]) -> str:
    """The Markdown table and its summary lines."""
    b, a = names
    lines = [f"| task | group | input | {b} OH / SW | {a} OH / SW | {a} oracle | OH change | SW change |",
             "|---|---|---:|---:|---:|---:|---:|---:|"]
    for group, tasks in after["groups"].items():
        for task in tasks:
            old = [_psnr(before, task, m) for m in METHODS]
            new = [_psnr(after, task, m) for m in METHODS]
            lines.append(f"| {task} | {group} | {_db(_psnr(after, task, 'input'))} | {_db(old[0])} / {_db(old[1])} | "
                         f"{_db(new[0])} / {_db(new[1])} | {_db(_psnr(after, task, 'oracle'))} | "
                         f"{_db(_diff(new[0], old[0]), True)} | {_db(_diff(new[1], old[1]), True)} |")
    known = after["groups"].get("known", [])
    lines.append("")
    for label, scores in ((b, before), (a, after)):
        means = {m: statistics.fmean(v for t in known if (v := _psnr(scores, t, m)) is not None) for m in METHODS}
        lines.append(f"- {label}: known average OH {means['oh']:.2f} / SW {means['sw']:.2f} dB; estimator accuracy "
                     f"{100 * scores['estimator']['accuracy']:.1f}% over {len(scores['estimator']['classes'])} classes.")
    return "\n".join(lines) + "\n"


def summary(evaluations: list[dict[str, Any]], names: list[str]) -> str:
    """One row per evaluation: known OH / SW, clean SW, mild SW - input, each unseen task's OH, estimator accuracy."""
    groups = evaluations[0]["groups"]
    unseen = groups.get("unseen", [])
    head = ["model", "known OH / SW", "clean SW", "mild SW - input", *(f"{t} OH" for t in unseen), "estimator"]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, scores in zip(names, evaluations, strict=True):
        known = {m: statistics.fmean(v for t in groups.get("known", []) if (v := _psnr(scores, t, m)) is not None)
                 for m in METHODS}
        mild = [_diff(_psnr(scores, t, "sw"), _psnr(scores, t, "input")) for t in groups.get("mild", [])]
        mild_mean = statistics.fmean(v for v in mild if v is not None) if any(v is not None for v in mild) else None
        cells = [name, f"{known['oh']:.2f} / {known['sw']:.2f}",
                 _db(statistics.fmean(_psnr(scores, t, "sw") or 0.0 for t in groups.get("clean", ["clean"]))),
                 _db(mild_mean, True), *(_db(_psnr(scores, t, "oh")) for t in unseen),
                 f"{100 * scores['estimator']['accuracy']:.1f}% ({len(scores['estimator']['classes'])} classes)"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def steps(evaluations: list[dict[str, Any]], names: list[str], tolerance_db: float = 0.2) -> str:
    """One row per retraining (report pairs: base, after): every known task's OH change, the worst and whether it
    is within ``tolerance_db``, the clean row's SW change and each unseen task's OH change."""
    if len(evaluations) % 2:
        raise ValueError(f"--steps takes report folders in pairs (base, after), got {len(evaluations)}")
    groups = evaluations[1]["groups"]
    known, unseen = groups.get("known", []), groups.get("unseen", [])
    head = ["step", *known, "worst known OH", "clean SW", *(f"{t} OH" for t in unseen)]
    lines = ["| " + " | ".join(head) + " |", "|---|" + "---:|" * (len(head) - 1)]
    for name, before, after in zip(names, evaluations[::2], evaluations[1::2], strict=True):
        changes = [_change(before, after, t) for t in known]
        worst = min((c for c in changes if c is not None), default=None)
        verdict = "" if worst is None else (" (within)" if worst >= -tolerance_db else " (over)")
        cells = [name, *(_db(c, True) for c in changes), _db(worst, True) + verdict,
                 _db(_change(before, after, "clean", "sw"), True),
                 *(_db(_change(before, after, t), True) for t in unseen)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", help="report folders (scores.json): two, or any number with --summary")
    parser.add_argument("--names", nargs="+", default=None, help="labels of the models, in order")
    parser.add_argument("--summary", action="store_true", help="one row per evaluation instead of a task table")
    parser.add_argument("--steps", action="store_true",
                        help="report folders in pairs (base, after), one row per pair: each known task's OH change")
    parser.add_argument("--section", required=True)
    parser.add_argument("--note", default="", help="Markdown put before the table")
    parser.add_argument("--doc", default=str(ROOT / "docs/BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    evaluations = [json.loads((Path(d) / "scores.json").read_text()) for d in args.reports]
    names = args.names or [Path(d).name for d in args.reports]
    if args.steps:
        if len(evaluations) % 2 or len(names) != len(evaluations) // 2:
            parser.error(f"--steps takes report folders in pairs and one --names label per pair "
                         f"({len(evaluations)} folders, {len(names)} names)")
        table = steps(evaluations, names)
    elif len(names) != len(evaluations):
        parser.error(f"{len(names)} --names for {len(evaluations)} report folders")
    elif args.summary:
        table = summary(evaluations, names)
    elif len(evaluations) == 2:
        table = render(evaluations[0], evaluations[1], (names[0], names[1]))
    else:
        parser.error("a side-by-side table compares exactly two report folders (or pass --summary)")
    body = (args.note.strip() + "\n\n" if args.note else "") + table
    print(body)
    if not args.no_write:
        update_section(Path(args.doc), args.section, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
