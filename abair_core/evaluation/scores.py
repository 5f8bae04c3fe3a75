"""The JSON shape of one evaluation's numbers, and the averages and metric keys derived from it.

``scores.json`` (what :meth:`EvaluationResult.to_dict` returns) holds ``groups`` (group -> task ids),
``scores`` (task -> method -> {psnr, ssim, psnr_y, ssim_y}; a missing method is N/A) and
``estimator`` (confusion matrix and accuracy). Metric keys follow DESIGN.md:
``eval/<suite>/<task_id>/<method>/<metric>``; group averages use the pseudo task ``avg_<group>``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

__all__ = ["METRICS", "group_average", "headline_metrics", "metric_dict", "overall_average"]

METRICS = ("psnr", "ssim", "psnr_y", "ssim_y")


def group_average(scores: Mapping[str, Any], group: str, method: str, metric: str = "psnr") -> float | None:
    """Mean of ``metric`` over the group's tasks, or None when any task lacks it (N/A)."""
    return _mean(scores, scores["groups"][group], method, metric)


def overall_average(scores: Mapping[str, Any], method: str, metric: str = "psnr",
                    groups: Sequence[str] | None = None) -> float | None:
    """Mean over every task of the given groups (all groups by default), or None when any is N/A."""
    chosen = list(scores["groups"]) if groups is None else list(groups)
    return _mean(scores, [t for g in chosen for t in scores["groups"][g]], method, metric)


def metric_dict(scores: Mapping[str, Any]) -> dict[str, float]:
    """Every number as an MLflow metric: per task and method, per group average, estimator accuracy."""
    suite = scores["suite"]
    out: dict[str, float] = {}
    for task, methods in scores["scores"].items():
        for method, values in methods.items():
            for metric, value in values.items():
                out[f"eval/{suite}/{task}/{method}/{metric}"] = float(value)
    for group in scores["groups"]:
        for method in scores["methods"]:
            for metric in METRICS:
                value = group_average(scores, group, method, metric)
                if value is not None:
                    out[f"eval/{suite}/avg_{group}/{method}/{metric}"] = value
    accuracy = scores["estimator"].get("accuracy")
    if accuracy is not None:
        out[f"eval/{suite}/estimator/accuracy"] = float(accuracy)
    return out


def headline_metrics(scores: Mapping[str, Any], method: str = "sw") -> dict[str, float]:
    """A version's headline numbers: average PSNR per group and overall for ``method``, estimator accuracy."""
    suite = scores["suite"]
    out: dict[str, float] = {}
    for group in scores["groups"]:
        value = group_average(scores, group, method)
        if value is not None:
            out[f"{suite}.{method}.psnr.{group}"] = value
    overall = overall_average(scores, method)
    if overall is not None:
        out[f"{suite}.{method}.psnr.all"] = overall
    accuracy = scores["estimator"].get("accuracy")
    if accuracy is not None:
        out[f"{suite}.estimator.accuracy"] = float(accuracy)
    return out


def _mean(scores: Mapping[str, Any], tasks: Sequence[str], method: str, metric: str) -> float | None:
    values = []
    for task in tasks:
        value = scores["scores"].get(task, {}).get(method, {}).get(metric)
        if value is None or not math.isfinite(value):
            return None
        values.append(float(value))
    return sum(values) / len(values) if values else None
