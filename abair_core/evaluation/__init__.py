"""Benchmarks: suites, the runner, paper-shaped tables and the promotion gate."""

from abair_core.evaluation.gate import GateConfig, GateDecision, decide, load_gate
from abair_core.evaluation.images import load_images, load_pairs
from abair_core.evaluation.runner import (
    METHOD_LABELS,
    PSNR_CAP,
    EvaluationResult,
    evaluate_pairs,
    evaluate_suite,
    run_benchmark,
    save_samples,
    score_images,
)
from abair_core.evaluation.scores import group_average, headline_metrics, metric_dict, overall_average
from abair_core.evaluation.suite import BenchmarkSuite, BenchmarkTask, PairedFolders, load_suite, suite_hash
from abair_core.evaluation.tables import render_confusion, render_group_table, render_report

__all__ = [
    "METHOD_LABELS",
    "PSNR_CAP",
    "BenchmarkSuite",
    "BenchmarkTask",
    "EvaluationResult",
    "GateConfig",
    "GateDecision",
    "PairedFolders",
    "decide",
    "evaluate_pairs",
    "evaluate_suite",
    "group_average",
    "headline_metrics",
    "load_gate",
    "load_images",
    "load_pairs",
    "load_suite",
    "metric_dict",
    "overall_average",
    "render_confusion",
    "render_group_table",
    "render_report",
    "run_benchmark",
    "save_samples",
    "score_images",
    "suite_hash",
]
