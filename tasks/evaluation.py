"""Prefect tasks of the evaluate / promote / baseline flows: each wraps one core or registry call.

Numbers come from ``abair_core.evaluation``; this module runs them, writes the report folder,
publishes Markdown artifacts (``abair-benchmark-<group>``), logs MLflow runs and tags versions.
One MLflow evaluation run exists per (model version, suite hash): a rerun logs into the same run.
"""

from __future__ import annotations

import getpass
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import mlflow
from mlflow import MlflowClient
from prefect import task
from prefect.artifacts import create_markdown_artifact

from abair_core.evaluation import (
    decide,
    headline_metrics,
    load_gate,
    metric_dict,
    render_confusion,
    render_report,
    run_benchmark,
)
from abair_core.evaluation.tables import render_group_section
from abair_core.training.baseline import backbone_architecture_key
from tasks.registry import download_component, get_alias_version, set_alias, set_headline_metrics

__all__ = [
    "BASELINE_MODEL_NAME",
    "benchmark",
    "decide_promotion",
    "find_baseline",
    "find_evaluation_run",
    "log_evaluation",
    "record_promotion",
    "register_baseline",
    "register_baseline_file",
    "write_report",
]

BASELINE_MODEL_NAME = "abair-baseline"
BASELINE_FILE = "backbone.safetensors"
EVAL_KIND = "evaluation"


@task(name="benchmark", task_run_name="benchmark-{suite_path}")
def benchmark(bundle_dir: str, suite_path: str, images: str | None, baselines: dict[str, str],
              report_dir: str, storage_options: dict[str, Any] | None = None, threads: int | None = None) -> dict:
    """Score a bundle on a suite; write ``scores.json`` and sample crops into the report folder.

    ``threads`` None keeps the process's torch threads (``OMP_NUM_THREADS``): an evaluation has the CPU to itself.
    """
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    scores = run_benchmark(bundle_dir, suite_path, images, baselines, out / "samples", storage_options, threads)
    (out / "scores.json").write_text(json.dumps(scores, indent=2, sort_keys=True))
    return scores


@task(name="write-report")
def write_report(scores: dict, report_dir: str, heading: str, note: str = "", publish: bool = True) -> str:
    """Write report.md, table-<group>.md and confusion.md; publish each as a Prefect artifact."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.md").write_text(render_report(scores, heading, note))
    sections = {group: render_group_section(scores, group) for group in scores["groups"]}
    sections["estimator"] = render_confusion(scores)
    for key, markdown in sections.items():
        (out / ("confusion.md" if key == "estimator" else f"table-{key}.md")).write_text(markdown + "\n")
        if publish:
            create_markdown_artifact(markdown=f"{heading}\n\n{markdown}", key=f"abair-benchmark-{key.replace('_', '-')}",
                                     description=f"{heading}: {key} (suite {scores['suite']})")
    return str(out / "report.md")


def find_evaluation_run(model_name: str, version: str, suite_hash: str) -> str | None:
    """The id of the evaluation run of (model version, suite hash), when one exists."""
    runs = mlflow.search_runs(
        filter_string=(f"tags.`abair.kind` = '{EVAL_KIND}' and tags.`abair.model` = '{model_name}' and "
                       f"tags.`abair.model_version` = '{version}' and tags.`abair.suite_hash` = '{suite_hash}'"),
        output_format="list", max_results=1, search_all_experiments=True)
    return runs[0].info.run_id if runs else None


@task(name="log-evaluation")
def log_evaluation(scores: dict, model_name: str, version: str, report_dir: str | None = None) -> str:
    """Log every metric into the (version, suite hash) run; link it from the version with tags."""
    run_id = find_evaluation_run(model_name, version, scores["suite_hash"])
    with mlflow.start_run(run_id=run_id, run_name=f"evaluate-{model_name}-v{version}-{scores['suite']}",
                          nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"abair.kind": EVAL_KIND, "abair.model": model_name, "abair.model_version": version,
                         "abair.suite": scores["suite"], "abair.suite_hash": scores["suite_hash"]})
        mlflow.log_metrics(metric_dict(scores))
        if report_dir is not None:
            mlflow.log_artifacts(report_dir, "report")
    if not version.startswith("local:"):
        client = MlflowClient()
        client.set_model_version_tag(model_name, version, f"eval.{scores['suite']}.run_id", run.info.run_id)
        client.set_model_version_tag(model_name, version, f"eval.{scores['suite']}.suite_hash", scores["suite_hash"])
        set_headline_metrics(model_name, version, headline_metrics(scores))
    return run.info.run_id


@task(name="find-baseline")
def find_baseline(backbone_file: str, dst_dir: str) -> dict | None:
    """The latest ``abair-baseline`` version whose architecture matches the bundle's backbone, downloaded."""
    key = backbone_architecture_key(backbone_file)
    client = MlflowClient()
    try:
        versions = client.search_model_versions(f"name = '{BASELINE_MODEL_NAME}'")
    except mlflow.exceptions.MlflowException:
        return None
    matching = sorted((int(v.version) for v in versions if v.tags.get("baseline.architecture") == key), reverse=True)
    if not matching:
        return None
    path = download_component(BASELINE_MODEL_NAME, matching[0], dst_dir)
    return {"version": str(matching[0]), "path": str(path)}


@task(name="register-baseline")
def register_baseline(backbone_file: str, tags: dict[str, Any], run_id: str) -> str:
    """Register a baseline backbone file (logged to ``run_id``) as a new ``abair-baseline`` version."""
    return register_baseline_file(backbone_file, tags, run_id)


def register_baseline_file(backbone_file: str, tags: dict[str, Any], run_id: str) -> str:
    """Log the file as ``baseline/backbone.safetensors`` of the run and register it; returns the version.

    The version carries the component tags ``download_component`` needs and the architecture key
    ``find_baseline`` matches bundles by.
    """
    client = MlflowClient()
    with tempfile.TemporaryDirectory(prefix="abair-baseline-") as staging:
        staged = Path(staging) / BASELINE_FILE
        shutil.copyfile(backbone_file, staged)
        client.log_artifact(run_id, str(staged), "baseline")
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/baseline"
    try:
        client.get_registered_model(BASELINE_MODEL_NAME)
    except mlflow.exceptions.MlflowException:
        client.create_registered_model(BASELINE_MODEL_NAME, description="all-in-one baselines: same backbone, "
                                       "same training budget, no adapters")
    version_tags = {**{k: str(v) for k, v in tags.items()}, "component.kind": "backbone",
                    "component.file": BASELINE_FILE, "baseline.architecture": backbone_architecture_key(backbone_file)}
    return str(client.create_model_version(BASELINE_MODEL_NAME, source=source, run_id=run_id,
                                           tags=version_tags).version)


@task(name="decide-promotion")
def decide_promotion(challenger: dict, champion: dict, gate_path: str) -> dict:
    """Apply the gate in ``gate_path`` to two score dictionaries of the same suite."""
    return decide(challenger, champion, load_gate(gate_path)).to_dict()


@task(name="record-promotion")
def record_promotion(model_name: str, challenger: str, champion: str | None, decision: dict,
                     challenger_headline: dict, champion_headline: dict, suite_hash: str) -> str | None:
    """Tag the challenger with the decision, both scores, who and when; move champion if it passed."""
    client = MlflowClient()
    tags = {"promotion.decision": "promoted" if decision["passed"] else "refused",
            "promotion.by": getpass.getuser(), "promotion.at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "promotion.champion_version": champion or "", "promotion.suite_hash": suite_hash,
            "promotion.failures": json.dumps(decision["failures"])[:5000],
            "promotion.failing_tasks": ",".join(decision["failing_tasks"]),
            "promotion.challenger_scores": json.dumps(challenger_headline, sort_keys=True)[:5000],
            "promotion.champion_scores": json.dumps(champion_headline, sort_keys=True)[:5000]}
    for key, value in tags.items():
        client.set_model_version_tag(model_name, challenger, key, value)
    if decision["passed"]:
        set_alias(model_name, "champion", challenger)
    return get_alias_version(model_name, "champion")
