"""How many inputs of each suite task do estimators send to one class? (Does a new type's expert find it?)

Usage: ``python benchmarks/class_routing.py --target snow --estimator NAME=MODEL [NAME=MODEL ...]
--suite configs/benchmark/small.yaml [--images DIR] [--title "..."] [--no-write]``

``MODEL`` is a bundle directory, a ``models:/`` URI or an estimator ``.safetensors`` file. Every input of every
unpaired task goes through each estimator (with its plausibility gates, as ``abair restore`` uses it); a cell
counts the inputs whose most probable class is ``--target``, and ``a (b)`` where the gates changed that: b
inputs had it as their top class before the gates. The target's own tasks should count high, every other task
zero: an input claimed there is restored with the wrong adapter under OH, and one claimed only before the gates
goes wherever the gate sends it. Rewrites the docs/BENCHMARKS.md section "Class routing: <title>".
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from doc_sections import ROOT, update_section
from plausibility_gate import bundle_dir, suite_inputs, suite_photos

from abair_core.components import load_estimator
from abair_core.models.estimator import DegradationEstimator

GROUPS = ("known", "unseen", "mixed", "clean", "mild")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", required=True, help="the class to count, e.g. snow")
    parser.add_argument("--estimator", nargs="+", required=True, metavar="NAME=MODEL",
                        help="a column name and a bundle directory, models:/ URI or estimator .safetensors file")
    parser.add_argument("--suite", default="configs/benchmark/small.yaml")
    parser.add_argument("--images", default=None, help="photo folder URI when the suite names none")
    parser.add_argument("--title", default=None, help="section title suffix (default: target and suite)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    return parser.parse_args(argv)


def estimator_file(model: str) -> Path:
    """The estimator file of a bundle directory or ``models:/`` URI, or ``model`` itself when it is one."""
    return Path(model) if model.endswith(".safetensors") else bundle_dir(model) / "estimator.safetensors"


@torch.no_grad()
def count_routes(estimators: dict[str, DegradationEstimator], target: str, suite, photos) -> dict[str, dict]:
    """Per task: its input count and, per estimator, how many inputs have ``target`` as the most probable class
    (``row[name]``) and how many had it before the plausibility gates (``row["before"][name]``)."""
    counts: dict[str, dict] = {}
    for _group, task, *_, x in suite_inputs(suite, photos, GROUPS):
        row = counts.setdefault(task.id, {"inputs": 0, **{name: 0 for name in estimators},
                                          "before": {name: 0 for name in estimators}})
        row["inputs"] += 1
        for name, estimator in estimators.items():
            gated = estimator.predict_proba_gated(x)
            row[name] += int(estimator.class_names[int(gated.probabilities[0].argmax())] == target)
            row["before"][name] += int(estimator.class_names[int(gated.raw[0].argmax())] == target)
    return counts


def _cell(after: int, before: int) -> str:
    """``after``, or ``after (before)`` when the gates changed the count."""
    return str(after) if after == before else f"{after} ({before})"


def render(counts: dict[str, dict], names: list[str], target: str) -> str:
    """Markdown: one row per task, one column per estimator (inputs sent to ``target``), then the claims elsewhere."""
    lines = [f"| task | inputs | {' | '.join(names)} |", "|---|---:|" + "---:|" * len(names)]
    for task, row in counts.items():
        lines.append(f"| {task} | {row['inputs']} | "
                     + " | ".join(_cell(row[n], row["before"][n]) for n in names) + " |")
    own = [t for t in counts if target in t]  # the target's own tasks (snow, haze_snow) by id
    others = [row for t, row in counts.items() if t not in own]
    cells = [_cell(sum(r[n] for r in others), sum(r["before"][n] for r in others)) for n in names]
    lines.append(f"| every other task (claimed by mistake) | {sum(r['inputs'] for r in others)} | "
                 + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(1)
    began = time.perf_counter()
    sources = dict(item.split("=", 1) for item in args.estimator)
    estimators = {name: load_estimator(str(estimator_file(model))).eval() for name, model in sources.items()}
    missing = [name for name, e in estimators.items() if args.target not in e.class_names]
    if missing:
        raise SystemExit(f"estimators {missing} have no class {args.target!r}")
    suite, photos = suite_photos(args.suite, args.images)
    body = render(count_routes(estimators, args.target, suite, photos), list(estimators), args.target)
    print(body)
    if not args.no_write:
        title = args.title or f"{args.target}, {suite.name}"
        command = (f"python benchmarks/class_routing.py --target {args.target} --estimator "
                   + " ".join(f"{n}={m}" for n, m in sources.items()) + f" --suite {args.suite}"
                   + (f" --images {args.images}" if args.images else ""))
        note = (f"Inputs of each task whose most probable class is `{args.target}`; `a (b)`: b of them before the "
                f"plausibility gates. Command: `{command}`. "
                f"{dt.date.today().isoformat()}, {time.perf_counter() - began:.0f} s.\n\n")
        update_section(ROOT / "docs/BENCHMARKS.md", f"Class routing: {title}", note + body + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
