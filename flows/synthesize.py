"""The synthesize flow: clean photos under a URI -> content-hashed patch shards -> a dataset manifest.

Order of work: validate the recipe (unknown degradations fail here, before anything is read or
written) -> list the sources into a Parquet table and mark the ones whose shard already exists ->
chunks of pending sources on Dask (a LocalCluster unless an address is configured; none is started
when nothing is pending) -> the per-patch lineage manifest and the final per-source table.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from prefect import flow, get_run_logger, unmapped
from prefect.futures import as_completed

from abair_core.config import load_config, validate_config
from abair_core.data.dataset import chunk_ranges
from abair_core.training.config import TrainConfig
from flows.runtime import dask_cluster, dask_task_runner, pipeline_from
from tasks.synthesis import finish_dataset_task, plan_dataset_task, plan_sources_task, synthesize_chunk_task
from tasks.tracking import ProgressReporter

MAX_CHUNK = 16


def load_train_config(train_config: str | Mapping[str, Any]) -> TrainConfig:
    """A training recipe from a YAML path or an already parsed mapping."""
    if isinstance(train_config, Mapping):
        return validate_config(dict(train_config), TrainConfig, source="<train config>")
    return load_config(train_config, TrainConfig)


def source_options_for(source: str, storage_root: str, storage_options: Mapping[str, Any]) -> dict[str, Any]:
    """The storage options apply to the photo source when it is on the same kind of store as the root."""
    protocol = source.split("://", 1)[0] if "://" in source else "file"
    root_protocol = storage_root.split("://", 1)[0] if "://" in storage_root else "file"
    if protocol == "samples":  # the bundled photos are exported under the storage root, so its options apply
        protocol = root_protocol
    return dict(storage_options) if protocol == root_protocol and protocol != "file" else {}


def chunk_size_for(pending: int, workers: int) -> int:
    """About two chunks per worker, at most ``MAX_CHUNK`` sources each (never one task per image)."""
    return max(1, min(MAX_CHUNK, math.ceil(pending / max(1, 2 * workers))))


@flow(name="synthesize-chunks")
def synthesize_chunks(sources_uri: str, chunks: list[list[int]], config: TrainConfig, plan: dict[str, Any],
                      storage_options: dict[str, Any], source_options: dict[str, Any]) -> list[dict[str, Any]]:
    """Map the chunks over the flow's task runner (Dask); report progress per finished chunk."""
    futures = synthesize_chunk_task.map(
        list(range(len(chunks))), unmapped(sources_uri), chunks, unmapped(config), unmapped(plan),
        unmapped(storage_options), unmapped(source_options),
    )
    progress = ProgressReporter("synthesize", sum(len(c) for c in chunks), key="abair-synthesize", unit="photos")
    rows: list[dict[str, Any]] = []
    for future in as_completed(futures):
        rows.extend(future.result())
        progress.update(len(rows))
    return rows


@flow(name="synthesize")
def synthesize(train_config: str | dict[str, Any], pipeline: str | None = None,
               dask_address: str | None = None) -> dict[str, Any]:
    """Synthesize the training patches of ``train_config``; returns the dataset summary.

    Returns ``dataset_hash``, ``recipe_hash``, ``manifest_uri`` (one row per patch), ``sources_uri``
    (one row per source: written / existing / skipped with reason), ``patches``, ``sources``,
    ``shards_written``, ``shards_existing``, ``skipped`` [{key, reason}] and ``seconds``.
    """
    began = time.perf_counter()
    logger = get_run_logger()
    pipe = pipeline_from(pipeline)
    config = load_train_config(train_config)
    root, options = pipe.storage.root, dict(pipe.storage.storage_options)
    plan = plan_dataset_task(config, root)
    source_options = source_options_for(config.data.source, root, options)
    listing = plan_sources_task(config, plan, root, options, source_options)
    pending = listing["pending"]
    logger.info("%d source photos under %s, %d need a shard (recipe %s)", listing["count"], listing["source"],
                len(pending), plan["recipe_hash"])
    results: list[dict[str, Any]] = []
    if pending:
        size = chunk_size_for(len(pending), pipe.dask.n_workers)
        chunks = [pending[a:b] for a, b in chunk_ranges(len(pending), size)]
        with _scheduler(pipe, dask_address) as address:
            runner = dask_task_runner(address)
            results = synthesize_chunks.with_options(task_runner=runner)(
                listing["sources_uri"], chunks, config, plan, options, source_options)
    summary = finish_dataset_task(listing["sources_uri"], results, plan, options)
    for skipped in summary["skipped"]:
        logger.warning("skipped source %s: %s", skipped["key"], skipped["reason"])
    summary["seconds"] = time.perf_counter() - began
    logger.info("dataset %s: %d patches from %d sources (%d shards written, %d existing, %d skipped) in %.1f s",
                summary["dataset_hash"], summary["patches"], summary["sources"], summary["shards_written"],
                summary["shards_existing"], len(summary["skipped"]), summary["seconds"])
    return summary


def _scheduler(pipe: Any, dask_address: str | None) -> Any:
    import contextlib

    if dask_address:
        return contextlib.nullcontext(dask_address)
    return dask_cluster(pipe)
