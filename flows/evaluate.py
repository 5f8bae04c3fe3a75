"""`abair evaluate`: benchmark one bundle on a suite, log it to MLflow, publish tables and plots.

The model is resolved to one version at start. Its numbers go to the MLflow run of (version, suite
hash), linked from the version by the tag ``eval.<suite>.run_id``, with headline numbers as
``metric.*`` version tags; tables go to Prefect artifacts ``abair-benchmark-<group>`` and, with
``radar.png``, ``samples.png`` and ``scores.json``, to a report folder. The latest ``abair-baseline``
version whose backbone architecture matches the bundle's becomes the ``all_in_one`` row.
"""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from typing import Any

from prefect import flow

from abair_core.evaluation import headline_metrics, load_suite
from flows.runtime import pipeline_from
from tasks.evaluation import benchmark, decide_promotion, find_baseline, log_evaluation, write_report
from tasks.pipeline_config import PipelineConfig
from tasks.plots import radar_plot, sample_grid
from tasks.registry import configure_mlflow, resolve_model
from tasks.sample_photos import resolve_photo_source

__all__ = ["evaluate", "score_model"]

DEFAULT_GATE = "configs/promotion/gate.yaml"


def _report_dir(config: PipelineConfig, name: str, version: str, suite: str) -> str:
    root = config.storage.root
    base = Path(root[len("file://"):]) if root.startswith("file://") else Path("abair-work")
    return str(base / "reports" / re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{name}-v{version}-{suite}"))


def score_model(model: str, suite: str, config: PipelineConfig, images: str | None = None,
                report_dir: str | None = None, role: str = "") -> tuple[dict[str, Any], dict[str, Any]]:
    """Evaluate one model (resolved once) inside the calling flow; returns (summary, scores)."""
    chosen = load_suite(suite)
    source = images or chosen.images
    photos = resolve_photo_source(source, config.storage.root, config.storage.storage_options) if source else None
    resolved = resolve_model(model, cache_dir=config.mlflow.model_cache)
    out = report_dir or _report_dir(config, resolved.name, resolved.version, chosen.name)
    with tempfile.TemporaryDirectory(prefix="abair-evaluate-") as work:
        baseline = find_baseline(str(resolved.bundle_dir / "backbone.safetensors"), str(Path(work) / "baseline"))
        baselines = {"all_in_one": baseline["path"]} if baseline else {}
        scores = benchmark(str(resolved.bundle_dir), suite, photos, baselines, out,
                           config.storage.storage_options)
    heading = f"{role}{resolved.name} version {resolved.version} on suite {chosen.name}"
    note = (f"Preset `{scores['model']['preset']}`: a demo-sized model is a smoke test, not the paper's numbers."
            if scores["model"]["preset"] in ("tiny", "custom") else "")
    report = write_report(scores, out, heading, note)
    radar_plot(scores, str(Path(out) / "radar.png"), heading)
    sample_grid(str(Path(out) / "samples"), str(Path(out) / "samples.png"))
    run_id = log_evaluation(scores, resolved.name, resolved.version, out)
    summary = {"model": resolved.uri, "name": resolved.name, "version": resolved.version, "suite": chosen.name,
               "suite_hash": scores["suite_hash"], "run_id": run_id, "report_dir": out, "report": report,
               "scores": str(Path(out) / "scores.json"), "headline": headline_metrics(scores),
               "baseline_version": baseline["version"] if baseline else None}
    return summary, scores


@flow(name="evaluate")
def evaluate(model: str = "models:/abair@challenger", suite: str = "configs/benchmark/demo.yaml",
             pipeline: str | None = None, images: str | None = None, compare_with: str | None = None,
             report_dir: str | None = None) -> dict:
    """Benchmark ``model`` on ``suite`` (optionally on another image folder ``images``).

    ``compare_with`` (e.g. ``models:/abair@champion``) is scored on the same suite in the same flow run
    and the default gate's verdict is reported (nothing moves: promotion is ``promote``). Returns the
    model, version, suite hash, MLflow run id, report folder and headline numbers.
    """
    config = pipeline_from(pipeline)
    configure_mlflow(config)
    summary, scores = score_model(model, suite, config, images, report_dir)
    if compare_with:
        other, other_scores = score_model(compare_with, suite, config, images, None, role="compared: ")
        summary["compare"] = other
        summary["gate"] = decide_promotion(scores, other_scores, DEFAULT_GATE)
    return summary
