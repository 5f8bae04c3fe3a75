"""Two evaluations of the same suite side by side: every task's PSNR before and after, OH and SW, and the oracle.

Usage::

    python benchmarks/model_comparison.py BEFORE_REPORT_DIR AFTER_REPORT_DIR --section "..." [--note "..."]

Each folder is what ``abair evaluate --report-dir`` writes (``scores.json``). Rows follow the after-model's
groups (known, unseen, mixed, clean, mild); a task the before-model has no score for shows N/A. Below the
table: the estimator accuracy of both, and the known average under OH and SW. Rewrites the docs/BENCHMARKS.md
section given by ``--section`` (``--no-write``: print only).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import update_section

ROOT = Path(__file__).resolve().parents[1]
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("before", help="report folder of the first evaluation (scores.json)")
    parser.add_argument("after", help="report folder of the second evaluation")
    parser.add_argument("--names", nargs=2, default=("before", "after"), help="column labels of the two models")
    parser.add_argument("--section", required=True)
    parser.add_argument("--note", default="", help="Markdown put before the table")
    parser.add_argument("--doc", default=str(ROOT / "docs/BENCHMARKS.md"))
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    before, after = (json.loads((Path(d) / "scores.json").read_text()) for d in (args.before, args.after))
    body = (args.note.strip() + "\n\n" if args.note else "") + render(before, after, tuple(args.names))
    print(body)
    if not args.no_write:
        update_section(Path(args.doc), args.section, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
