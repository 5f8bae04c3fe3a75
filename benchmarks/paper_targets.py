"""Check an evaluation against the paper's targets and the do-no-harm targets, from its ``scores.json``.

Usage: ``python benchmarks/paper_targets.py abair-work/reports/abair-v3-small/scores.json --section "small: targets"``

Targets (issue "Evaluation tables like the paper's" and "Do no harm"):
- ABAIR SW beats the all-in-one baseline on the average of known, of unseen and of mixed tasks;
- SW >= OH on mixed tasks; oracle - SW under 0.3 dB on known tasks;
- estimator accuracy >= 95% on single known degradations (clean and mild rows of the matrix left out);
- clean images come back at >= 40 dB on average and >= 35 dB for every image (SW and OH);
- every mild task is on average no worse than its input (SW and OH).

Prints a Markdown table (measured value, target, met or not) and, with ``--section``, replaces that
``## `` section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import ROOT, update_section

from abair_core.evaluation.scores import group_average

BASELINE = "all_in_one"


def known_accuracy(estimator: Mapping[str, Any]) -> float | None:
    """Share of correct arg-max classes over the confusion rows of degradations (row ``clean`` left out)."""
    classes, hits, total = estimator["classes"], 0, 0
    for label, row in zip(estimator["labels"], estimator["matrix"]):
        if label == "clean":
            continue
        hits += row[classes.index(label)]
        total += sum(row)
    return hits / total if total else None


def _value(scores: Mapping[str, Any], task: str, method: str, key: str = "psnr") -> float | None:
    return scores["scores"].get(task, {}).get(method, {}).get(key)


def _fmt(value: float | None, unit: str = " dB") -> str:
    return "N/A" if value is None else f"{value:.2f}{unit}"


def target_rows(scores: Mapping[str, Any]) -> list[tuple[str, str, str, bool | None]]:
    """(check, measured, target, met) for every target the scores can answer."""
    rows: list[tuple[str, str, str, bool | None]] = []
    groups = scores["groups"]
    for group in ("known", "unseen", "mixed"):
        if group not in groups:
            continue
        sw, base = group_average(scores, group, "sw"), group_average(scores, group, BASELINE)
        met = None if sw is None or base is None else sw > base
        rows.append((f"SW vs all-in-one baseline, {group} average", f"{_fmt(sw)} vs {_fmt(base)}", "SW higher", met))
    if "mixed" in groups:
        sw, oh = group_average(scores, "mixed", "sw"), group_average(scores, "mixed", "oh")
        rows.append(("SW vs OH, mixed average", f"{_fmt(sw)} vs {_fmt(oh)}", "SW >= OH",
                     None if sw is None or oh is None else sw >= oh))
    if "known" in groups:
        sw, oracle = group_average(scores, "known", "sw"), group_average(scores, "known", "oracle")
        gap = None if sw is None or oracle is None else oracle - sw
        rows.append(("oracle - SW, known average", _fmt(gap), "< 0.30 dB", None if gap is None else gap < 0.3))
    accuracy = known_accuracy(scores["estimator"])
    rows.append(("estimator accuracy, single known degradations",
                 "N/A" if accuracy is None else f"{accuracy:.1%}", ">= 95%", None if accuracy is None else accuracy >= 0.95))
    for method in ("sw", "oh"):
        for task in groups.get("clean", []):
            mean, worst = _value(scores, task, method), _value(scores, task, method, "psnr_min")
            rows.append((f"{method.upper()} clean images vs input: mean / worst", f"{_fmt(mean)} / {_fmt(worst)}",
                         ">= 40 / >= 35 dB", None if mean is None or worst is None else mean >= 40 and worst >= 35))
        for task in groups.get("mild", []):
            out, inp = _value(scores, task, method), _value(scores, task, "input")
            rows.append((f"{method.upper()} mild `{task}` vs its input", f"{_fmt(out)} vs {_fmt(inp)}", "no worse",
                         None if out is None or inp is None else out >= inp))
    return rows


def render(rows: list[tuple[str, str, str, bool | None]]) -> str:
    lines = ["| check | measured | target | met |", "|---|---|---|---|"]
    for check, measured, target, met in rows:
        lines.append(f"| {check} | {measured} | {target} | {'n/a' if met is None else ('yes' if met else '**no**')} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scores", help="scores.json of an evaluation report folder")
    parser.add_argument("--section", default=None, help="docs/BENCHMARKS.md section title to replace")
    parser.add_argument("--doc", default=str(ROOT / "docs/BENCHMARKS.md"))
    args = parser.parse_args(argv)
    scores = json.loads(Path(args.scores).read_text())
    table = render(target_rows(scores))
    print(table)
    if args.section:
        note = (f"Suite `{scores['suite']}` (hash `{scores['suite_hash']}`), "
                f"{sum(scores['samples_per_task'].values())} scored inputs. Reproduce: "
                f"`python benchmarks/paper_targets.py <report>/scores.json`.\n\n")
        update_section(Path(args.doc), args.section, note + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
