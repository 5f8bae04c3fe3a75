"""Summarise one or more ``abair add-degradation`` reports (a chain such as jpeg -> bit_depth -> snow) in
one ``## `` section of docs/BENCHMARKS.md.

Usage::

    python benchmarks/extension_chain.py abair-work/add-degradation/reports/jpeg-v5 \
        abair-work/add-degradation/reports/bit_depth-v6 abair-work/add-degradation/reports/snow-v7 \
        --section "Adding degradations: small" --note "how the base was trained"

Each report folder is what the flow writes (``report.json``). Per step the table gives the new task's
PSNR before (the base treating it as unseen) and after (OH, SW, and the oracle: the new adapter alone),
the worst change of the known tasks and of every other task (unseen, mixed, clean and mild too) under OH and SW
against the issue's 0.2 dB, the trainable share
and the wall time against the base's full ``train_all``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import ROOT, update_section

from abair_core.training.extension import worst_changes


def _db(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "N/A"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def step_row(report: dict[str, Any]) -> str:
    """One Markdown row of the summary table for one report."""
    task = report["comparison"]["new_task"]
    methods = task["methods"]
    worst = report["old_tasks_worst_change_db"]
    within = {m: ("yes" if ok else "no") if ok is not None else "N/A"
              for m, ok in report["old_tasks_within_tolerance"].items()}
    tasks = report["comparison"].get("tasks")
    known = worst_changes(report["comparison"], ("known",)) if tasks else {"oh": None, "sw": None}
    tol = report["tolerance_db"]
    verdicts = {m: "N/A" if known[m] is None else ("yes" if known[m] >= -tol else "no") for m in known}
    wall = f"{report['wall_seconds']:.0f}"
    if report.get("wall_share"):
        wall += f" ({100 * report['wall_share']:.0f}%)"
    cells = [
        f"`{report['degradation']}` v{report['base']['version']} -> v{report['new']['version']}",
        f"{task['id']}", _db(methods["input"]["before"]),
        f"{_db(methods['oh']['before'])} / {_db(methods['sw']['before'])}",
        f"{_db(methods['oh']['after'])} / {_db(methods['sw']['after'])}",
        _db(methods.get("oracle", {}).get("after")),
        _db(methods["sw"]["gain"], signed=True),
        f"{_db(known['oh'], True)} ({verdicts['oh']}) / {_db(known['sw'], True)} ({verdicts['sw']})",
        f"{_db(worst['oh'], True)} ({within['oh']})", f"{_db(worst['sw'], True)} ({within['sw']})",
        f"{100 * report['parameters']['trainable_share']:.1f}%", wall,
    ]
    return "| " + " | ".join(cells) + " |"


def render(reports: list[dict[str, Any]]) -> str:
    """The summary table of a chain of reports."""
    tol = reports[0]["tolerance_db"] if reports else 0.2
    lines = [
        ("| step | new task | input | before OH / SW (unseen) | after OH / SW | after oracle | SW gain "
         f"| worst known task OH / SW (within {tol} dB) | worst other task OH | worst other task SW "
         "| trainable share | wall s (vs train_all) |"),
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [step_row(r) for r in reports]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("reports", nargs="+", help="add-degradation report folders (report.json), in order")
    parser.add_argument("--section", required=True)
    parser.add_argument("--note", default="", help="Markdown put before the table")
    parser.add_argument("--doc", default=str(ROOT / "docs/BENCHMARKS.md"))
    args = parser.parse_args(argv)
    reports = [json.loads((Path(folder) / "report.json").read_text()) for folder in args.reports]
    body = (args.note.strip() + "\n\n" if args.note else "") + render(reports)
    print(body)
    update_section(Path(args.doc), args.section, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
