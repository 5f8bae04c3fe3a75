"""Prefect tasks of the add_degradation flow: read the base bundle's lineage, check the new type, train
the estimator over several datasets, tag the new bundle and publish the before/after report.

The logic lives in :mod:`abair_core.training.extension`; these tasks read and write the MLflow registry
and runs, and pass only small values (URIs, versions, dicts).
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import mlflow
import yaml
from mlflow import MlflowClient
from prefect import task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from abair_core.bundle import read_bundle_manifest
from abair_core.evaluation.suite import load_suite
from abair_core.training.config import TrainConfig
from abair_core.training.extension import (
    check_added_degradation,
    check_photo,
    register_added_degradation,
    render_extension_report,
    resolved_estimator_steps,
    suite_with_task,
    train_extended_estimator_file,
)
from tasks.registry import (
    BUNDLE_MODEL_NAME,
    adapter_model_name,
    register_component,
    resolve_model,
)
from tasks.sample_photos import resolve_photo_source
from tasks.tracking import TRAIN_ALL_CUMULATIVE_METRIC, artifact_key, phase_run

__all__ = [
    "TRAIN_ALL_SECONDS_TAG",
    "adapter_lineage",
    "base_bundle_info",
    "check_degradation_task",
    "prepare_suite_task",
    "publish_extension_report",
    "read_base_bundle",
    "recorded_train_config",
    "tag_model_version",
    "train_extended_estimator",
]

TRAIN_ALL_SECONDS_TAG = "train_all.seconds"
TRAIN_CONFIG_ARTIFACT = "train_config.json"


def _train_all_seconds(client: MlflowClient, version: Any) -> float | None:
    """The full train_all wall time behind a bundle version: its tag, else its run's train_all parent.

    A resumed train_all's last invocation is only part of the work: the cumulative time over every
    invocation is preferred, the last invocation's total is the fallback for runs made before it existed.
    """
    if TRAIN_ALL_SECONDS_TAG in version.tags:
        return float(version.tags[TRAIN_ALL_SECONDS_TAG])
    if not version.run_id:
        return None
    parent = client.get_run(version.run_id).data.tags.get("mlflow.parentRunId")
    if not parent:
        return None
    metrics = client.get_run(parent).data.metrics
    value = metrics.get(TRAIN_ALL_CUMULATIVE_METRIC, metrics.get("time/total_seconds"))
    return None if value is None else float(value)


def base_bundle_info(model_uri: str, dst_dir: str) -> dict[str, Any]:
    """Pin the base bundle to one version: its local copy, adapters (bundle.json order), component pins."""
    resolved = resolve_model(model_uri, dst_dir)
    if resolved.name != BUNDLE_MODEL_NAME:
        raise ValueError(f"{model_uri}: the base must be a registered '{BUNDLE_MODEL_NAME}' bundle version")
    client = MlflowClient()
    version = client.get_model_version(resolved.name, resolved.version)
    components = {k[len("component."):]: v for k, v in version.tags.items() if k.startswith("component.")}
    adapters = list(read_bundle_manifest(resolved.bundle_dir)["adapters"])
    expected = {"backbone", "estimator", *(f"adapter.{a}" for a in adapters)}
    if set(components) != expected:
        raise ValueError(f"{resolved.uri}: its tags pin {sorted(components)}, expected {sorted(expected)}")
    return {"name": resolved.name, "version": resolved.version, "model_uri": resolved.uri,
            "bundle_dir": str(resolved.bundle_dir), "adapters": adapters, "components": components,
            "train_all_seconds": _train_all_seconds(client, version)}


@task(name="read_base_bundle", cache_policy=NO_CACHE, retries=2)
def read_base_bundle(model_uri: str, dst_dir: str) -> dict[str, Any]:
    """The base bundle (resolved once, at flow start) and the versions of its components."""
    return base_bundle_info(model_uri, dst_dir)


@task(name="recorded_train_config", cache_policy=NO_CACHE, retries=2)
def recorded_train_config(model_name: str, version: str) -> dict[str, Any]:
    """The training recipe logged by the phase run that produced a component version."""
    run_id = MlflowClient().get_model_version(model_name, version).run_id
    with tempfile.TemporaryDirectory(prefix="abair-recipe-") as folder:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=TRAIN_CONFIG_ARTIFACT,
                                                       dst_path=folder)
        except Exception as exc:
            raise LookupError(f"{model_name} v{version}: its run {run_id} recorded no {TRAIN_CONFIG_ARTIFACT} "
                              f"({exc}); pass --train-config") from exc
        return json.loads(Path(path).read_text())


@task(name="adapter_lineage", cache_policy=NO_CACHE, retries=2)
def adapter_lineage(adapter_versions: dict[str, str]) -> dict[str, dict[str, str | None]]:
    """Per adapter: the dataset manifest it was trained on (its version tag), its run id and version."""
    client = MlflowClient()
    out: dict[str, dict[str, str | None]] = {}
    for name, version in adapter_versions.items():
        mv = client.get_model_version(adapter_model_name(name), version)
        out[name] = {"manifest_uri": mv.tags.get("dataset.manifest_uri"), "run_id": mv.run_id,
                     "version": str(version)}
    return out


@task(name="check_degradation", cache_policy=NO_CACHE, task_run_name="check-{name}")
def check_degradation_task(name: str, spec: dict[str, Any], source: str, include: str, storage_root: str,
                           storage_options: dict[str, Any], existing: list[str], replace: bool) -> dict[str, Any]:
    """Validate the new degradation on a real training photo (refuse it before any work); returns its spec."""
    photos = resolve_photo_source(source, storage_root, storage_options)
    options = storage_options if "://" in photos and not photos.startswith("file://") else {}
    photo = check_photo(photos, include, options)
    degradation = check_added_degradation(name, spec, photo, existing, replace)
    register_added_degradation(name, spec)
    return {"name": degradation.name, "spec": dict(spec), "checked_on": list(photo.shape)}


@task(name="train_extended_estimator", cache_policy=NO_CACHE, task_run_name="phase3-{config.name}")
def train_extended_estimator(config: TrainConfig, manifests: list[str], dataset_hash: str,
                             adapters: dict[str, dict[str, str]], work_dir: str, experiment_id: str,
                             parent_run_id: str | None = None,
                             storage_options: dict[str, Any] | None = None,
                             base_estimator: dict[str, str] | None = None) -> dict[str, Any]:
    """Phase III over every adapter on the union of their datasets; registers ``abair-estimator``.

    ``base_estimator`` (``{"version", "path"}``): where ``phase3.warm_start: base`` starts; recorded as the
    run's and the version's tag ``abair.warm_start_from`` (``estimator@v<version>``, or ``scratch``) and
    returned as ``warm_start`` (``from``, ``version``, ``classes``). It is also the estimator whose answers
    ``phase3.base_distillation`` keeps (tag ``abair.base_distillation``: the weight used) and, with
    ``phase3.trainable: new_classes``, the estimator whose weights all stay, gated by the new class's expert
    (tag ``abair.estimator_trainable``).
    """
    path = str(Path(work_dir) / "estimator.safetensors")
    pins = {f"adapter.{n}.version": a["version"] for n, a in adapters.items()}
    resume = str(Path(work_dir) / ("resume-phase3-" + "-".join(f"{n}{a['version']}" for n, a in adapters.items())
                                   + ".safetensors"))
    base_path = base_estimator["path"] if base_estimator else None
    with phase_run("phase3", config, manifests[-1], dataset_hash, experiment_id,
                   resolved_estimator_steps(config, base_path),
                   parent_run_id, {**pins, "dataset.manifest_uris": json.dumps(manifests)}) as run:
        summary = train_extended_estimator_file(config, manifests, {n: a["path"] for n, a in adapters.items()},
                                                path, run.callback, resume, storage_options, base_path)
        version = base_estimator["version"] if base_estimator and summary["warm_start"]["from"] else None
        summary["warm_start"]["version"] = version
        start = f"estimator@v{version}" if version else "scratch"
        tags = {"abair.warm_start_from": start, "abair.base_distillation": str(summary["base_distillation"]),
                "abair.estimator_trainable": summary["trainable"]}
        for key, value in tags.items():
            run.client.set_tag(run.run_id, key, value)
        ref = register_component("estimator", path, run_id=run.run_id, tags={**run.tags, **tags})
    return {**summary, "version": ref.version, "model_uri": ref.uri, "run_id": run.run_id, "path": path}


@task(name="prepare_suite", cache_policy=NO_CACHE)
def prepare_suite_task(suite_path: str, name: str, spec: dict[str, Any], out_path: str) -> dict[str, Any]:
    """The suite to score with: ``suite_path`` itself, or a copy with a task for ``name`` added."""
    suite = load_suite(suite_path)
    extended, group, task_id = suite_with_task(suite, name, spec)
    if extended is suite:
        return {"path": suite_path, "group": group, "task_id": task_id, "added": False}
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(yaml.safe_dump(extended.model_dump(mode="json", exclude_none=True), sort_keys=False))
    return {"path": str(out), "group": group, "task_id": task_id, "added": True}


@task(name="tag_model_version", cache_policy=NO_CACHE, retries=2)
def tag_model_version(name: str, version: str, tags: dict[str, str]) -> None:
    """Set version tags (what the new bundle was made from)."""
    client = MlflowClient()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


@task(name="publish_extension_report", cache_policy=NO_CACHE)
def publish_extension_report(report: dict[str, Any], report_dir: str, run_id: str | None = None) -> dict[str, str]:
    """Write report.md and report.json, publish the Markdown as an artifact and log both to the run."""
    out = Path(report_dir)
    out.mkdir(parents=True, exist_ok=True)
    markdown = render_extension_report(report)
    (out / "report.md").write_text(markdown)
    (out / "report.json").write_text(json.dumps(report, indent=2, sort_keys=True))
    create_markdown_artifact(markdown=markdown, key=artifact_key("abair-add-degradation", report["degradation"]),
                             description=f"add-degradation {report['degradation']}: before/after")
    if run_id is not None:
        client = MlflowClient()
        for file in ("report.md", "report.json"):
            client.log_artifact(run_id, str(out / file), "add_degradation")
    return {"markdown": str(out / "report.md"), "json": str(out / "report.json")}
