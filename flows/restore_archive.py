"""The nightly job: restore every new image under a source prefix into a destination prefix.

Order of work: settings and storage options -> the model pinned to one version (``models:/abair@champion``
is resolved once, here) -> merge every earlier run's rows and plan (list the source, skip what is current,
write a Parquet work manifest of chunks) -> chunks on Dask (an existing scheduler by address, else a
LocalCluster; none is started when nothing is to do), a progress line on stderr and a Prefect progress
artifact as chunks finish -> close the run (every planned image accounted for, results manifest, merged
current view, ``report.json``/``report.md`` under ``DST/_abair/``) -> a Markdown report artifact. The run
ends Failed (raises :class:`RestoreRunFailed`) when more than ``max_failure_rate`` of its images failed
for reasons other than bad input; bad input is quarantined and never fails a run.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any, TextIO

from prefect import flow, get_run_logger, unmapped
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.futures import as_completed

from abair_core.restore.plan import RestoreSettings, read_work_manifest
from abair_core.restore.progress import ProgressMeter, crashed_chunk_summary
from abair_core.restore.report import run_failed
from flows.runtime import dask_cluster, dask_task_runner, pipeline_from
from tasks.pipeline_config import PipelineConfig
from tasks.restore import (
    apply_storage_options,
    finish_run_task,
    load_restore_settings,
    plan_work_task,
    publish_report_task,
    resolve_model_task,
    restore_chunk_task,
)

__all__ = ["RestoreRunFailed", "restore_archive", "restore_chunks"]

PROGRESS_ARTIFACT_KEY = "abair-restore-progress"
ARTIFACT_EVERY_SECONDS = 2.0


class RestoreRunFailed(RuntimeError):
    """More images failed (bad input excluded) than the run's ``max_failure_rate`` allows."""


@flow(name="restore-chunks")
def restore_chunks(work_manifest_uri: str, dst: str, model: dict[str, str], settings: RestoreSettings,
                   run_id: str, storage_options: dict[str, Any]) -> dict[str, str]:
    """Map the planned chunks over this flow's task runner (Dask); report progress as each finishes.

    Returns ``{chunk_id: error}`` for chunks whose task failed after its retries (their images get
    ``failed`` rows when the run closes; the other chunks go on).
    """
    logger = get_run_logger()
    chunks = read_work_manifest(work_manifest_uri)
    futures = restore_chunk_task.map(chunks, unmapped(dst), unmapped(model), unmapped(settings),
                                     unmapped(run_id), unmapped(storage_options))
    sizes = {future: len(chunk.items) for future, chunk in zip(futures, chunks, strict=True)}
    ids = {future: chunk.id for future, chunk in zip(futures, chunks, strict=True)}
    meter = ProgressMeter(total_images=sum(sizes.values()), total_chunks=len(chunks))
    artifact = create_progress_artifact(0.0, key=PROGRESS_ARTIFACT_KEY, description=f"restore run {run_id}")
    errors: dict[str, str] = {}
    published = time.monotonic()
    for future in as_completed(futures):
        try:
            summary = future.result()
        except Exception as exc:  # noqa: BLE001 - a dead chunk must not stop the others
            errors[ids[future]] = f"{type(exc).__name__}: {exc}"
            logger.error("chunk %s failed: %s", ids[future], errors[ids[future]])
            summary = crashed_chunk_summary(ids[future], sizes[future], errors[ids[future]])
        meter.update(summary)
        _print_progress(meter.line(), done=meter.done_chunks == meter.total_chunks)
        if time.monotonic() - published >= ARTIFACT_EVERY_SECONDS or meter.done_chunks == meter.total_chunks:
            update_progress_artifact(artifact, meter.percent, description=meter.line())
            published = time.monotonic()
    return errors


@flow(name="restore_archive")
def restore_archive(
    src: str,
    dst: str,
    model: str = "models:/abair@champion",
    mode: str = "sw",
    include: str = "**/*",
    pipeline: str | None = None,
    restore_config: str | None = None,
    min_confidence: float | None = None,
    reprocess_on_new_model: bool = False,
    dask_address: str | None = None,
    clean_weight: float | None = None,
    tone_check: bool | None = None,
) -> dict[str, Any]:
    """Restore the images under ``src`` (fsspec URI) into ``dst``, mirroring keys; returns the run summary.

    ``model``: a registry URI (resolved to one version at start) or a local bundle / MLflow model directory.
    ``mode``: ``sw``, ``oh`` or an adapter id. ``restore_config``: a RestoreSettings YAML (default
    ``configs/restore/default.yaml``); ``mode``, ``include``, and ``min_confidence`` / ``reprocess_on_new_model``
    / ``clean_weight`` (the archive's prior on clean, docs/DO_NO_HARM.md) / ``tone_check`` when set, override it.
    ``dask_address``: an existing scheduler (else the pipeline's, else a LocalCluster).

    The summary (also ``DST/_abair/report.json``) holds ``run_id``, ``model_version``, ``images``
    (processed this run), ``skipped`` (already current), ``by_status``, ``by_action``, throughput,
    ``degradation_mix``, ``failure_rate``, ``failures`` and ``quarantined`` (key, reason, message).
    Raises :class:`RestoreRunFailed` after writing the report when the failure rate is too high.
    """
    began = time.perf_counter()
    logger = get_run_logger()
    pipe = pipeline_from(pipeline)
    options = dict(pipe.storage.storage_options)
    settings = load_restore_settings(restore_config, mode=mode, include=include, min_confidence=min_confidence,
                                     reprocess_on_new_model=reprocess_on_new_model or None,
                                     clean_weight=clean_weight, tone_check=tone_check)
    apply_storage_options(options, src, dst)
    resolved = resolve_model_task(model, pipe)
    logger.info("model %s resolved to %s version %s", model, resolved["name"], resolved["version"])
    plan = plan_work_task(src, dst, settings, resolved["version"], options)
    logger.info("run %s: %d images to restore in %d chunks, %d current, %d refused", plan["run_id"],
                plan["images"], plan["chunks"], plan["skipped"], len(plan["refused"]))
    errors: dict[str, str] = {}
    if plan["chunks"]:
        with _scheduler(pipe, dask_address) as address:
            errors = restore_chunks.with_options(task_runner=dask_task_runner(address))(
                plan["work_manifest_uri"], dst, resolved, settings, plan["run_id"], options)
    summary = finish_run_task(dst, plan, settings, resolved, time.perf_counter() - began, errors,
                              {"source": src, "destination": dst, "model": model}, options)
    publish_report_task(summary)
    logger.info("run %s: %s; %.2f MP/s; report %s", summary["run_id"], summary["by_status"],
                summary["megapixels_per_second"], summary["report"].get("_abair/report.md"))
    if run_failed(summary, settings.max_failure_rate):
        raise RestoreRunFailed(
            f"run {summary['run_id']}: {summary['failure_rate']:.1%} of {summary['images']} images failed "
            f"(max {settings.max_failure_rate:.1%}); see {summary['report'].get('_abair/report.md')}"
        )
    return summary


def _scheduler(pipe: PipelineConfig, dask_address: str | None) -> contextlib.AbstractContextManager[str]:
    """The scheduler to use: the given address, the pipeline's, or a LocalCluster for this run."""
    if dask_address:
        return contextlib.nullcontext(dask_address)
    return dask_cluster(pipe)


def _print_progress(line: str, done: bool, stream: TextIO | None = None) -> None:
    """The progress line on stderr: refreshed in place on a terminal, one line per update otherwise."""
    stream = stream if stream is not None else sys.stderr
    tty = getattr(stream, "isatty", lambda: False)()
    stream.write(("\r\x1b[2K" if tty else "") + line + ("\n" if done or not tty else ""))
    stream.flush()
