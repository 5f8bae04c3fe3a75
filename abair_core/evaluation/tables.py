"""Markdown tables shaped like the paper's: one row per method, one ``PSNR / SSIM`` column per task.

Table 1 (known tasks + average), Table 4 (unseen), Table 5 (mixed) are the same layout over
different groups, so any group a suite lists (``clean``, ``mild`` later) renders the same way. N/A
marks a method that has no number for a task (the oracle of an unseen task without its adapter);
an average with any N/A task is N/A.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from abair_core.evaluation.scores import group_average

__all__ = ["GROUP_TITLES", "render_confusion", "render_group_table", "render_report"]

GROUP_TITLES = {
    "known": "Known tasks (paper Table 1)",
    "unseen": "Unseen tasks (paper Table 4)",
    "mixed": "Mixed degradations (paper Table 5)",
    "clean": "Clean inputs (do no harm)",
    "mild": "Mild degradations (do no harm)",
}


def _cell(values: Mapping[str, float] | None, psnr_key: str, ssim_key: str) -> str:
    if not values or psnr_key not in values:
        return "N/A"
    return f"{values[psnr_key]:.2f} / {values[ssim_key]:.3f}"


def render_group_table(scores: Mapping[str, Any], group: str, luma: bool = False,
                       methods: Sequence[str] | None = None) -> str:
    """A Markdown table of one group: rows = methods, columns = tasks then Average (PSNR dB / SSIM)."""
    tasks = scores["groups"][group]
    methods = list(methods or scores["methods"])
    labels = scores.get("method_labels", {})
    pk, sk = ("psnr_y", "ssim_y") if luma else ("psnr", "ssim")
    header = ["Method", *tasks, "Average"]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|"]
    for method in methods:
        cells = [_cell(scores["scores"].get(task, {}).get(method), pk, sk) for task in tasks]
        avg_p = group_average(scores, group, method, pk)
        avg_s = group_average(scores, group, method, sk)
        average = "N/A" if avg_p is None or avg_s is None else f"{avg_p:.2f} / {avg_s:.3f}"
        lines.append("| " + " | ".join([labels.get(method, method), *cells, average]) + " |")
    return "\n".join(lines)


def render_confusion(scores: Mapping[str, Any]) -> str:
    """The estimator's confusion matrix (rows: true class, columns: predicted) and its accuracy."""
    est = scores["estimator"]
    classes, labels, matrix = est["classes"], est["labels"], est["matrix"]
    if not labels:
        return "_No single-degradation task with a matching estimator class was scored._"
    lines = ["| true \\ predicted | " + " | ".join(classes) + " | accuracy |",
             "|---|" + "---:|" * (len(classes) + 1)]
    for label, row in zip(labels, matrix):
        total = sum(row)
        hit = row[classes.index(label)] / total if total else 0.0
        lines.append(f"| {label} | " + " | ".join(str(v) for v in row) + f" | {100 * hit:.1f}% |")
    accuracy = est.get("accuracy")
    lines.append("")
    lines.append(f"Estimator accuracy on single degradations: **{100 * accuracy:.1f}%** "
                 f"({sum(map(sum, matrix))} inputs)" if accuracy is not None else "Estimator accuracy: N/A")
    return "\n".join(lines)


def render_group_section(scores: Mapping[str, Any], group: str) -> str:
    """One group's section: title, RGB table and luma table."""
    title = GROUP_TITLES.get(group, f"{group.capitalize()} tasks")
    return "\n\n".join([
        f"### {title}", "PSNR (dB) / SSIM on RGB:", render_group_table(scores, group),
        "PSNR (dB) / SSIM on Y (BT.601 luma):", render_group_table(scores, group, luma=True),
    ])


def render_report(scores: Mapping[str, Any], heading: str = "", note: str = "") -> str:
    """The whole report: a header (model, suite, hash, sizes), one section per group, the confusion matrix."""
    count = sum(scores.get("samples_per_task", {}).values())
    summary = (f"Suite `{scores['suite']}` (hash `{scores['suite_hash']}`), {len(scores.get('images', []))} "
               f"images, {count} scored inputs, {scores.get('seconds', 0.0):.1f} s.")
    head = [f"## {heading or 'Benchmark'}", "", summary]
    model = scores.get("model")
    if model:
        line = (f"Backbone preset `{model['preset']}`; adapters: {', '.join(model['adapters']) or 'none'}; "
                f"baselines: {', '.join(model['baselines']) or 'none'}.")
        head += ["", line]
    if note:
        head += ["", note]
    parts = ["\n".join(head)]
    parts += [render_group_section(scores, group) for group in scores["groups"]]
    parts += ["### Degradation estimator", render_confusion(scores)]
    return "\n\n".join(parts) + "\n"
