"""Copy an evaluation report's tables (RGB PSNR/SSIM per group, the estimator's confusion matrix) and its
target checks into one ``## `` section of docs/BENCHMARKS.md.

Usage: ``python benchmarks/report_section.py abair-work/reports/abair-v3-demo --section "Demo model: evaluation"
--note "what was evaluated and how it was trained"``. The report folder is what ``abair evaluate`` (or
``abair promote``) writes; the target checks come from ``paper_targets.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import ROOT, update_section
from paper_targets import render, target_rows

GROUP_ORDER = ("known", "unseen", "mixed", "clean", "mild")


def rgb_part(table_markdown: str) -> str:
    """The RGB half of a group table file (the Y-channel half follows its own 'PSNR (dB) / SSIM on Y' line)."""
    text = table_markdown.split("PSNR (dB) / SSIM on Y")[0].rstrip()
    return text.replace("### ", "#### ") + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("report", help="evaluation report folder (scores.json, table-*.md, confusion.md)")
    parser.add_argument("--section", required=True)
    parser.add_argument("--note", default="", help="Markdown put before the tables")
    parser.add_argument("--doc", default=str(ROOT / "docs/BENCHMARKS.md"))
    args = parser.parse_args(argv)
    folder = Path(args.report)
    scores = json.loads((folder / "scores.json").read_text())
    parts = [args.note.strip() + "\n"] if args.note else []
    for group in GROUP_ORDER:
        table = folder / f"table-{group}.md"
        if group in scores["groups"] and table.exists():
            parts.append(rgb_part(table.read_text()))
    parts.append("#### Degradation estimator\n\n" + (folder / "confusion.md").read_text().strip() + "\n")
    parts.append("#### Targets\n\n" + render(target_rows(scores)))
    body = "\n".join(parts)
    print(body)
    update_section(Path(args.doc), args.section, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
