"""Prefect tasks of the training flows: one phase each, tracked in MLflow and registered as a version.

Each training task opens the phase's MLflow run (``tasks.tracking.phase_run``), calls one core step
of :mod:`abair_core.training.steps` with the run's metrics callback and a mid-phase resume checkpoint,
then registers the component file with tags linking it to what it was trained on. Tasks take and
return small values: configs, paths, URIs, versions and metric dicts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from abair_core.bundle import assemble_bundle
from abair_core.training.config import TrainConfig
from abair_core.training.steps import train_adapter_file, train_backbone_file, train_estimator_file
from tasks.registry import download_component, register_bundle, register_component
from tasks.tracking import phase_run


def _result(summary: dict[str, Any], ref: Any, run_id: str, path: str) -> dict[str, Any]:
    return {**summary, "version": ref.version, "model_uri": ref.uri, "run_id": run_id, "path": path}


@task(name="train_backbone", cache_policy=NO_CACHE, task_run_name="phase1-{config.name}")
def train_backbone(config: TrainConfig, dataset: dict[str, str], work_dir: str, experiment_id: str,
                   parent_run_id: str | None = None, storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Phase I: train and register ``abair-backbone`` (tags: dataset hash and manifest, git commit)."""
    path = str(Path(work_dir) / "backbone.safetensors")
    with phase_run("phase1", config, dataset["manifest_uri"], dataset["dataset_hash"], experiment_id,
                   config.phase1.steps, parent_run_id) as run:
        summary = train_backbone_file(config, dataset["manifest_uri"], path, run.callback,
                                      str(Path(work_dir) / "resume-phase1.safetensors"), storage_options)
        ref = register_component("backbone", path, tags=run.tags, run_id=run.run_id)
    return _result(summary, ref, run.run_id, path)


@task(name="train_adapter", cache_policy=NO_CACHE, task_run_name="phase2-{name}")
def train_adapter(config: TrainConfig, name: str, dataset: dict[str, str], backbone: dict[str, str],
                  work_dir: str, experiment_id: str, parent_run_id: str | None = None,
                  storage_options: dict[str, Any] | None = None,
                  warm_start: dict[str, dict[str, str]] | None = None) -> dict[str, Any]:
    """Phase II for one degradation on a registered backbone; registers ``abair-adapter-<name>``.

    ``warm_start``: old adapter id -> ``{"version", "path"}`` candidates for ``phase2.warm_start: best``;
    the chosen one is recorded on the run and the registered version (``abair.warm_start_from``,
    ``<id>@v<version>``, or ``zero``) and returned as ``warm_start`` (``from``, ``version``, ``scores``).
    """
    path = str(Path(work_dir) / f"adapter-{name}.safetensors")
    resume = str(Path(work_dir) / f"resume-phase2-{name}-backbone-v{backbone['version']}.safetensors")
    candidates = {n: c["path"] for n, c in (warm_start or {}).items()}
    with phase_run(f"phase2/{name}", config, dataset["manifest_uri"], dataset["dataset_hash"], experiment_id,
                   config.phase2.steps, parent_run_id, {"backbone.version": backbone["version"]}) as run:
        summary = train_adapter_file(config, name, dataset["manifest_uri"], backbone["path"], path, run.callback,
                                     resume, storage_options, candidates)
        source = summary["warm_start"]["from"]
        version = warm_start[source]["version"] if source and warm_start else None
        summary["warm_start"]["version"] = version
        start = f"{source}@v{version}" if version else "zero"
        run.client.set_tag(run.run_id, "abair.warm_start_from", start)
        for key, value in summary["warm_start"]["scores"].items():
            run.client.log_metric(run.run_id, f"warm_start/psnr_{key}", value)
        ref = register_component("adapter", path, tags={**run.tags, "abair.warm_start_from": start},
                                 adapter_id=name, run_id=run.run_id)
    return _result(summary, ref, run.run_id, path)


@task(name="train_estimator", cache_policy=NO_CACHE, task_run_name="phase3-{config.name}")
def train_estimator(config: TrainConfig, dataset: dict[str, str], adapters: dict[str, dict[str, str]],
                    work_dir: str, experiment_id: str, parent_run_id: str | None = None,
                    storage_options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Phase III over the given adapters; registers ``abair-estimator`` tagged with their versions."""
    path = str(Path(work_dir) / "estimator.safetensors")
    pins = {f"adapter.{n}.version": a["version"] for n, a in adapters.items()}
    resume = str(Path(work_dir) / ("resume-phase3-" + "-".join(f"{n}{a['version']}" for n, a in adapters.items())
                                   + ".safetensors"))
    with phase_run("phase3", config, dataset["manifest_uri"], dataset["dataset_hash"], experiment_id,
                   config.phase3.steps, parent_run_id, pins) as run:
        summary = train_estimator_file(config, dataset["manifest_uri"], {n: a["path"] for n, a in adapters.items()},
                                       path, run.callback, resume, storage_options)
        ref = register_component("estimator", path, tags=run.tags, run_id=run.run_id)
    return _result(summary, ref, run.run_id, path)


@task(name="download_component", cache_policy=NO_CACHE, task_run_name="download-{name}-v{version}", retries=2)
def download_component_task(name: str, version: str, dst_dir: str) -> str:
    """A registered component's file on local disk (for a phase that builds on it)."""
    return str(download_component(name, version, dst_dir))


@task(name="assemble_bundle", cache_policy=NO_CACHE)
def assemble_bundle_task(directory: str, backbone_path: str, adapter_paths: dict[str, str], estimator_path: str,
                         versions: dict[str, str]) -> str:
    """Copy the component files into a bundle directory after checking every fingerprint link."""
    assemble_bundle(directory, backbone_path, adapter_paths, estimator_path, versions)
    return directory


@task(name="register_bundle", cache_policy=NO_CACHE)
def register_bundle_task(bundle_dir: str, versions: dict[str, str], tags: dict[str, str],
                         run_id: str | None = None) -> dict[str, str]:
    """Register ``abair`` (alias challenger; champion too when it is the first bundle)."""
    ref = register_bundle(bundle_dir, versions, tags=tags, run_id=run_id)
    return {"name": ref.name, "version": ref.version, "model_uri": ref.uri}
