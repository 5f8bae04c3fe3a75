"""What every flow shares at run time: the pipeline config and one Dask cluster reused by address."""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlsplit

from prefect_dask import DaskTaskRunner

from tasks.pipeline_config import PipelineConfig, load_pipeline_config

log = logging.getLogger(__name__)


@contextlib.contextmanager
def dask_cluster(pipeline: PipelineConfig) -> Iterator[str]:
    """Yield a Dask scheduler address: the configured one, or a LocalCluster started (and closed) here.

    Starting one cluster for a whole pipeline run and handing its address to every flow avoids paying
    3-5 s of cluster start per flow run (see DESIGN.md, stack facts).
    """
    if pipeline.dask.scheduler_address:
        yield pipeline.dask.scheduler_address
        return
    with prefect_api_for_workers(), _local_cluster(pipeline) as address:
        yield address


@contextlib.contextmanager
def prefect_api_for_workers() -> Iterator[None]:
    """Let worker processes started here report to this process's Prefect API.

    Without ``PREFECT_API_URL`` in their environment, LocalCluster workers would each start their own
    temporary Prefect server (10-20 s per worker, and task runs recorded where nobody looks).
    """
    if os.environ.get("PREFECT_API_URL"):
        yield
        return
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        os.environ["PREFECT_API_URL"] = str(client.api_url).rstrip("/")
    try:
        yield
    finally:
        os.environ.pop("PREFECT_API_URL", None)


@contextlib.contextmanager
def _local_cluster(pipeline: PipelineConfig) -> Iterator[str]:
    from distributed import LocalCluster

    # Worker processes get one OpenMP thread each: several torch workers spinning on shared cores are
    # far slower than one thread each. Thread-based workers (processes: false) take no env.
    extra = {"env": {"OMP_NUM_THREADS": "1"}} if pipeline.dask.processes else {}
    cluster = LocalCluster(
        n_workers=pipeline.dask.n_workers,
        threads_per_worker=pipeline.dask.threads_per_worker,
        processes=pipeline.dask.processes,
        dashboard_address=":0",
        **extra,
    )
    try:
        log.info("started a Dask LocalCluster at %s", cluster.scheduler_address)
        yield cluster.scheduler_address
    finally:
        cluster.close()


def dask_task_runner(address: str) -> DaskTaskRunner:
    """A Prefect task runner on the cluster at ``address`` (never a per-flow temporary cluster)."""
    return DaskTaskRunner(address=address)


def pipeline_from(path: str | None) -> PipelineConfig:
    """The pipeline config for a flow run (argument > $ABAIR_PIPELINE > configs/pipeline/local.yaml), resolved."""
    config = load_pipeline_config(path).resolved()
    for key, value in config.prefect.environment().items():
        os.environ.setdefault(key, value)
    return config


def local_work_root(pipe: PipelineConfig) -> Path:
    """A local folder for spec files, suites, bundles and reports (the storage root when it is local)."""
    parts = urlsplit(pipe.storage.root)
    if parts.scheme in ("", "file"):
        return Path(unquote(parts.path if parts.scheme else pipe.storage.root))
    return Path("abair-work")
