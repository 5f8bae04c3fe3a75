"""Prefect tasks of the synthesize flow: plan the dataset, list sources, synthesize chunks, write manifests.

Each task wraps one function of :mod:`abair_core.data.dataset` and passes only small values: configs,
URIs, lists of row indices and per-source result rows. Chunks run on Dask workers; only transient
storage or network errors are retried, never bad input or bad config.
"""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.cache_policies import NO_CACHE

from abair_core.data.dataset import (
    DatasetPlan,
    finish_dataset,
    plan_dataset,
    plan_sources,
    read_source_rows,
    synthesize_chunk,
    write_source_plan,
)
from abair_core.training.config import TrainConfig
from tasks.sample_photos import resolve_photo_source

TRANSIENT_ERRORS = (ConnectionError, TimeoutError)


def retry_transient(task: Any, task_run: Any, state: Any) -> bool:
    """Retry only storage/network hiccups (connection, timeout, non-ValueError OS errors)."""
    exc = state.result(raise_on_failure=False)
    if isinstance(exc, ValueError):
        return False
    return isinstance(exc, TRANSIENT_ERRORS) or (isinstance(exc, OSError) and not isinstance(exc, FileNotFoundError))


@task(name="plan_dataset", cache_policy=NO_CACHE)
def plan_dataset_task(config: TrainConfig, storage_root: str) -> dict[str, Any]:
    """Validate the degradations and hash the synthesis recipe (fails before any work)."""
    return plan_dataset(config, storage_root).to_dict()


@task(name="plan_sources", cache_policy=NO_CACHE, retries=2, retry_condition_fn=retry_transient)
def plan_sources_task(config: TrainConfig, plan: dict[str, Any], storage_root: str,
                      storage_options: dict[str, Any], source_options: dict[str, Any]) -> dict[str, Any]:
    """List the photos under the source URI, decide which need a shard and store the source table."""
    dataset_plan = DatasetPlan.from_dict(plan)
    source = resolve_photo_source(config.data.source, storage_root, storage_options)
    table = plan_sources(source, config.data.include, dataset_plan, storage_options, source_options,
                         exclude=config.data.exclude)
    uri, pending = write_source_plan(table, dataset_plan, storage_options)
    return {"source": source, "sources_uri": uri, "pending": pending, "count": table.num_rows}


@task(name="synthesize_chunk", cache_policy=NO_CACHE, retries=2, retry_condition_fn=retry_transient,
      task_run_name="synthesize-chunk-{chunk_id}")
def synthesize_chunk_task(chunk_id: int, sources_uri: str, indices: list[int], config: TrainConfig,
                          plan: dict[str, Any], storage_options: dict[str, Any],
                          source_options: dict[str, Any]) -> list[dict[str, Any]]:
    """Synthesize the shards of one chunk of sources (on a Dask worker); returns one row per source."""
    import torch

    torch.set_num_threads(1)
    rows = read_source_rows(sources_uri, indices, storage_options)
    return synthesize_chunk(rows, config, DatasetPlan.from_dict(plan), storage_options, source_options)


@task(name="finish_dataset", cache_policy=NO_CACHE, retries=2, retry_condition_fn=retry_transient)
def finish_dataset_task(sources_uri: str, results: list[dict[str, Any]], plan: dict[str, Any],
                        storage_options: dict[str, Any]) -> dict[str, Any]:
    """Write the per-patch dataset manifest and the final per-source table."""
    return finish_dataset(sources_uri, results, DatasetPlan.from_dict(plan), storage_options)
