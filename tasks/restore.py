"""Prefect tasks of the restore_archive flow: resolve the model, plan, restore chunks, close the run, publish.

Each task wraps one step of :mod:`abair_core.restore` and passes small values only: URIs, settings,
version strings, a chunk's work items, summary dicts. ``restore_chunk`` runs on Dask workers, which
load the model once: restorers live in a per-process cache keyed by bundle, mode, tile and overlap (and
the worker thread, because a ``Restorer`` folds adapter weights into its backbone per image and so must
not be shared by two threads at once). Only transient storage errors are retried, never bad input.

Storage options (``endpoint_url`` …) from the pipeline config become fsspec's per-protocol defaults
(``fsspec.config.conf``) in every process that touches the store, so the core's plain ``s3://`` URIs
reach the configured endpoint; credentials stay in the environment.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import fsspec.config
from fsspec.core import split_protocol
from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE

from abair_core.config import PROJECT_ROOT, load_config
from abair_core.io.storage import get_fs
from abair_core.restore.chunk import PERMANENT_ERRORS, TRANSIENT_ERRORS, restore_chunk
from abair_core.restore.manifest import merge_manifests, write_run_manifest
from abair_core.restore.outcome import finish_run
from abair_core.restore.plan import Chunk, RestoreSettings, plan_work
from abair_core.restore.progress import chunk_summary
from abair_core.restore.report import render_report_markdown
from tasks.pipeline_config import PipelineConfig

__all__ = [
    "DEFAULT_RESTORE_CONFIG",
    "MODEL_LOADS",
    "apply_storage_options",
    "cached_restorer",
    "finish_run_task",
    "forget_listings",
    "is_transient_storage_error",
    "load_restore_settings",
    "plan_work_task",
    "publish_report_task",
    "resolve_model_task",
    "restore_chunk_task",
]

DEFAULT_RESTORE_CONFIG = PROJECT_ROOT / "configs" / "restore" / "default.yaml"
LOCAL_PROTOCOLS = ("", "file", "local")

#: Restorers built in this process, keyed by (bundle dir, mode, tile, overlap, clean weight, estimator crops,
#: tone check, thread id).
_RESTORERS: dict[tuple[Any, ...], Any] = {}
_RESTORERS_LOCK = threading.Lock()
#: How many times this process loaded a model, per bundle directory (tests and benchmarks read it).
MODEL_LOADS: Counter[str] = Counter()


def load_restore_settings(
    restore_config: str | Path | None = None,
    mode: str | None = None,
    include: str | None = None,
    min_confidence: float | None = None,
    reprocess_on_new_model: bool | None = None,
    clean_weight: float | None = None,
    tone_check: bool | None = None,
) -> RestoreSettings:
    """The run's settings: the YAML (default ``configs/restore/default.yaml``) with non-None overrides."""
    path = Path(restore_config) if restore_config is not None else DEFAULT_RESTORE_CONFIG
    settings = load_config(path, RestoreSettings)
    overrides = {"mode": mode, "include": include, "min_confidence": min_confidence,
                 "reprocess_on_new_model": reprocess_on_new_model, "clean_weight": clean_weight,
                 "tone_check": tone_check}
    return RestoreSettings.model_validate(
        {**settings.model_dump(), **{k: v for k, v in overrides.items() if v is not None}}
    )


def apply_storage_options(storage_options: Mapping[str, Any], *uris: str) -> None:
    """Make ``storage_options`` fsspec's defaults for the (non-local) protocols of ``uris`` in this process."""
    if not storage_options:
        return
    for uri in uris:
        protocol = split_protocol(str(uri))[0] or ""
        if protocol not in LOCAL_PROTOCOLS:
            fsspec.config.conf.setdefault(protocol, {}).update(dict(storage_options))


def forget_listings(*uris: str) -> None:
    """Drop this process's cached directory listings for ``uris``' filesystems (s3fs caches them), so a
    run plans and closes on what the store holds now, including what other processes wrote."""
    for uri in uris:
        get_fs(uri)[0].invalidate_cache()


def is_transient_storage_error(task: Any, task_run: Any, state: Any) -> bool:
    """Retry condition: a connection, timeout or other OS error, never missing files, permissions or bad input."""
    exc = state.data if isinstance(state.data, BaseException) else state.result(raise_on_failure=False)
    return isinstance(exc, TRANSIENT_ERRORS) and not isinstance(exc, (*PERMANENT_ERRORS, ValueError))


def cached_restorer(model: Mapping[str, str], settings: RestoreSettings) -> Any:
    """This worker thread's ``Restorer`` for ``model`` (``resolve_model_task``'s dict), loaded on first use.

    The bundle directory the flow resolved is used when this process can see it; otherwise (a remote Dask
    cluster) the concrete ``models:/abair/<version>`` is downloaded here, once, with the MLflow settings of
    the worker's environment.
    """
    key = (model["bundle_dir"], settings.mode, settings.tile, settings.overlap, settings.clean_weight,
           settings.estimator_crops, settings.tone_check, threading.get_ident())
    with _RESTORERS_LOCK:
        restorer = _RESTORERS.get(key)
    if restorer is not None:
        return restorer
    import torch

    from abair_core.bundle import Restorer, load_bundle

    bundle_dir = Path(model["bundle_dir"])
    if not (bundle_dir / "bundle.json").is_file() and model["uri"].startswith("models:/"):
        from tasks.registry import resolve_model

        bundle_dir = resolve_model(model["uri"]).bundle_dir
    device = "cuda" if torch.cuda.is_available() else "cpu"
    restorer = Restorer(load_bundle(bundle_dir, device=device), settings.mode, settings.tile, settings.overlap,
                        device=device, clean_weight=settings.clean_weight, estimator_crops=settings.estimator_crops,
                        tone_check=settings.tone_check)
    with _RESTORERS_LOCK:
        MODEL_LOADS[model["bundle_dir"]] += 1
        return _RESTORERS.setdefault(key, restorer)


@task(name="resolve_model", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=is_transient_storage_error)
def resolve_model_task(model: str, pipeline: PipelineConfig | None) -> dict[str, str]:
    """Pin ``model`` (``models:/abair@champion``, ``models:/abair/3`` or a local bundle) to one version, once."""
    from tasks.registry import configure_mlflow, resolve_model

    if model.startswith("models:/"):
        configure_mlflow(pipeline)
    resolved = resolve_model(model, cache_dir=pipeline.mlflow.model_cache if pipeline is not None else None)
    return {"name": resolved.name, "version": resolved.version, "uri": resolved.uri,
            "bundle_dir": str(resolved.bundle_dir)}


@task(name="plan_work", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=is_transient_storage_error)
def plan_work_task(src: str, dst: str, settings: RestoreSettings, model_version: str,
                   storage_options: dict[str, Any]) -> dict[str, Any]:
    """Merge every earlier run's rows (a killed run's finished chunks count), then plan this run."""
    apply_storage_options(storage_options, src, dst)
    forget_listings(src, dst)
    plan = plan_work(src, dst, settings, model_version, merge_manifests(dst))
    return {"run_id": plan.run_id, "work_manifest_uri": plan.work_manifest_uri, "images": plan.num_items,
            "chunks": len(plan.chunks), "skipped": len(plan.skipped), "refused": list(plan.refused)}


@task(name="restore_chunk", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30],
      retry_condition_fn=is_transient_storage_error, task_run_name="restore-chunk-{chunk.id}")
def restore_chunk_task(chunk: Chunk, dst: str, model: dict[str, str], settings: RestoreSettings, run_id: str,
                       storage_options: dict[str, Any]) -> dict[str, Any]:
    """Restore one chunk on a worker, persist its rows at once (a later kill keeps them), return counts."""
    apply_storage_options(storage_options, dst, *(item.uri for item in chunk.items[:1]))
    restorer = cached_restorer(model, settings)
    rows = restore_chunk(chunk, dst, restorer, settings, model["version"], run_id)
    write_run_manifest(dst, run_id, rows, chunk_id=chunk.id)
    return chunk_summary(chunk.id, rows)


@task(name="finish_run", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[2, 10],
      retry_condition_fn=is_transient_storage_error)
def finish_run_task(dst: str, plan: dict[str, Any], settings: RestoreSettings, model: dict[str, str],
                    wall_seconds: float, chunk_errors: dict[str, str], details: dict[str, Any],
                    storage_options: dict[str, Any]) -> dict[str, Any]:
    """Account for every planned image, write the run's results, merge the current view, write the report."""
    apply_storage_options(storage_options, dst)
    forget_listings(dst)
    return finish_run(dst, plan["run_id"], settings, model["version"], wall_seconds, skipped=plan["skipped"],
                      refused=[tuple(r) for r in plan["refused"]], chunk_errors=chunk_errors,
                      details={**details, "model_uri": model["uri"]})


@task(name="publish_report", cache_policy=NO_CACHE)
def publish_report_task(summary: dict[str, Any]) -> None:
    """The report as a Prefect Markdown artifact, and failures and quarantined images as a table."""
    create_markdown_artifact(render_report_markdown(summary), key="abair-restore-report",
                             description=f"restore_archive run {summary.get('run_id')}")
    problems = [{"status": status, **row} for status in ("failures", "quarantined") for row in summary[status]]
    if problems:
        create_table_artifact(problems[:1000], key="abair-restore-problems",
                              description="Images that failed or were quarantined (first 1000)")
