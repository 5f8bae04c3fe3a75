"""Training flows: pretrain (Phase I), adapters (Phase II), estimator (Phase III), bundle and train_all.

Every phase flow takes the training config (a YAML path or a mapping), the dataset manifest URI and
the registered versions it builds on, downloads those components from the MLflow registry, trains
one phase (its own MLflow run, step metrics, a progress line and a Prefect progress artifact) and
registers a new version. ``train_all`` chains synthesize -> pretrain -> adapters -> estimator ->
bundle and records every finished step in ``<storage root>/runs/<name>/<dataset hash>/state.json``,
so a rerun after a crash continues from the last finished step (and, inside a phase, from the
phase's last resume checkpoint in the local work folder).
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from mlflow import MlflowClient
from prefect import flow, get_run_logger

from abair_core.data.dataset import read_dataset_manifest
from abair_core.io.storage import join_uri
from abair_core.training.config import TrainConfig
from abair_core.training.run_state import RunState, config_hash
from flows.runtime import pipeline_from
from flows.synthesize import load_train_config, synthesize
from tasks.pipeline_config import PipelineConfig
from tasks.registry import BACKBONE_MODEL_NAME, ESTIMATOR_MODEL_NAME, adapter_model_name, configure_mlflow
from tasks.tracking import TRAIN_ALL_CUMULATIVE_METRIC, git_commit, start_run
from tasks.training import (
    assemble_bundle_task,
    download_component_task,
    register_bundle_task,
    train_adapter,
    train_backbone,
    train_estimator,
)

CONCURRENCY_ENV = "ABAIR_ADAPTER_CONCURRENCY"
PHASES = ("synthesize", "pretrain", "adapters", "estimator", "bundle")


def work_dir(pipe: PipelineConfig, config: TrainConfig, dataset_hash: str) -> Path:
    """The local folder of a run's component files and resume checkpoints.

    Under the storage root when it is a local folder; in the system temp folder for object stores
    (component files must be local to be registered). Keyed by the config hash, so a changed recipe
    never resumes from another recipe's checkpoints.
    """
    root = pipe.storage.root
    parts = urlsplit(root)
    if parts.scheme in ("", "file"):
        base = Path(unquote(parts.path if parts.scheme else root))
    else:
        base = Path(tempfile.gettempdir()) / "abair-runs" / parts.scheme / (parts.netloc + parts.path).strip("/")
    path = base / "runs" / config.name / dataset_hash / config_hash(config)
    path.mkdir(parents=True, exist_ok=True)
    return path


def default_concurrency() -> int:
    """Adapters trained at once: ``$ABAIR_ADAPTER_CONCURRENCY``, else one per 8 CPU cores (one on a GPU)."""
    if os.environ.get(CONCURRENCY_ENV):
        return max(1, int(os.environ[CONCURRENCY_ENV]))
    import torch

    if torch.cuda.is_available():
        return 1
    return max(1, (os.cpu_count() or 1) // 8)


def _setup(train_config: str | dict[str, Any], pipeline: str | None) -> tuple[PipelineConfig, TrainConfig, str]:
    pipe = pipeline_from(pipeline)
    return pipe, load_train_config(train_config), configure_mlflow(pipe)


def _dataset(manifest_uri: str, pipe: PipelineConfig) -> dict[str, str]:
    _, digest = read_dataset_manifest(manifest_uri, pipe.storage.storage_options)
    return {"manifest_uri": manifest_uri, "dataset_hash": digest}


@flow(name="pretrain")
def pretrain(train_config: str | dict[str, Any], dataset_manifest: str, pipeline: str | None = None,
             parent_run_id: str | None = None) -> dict[str, Any]:
    """Phase I on a synthesized dataset; returns the new ``abair-backbone`` version and the phase summary."""
    pipe, config, experiment_id = _setup(train_config, pipeline)
    dataset = _dataset(dataset_manifest, pipe)
    folder = work_dir(pipe, config, dataset["dataset_hash"])
    return train_backbone(config, dataset, str(folder), experiment_id, parent_run_id,
                          dict(pipe.storage.storage_options))


@flow(name="adapters")
def adapters(train_config: str | dict[str, Any], dataset_manifest: str, backbone_version: str,
             pipeline: str | None = None, only: list[str] | None = None, concurrency: int | None = None,
             parent_run_id: str | None = None, state_uri: str | None = None,
             warm_start: dict[str, dict[str, str]] | None = None) -> dict[str, dict[str, Any]]:
    """Phase II: one adapter per degradation (``only`` a subset) on ``abair-backbone`` ``backbone_version``.

    Adapters are independent: up to ``concurrency`` train at once (default :func:`default_concurrency`);
    with 1 they train one after another in the flow's own thread.
    With ``state_uri`` each finished adapter is recorded in the run state as ``adapter/<id>`` at once.
    ``warm_start``: old adapters (id -> ``{"version", "path"}``) a new one may start from
    (``phase2.warm_start: best``; add-degradation passes the base bundle's).
    Returns adapter id -> summary with its registered ``version``.
    """
    pipe, config, experiment_id = _setup(train_config, pipeline)
    logger = get_run_logger()
    dataset = _dataset(dataset_manifest, pipe)
    folder = work_dir(pipe, config, dataset["dataset_hash"])
    options = dict(pipe.storage.storage_options)
    backbone_path = download_component_task(BACKBONE_MODEL_NAME, str(backbone_version),
                                            str(folder / "registry" / f"backbone-v{backbone_version}"))
    backbone = {"version": str(backbone_version), "path": backbone_path}
    names = list(only) if only is not None else list(config.degradations)
    width = concurrency or default_concurrency()
    state = RunState.load(state_uri, config_hash(config), options) if state_uri else None
    logger.info("training %d adapters, %d at a time, on abair-backbone v%s", len(names), width, backbone_version)
    results: dict[str, dict[str, Any]] = {}
    args = (dataset, backbone, str(folder), experiment_id, parent_run_id, options, warm_start)
    for start in range(0, len(names), width):
        group = names[start:start + width]
        if width == 1:
            # One at a time: train in the flow's own thread. On CPU a torch task in a task-runner thread,
            # after this thread has used OpenMP (Phase I), ran 1.4-1.7x slower per step (two OpenMP
            # thread pools on the same cores; docs/BENCHMARKS.md "Demo timing: adapters in the flow's thread").
            done = {name: train_adapter(config, name, *args) for name in group}
        else:
            futures = {name: train_adapter.submit(config, name, *args) for name in group}
            done = {name: future.result() for name, future in futures.items()}
        for name, summary in done.items():
            results[name] = summary
            if state is not None:
                state.record(f"adapter/{name}", summary)
    return results


@flow(name="estimator")
def estimator(train_config: str | dict[str, Any], dataset_manifest: str, adapter_versions: dict[str, str],
              pipeline: str | None = None, parent_run_id: str | None = None) -> dict[str, Any]:
    """Phase III over the given ``abair-adapter-<id>`` versions; returns the new ``abair-estimator`` version."""
    pipe, config, experiment_id = _setup(train_config, pipeline)
    dataset = _dataset(dataset_manifest, pipe)
    folder = work_dir(pipe, config, dataset["dataset_hash"])
    ordered = [n for n in config.degradations if n in adapter_versions]
    found = {n: {"version": str(adapter_versions[n]),
                 "path": download_component_task(adapter_model_name(n), str(adapter_versions[n]),
                                                 str(folder / "registry" / f"adapter-{n}-v{adapter_versions[n]}"))}
             for n in ordered}
    return train_estimator(config, dataset, found, str(folder), experiment_id, parent_run_id,
                           dict(pipe.storage.storage_options))


@flow(name="bundle")
def bundle(train_config: str | dict[str, Any], backbone_version: str, adapter_versions: dict[str, str],
           estimator_version: str, pipeline: str | None = None, dataset_hash: str | None = None,
           parent_run_id: str | None = None) -> dict[str, Any]:
    """Assemble the pinned component versions into a bundle and register ``abair`` (alias challenger).

    Returns the bundle's ``name``, ``version``, ``model_uri``, ``aliases`` and the pinned ``components``.
    """
    pipe, config, experiment_id = _setup(train_config, pipeline)
    ordered = [n for n in config.degradations if n in adapter_versions]
    versions = {"backbone": str(backbone_version), "estimator": str(estimator_version),
                **{f"adapter.{n}": str(adapter_versions[n]) for n in ordered}}
    folder = work_dir(pipe, config, dataset_hash or "unknown") / "registry"
    backbone_path = download_component_task(BACKBONE_MODEL_NAME, versions["backbone"],
                                            str(folder / f"backbone-v{versions['backbone']}"))
    adapter_paths = {n: download_component_task(adapter_model_name(n), versions[f"adapter.{n}"],
                                                str(folder / f"adapter-{n}-v{versions[f'adapter.{n}']}"))
                     for n in ordered}
    estimator_path = download_component_task(ESTIMATOR_MODEL_NAME, versions["estimator"],
                                             str(folder / f"estimator-v{versions['estimator']}"))
    pin = "-".join(f"{k}{v}" for k, v in sorted(versions.items()))
    directory = str(folder.parent / "bundles" / pin / "bundle")
    assemble_bundle_task(directory, backbone_path, adapter_paths, estimator_path, versions)
    commit = git_commit()
    tags = {"abair.train_name": config.name, **({"dataset.hash": dataset_hash} if dataset_hash else {}),
            **({"git.commit": commit} if commit else {})}
    run_id = start_run(experiment_id, f"{config.name}-bundle", {**tags, "abair.phase": "bundle"}, parent_run_id)
    ref = register_bundle_task(directory, versions, tags, run_id)
    aliases = sorted(a for a, v in MlflowClient().get_registered_model(ref["name"]).aliases.items()
                     if str(v) == ref["version"])
    return {**ref, "aliases": aliases, "components": versions, "bundle_dir": directory}


@flow(name="train_all")
def train_all(train_config: str | dict[str, Any], pipeline: str | None = None) -> dict[str, Any]:
    """synthesize -> pretrain -> adapters -> estimator -> bundle, resuming from the last finished step.

    Returns ``dataset`` (the synthesize summary), ``versions`` (backbone, adapter.<id>, estimator,
    bundle), ``bundle`` (registry summary), ``timings`` (seconds per phase and ``total``; 0.0 for a
    skipped phase), ``skipped`` (steps reused from the state file), ``state_uri`` and ``parent_run_id``.
    """
    began = time.perf_counter()
    logger = get_run_logger()
    pipe, config, experiment_id = _setup(train_config, pipeline)
    options = dict(pipe.storage.storage_options)
    timings = dict.fromkeys(PHASES, 0.0)
    clock = time.perf_counter()
    data = synthesize(train_config, pipeline)
    timings["synthesize"] = time.perf_counter() - clock
    dataset_hash, manifest = data["dataset_hash"], data["manifest_uri"]
    state_uri = join_uri(pipe.storage.root, f"runs/{config.name}/{dataset_hash}/state.json")
    state = RunState.load(state_uri, config_hash(config), options)
    client = MlflowClient()
    parent = state.info.get("parent_run_id")
    if parent is None:
        parent = start_run(experiment_id, f"{config.name}-train_all",
                           {"abair.train_name": config.name, "dataset.hash": dataset_hash,
                            "dataset.manifest_uri": manifest, "git.commit": git_commit()})
        state.set_info(parent_run_id=parent)
    else:
        client.update_run(parent, status="RUNNING")
    prior_seconds = float(state.info.get("cumulative_seconds", 0.0))  # earlier, interrupted invocations
    skipped: list[str] = [s for s in state.steps if s in ("pretrain", "estimator", "bundle")
                          or s.startswith("adapter/")]
    if skipped:
        logger.info("resuming %s: finished steps %s are reused", state_uri, skipped)
    try:
        clock = time.perf_counter()
        if not state.done("pretrain"):
            state.record("pretrain", pretrain(train_config, manifest, pipeline, parent))
            timings["pretrain"] = time.perf_counter() - clock
        backbone_version = state.get("pretrain")["version"]
        pending = [n for n in config.degradations if not state.done(f"adapter/{n}")]
        if pending:
            clock = time.perf_counter()
            adapters(train_config, manifest, backbone_version, pipeline, only=pending, parent_run_id=parent,
                     state_uri=state_uri)
            timings["adapters"] = time.perf_counter() - clock
            state = RunState.load(state_uri, config_hash(config), options)
        adapter_versions = {n: state.get(f"adapter/{n}")["version"] for n in config.degradations}
        if not state.done("estimator"):
            clock = time.perf_counter()
            state.record("estimator", estimator(train_config, manifest, adapter_versions, pipeline, parent))
            timings["estimator"] = time.perf_counter() - clock
        estimator_version = state.get("estimator")["version"]
        if not state.done("bundle"):
            clock = time.perf_counter()
            state.record("bundle", bundle(train_config, backbone_version, adapter_versions, estimator_version,
                                          pipeline, dataset_hash, parent))
            timings["bundle"] = time.perf_counter() - clock
    except BaseException:
        # an interrupted run's time still counts toward the recipe's cumulative training time
        state = RunState.load(state_uri, config_hash(config), options)
        state.set_info(cumulative_seconds=prior_seconds + time.perf_counter() - began)
        client.set_terminated(parent, "FAILED")
        raise
    timings["total"] = time.perf_counter() - began
    for phase, seconds in timings.items():
        client.log_metric(parent, f"time/{phase}_seconds", seconds)
    state = RunState.load(state_uri, config_hash(config), options)
    state.set_info(cumulative_seconds=prior_seconds + timings["total"])
    client.log_metric(parent, TRAIN_ALL_CUMULATIVE_METRIC, prior_seconds + timings["total"])
    client.set_terminated(parent, "FINISHED")
    versions = {"backbone": backbone_version, **{f"adapter.{n}": v for n, v in adapter_versions.items()},
                "estimator": estimator_version, "bundle": state.get("bundle")["version"]}
    logger.info("train_all %s done in %.1f s: %s", config.name, timings["total"],
                ", ".join(f"{p} {timings[p]:.1f} s" for p in PHASES))
    return {"dataset": data, "versions": versions, "bundle": state.get("bundle"), "timings": timings,
            "skipped": skipped, "state_uri": state_uri, "parent_run_id": parent}
