"""Close a restoration run: account for every planned image, persist the run, merge, report.

Chunks persist their own rows as they finish (``_abair/runs/<run>/chunks/<chunk>.parquet``). A chunk
whose worker died left no rows; closing the run gives each of its images a ``failed`` row (reason
``chunk_crashed``), so the report counts them, the run's failure rate sees them and the next run
redoes them. The closed run is one ``results.parquet``; the merged current view is rebuilt from all
runs, and ``report.json``/``report.md`` are written under the destination.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from abair_core.restore.manifest import (
    make_row,
    merge_manifests,
    read_run_rows,
    refused_rows,
    write_run_manifest,
)
from abair_core.restore.plan import (
    Chunk,
    RestoreSettings,
    read_work_manifest,
    settings_hash,
    work_manifest_uri,
)
from abair_core.restore.report import summarize, write_report

__all__ = ["CHUNK_CRASHED", "finish_run", "unreported_rows"]

logger = logging.getLogger(__name__)

#: Reason of the failed rows given to images whose chunk never reported.
CHUNK_CRASHED = "chunk_crashed"


def unreported_rows(
    chunks: Iterable[Chunk],
    reported_keys: Iterable[str],
    run_id: str,
    model_version: str,
    settings: RestoreSettings,
    chunk_errors: Mapping[str, str] | None = None,
) -> list[dict[str, Any]]:
    """A ``failed`` row for every planned image without a row of its own (its chunk died)."""
    reported = set(reported_keys)
    errors = dict(chunk_errors or {})
    shash = settings_hash(settings)
    rows = []
    for chunk in chunks:
        message = errors.get(chunk.id) or "no result recorded: the chunk did not finish"
        for item in chunk.items:
            if item.key in reported:
                continue
            rows.append(make_row(
                item.key, "failed", reason=CHUNK_CRASHED, message=message[:500], fingerprint=item.fingerprint,
                model_version=str(model_version), settings_hash=shash, run_id=run_id, chunk_id=chunk.id,
            ))
    return rows


def finish_run(
    dst_uri: str,
    run_id: str,
    settings: RestoreSettings,
    model_version: str,
    wall_seconds: float,
    skipped: int = 0,
    refused: Sequence[tuple[str, str]] = (),
    chunk_errors: Mapping[str, str] | None = None,
    details: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Write the run's ``results.parquet`` (chunk rows + unreported + refused), merge, summarise, report.

    Returns the summary (see :func:`abair_core.restore.report.summarize`) with ``run_id``,
    ``model_version`` (also when no image was processed), ``details`` (e.g. source, destination and
    model URI) and ``report`` (the URIs written).
    """
    rows = read_run_rows(dst_uri, run_id).to_pylist()
    planned = read_work_manifest(work_manifest_uri(dst_uri, run_id))
    missing = unreported_rows(planned, (r["key"] for r in rows), run_id, model_version, settings, chunk_errors)
    if missing:
        logger.warning("run %s: %d planned images have no result (their chunks died)", run_id, len(missing))
    refused_list = refused_rows(refused, run_id, str(model_version), settings_hash(settings))
    all_rows = rows + missing + refused_list
    write_run_manifest(dst_uri, run_id, all_rows)
    merge_manifests(dst_uri)
    summary = summarize(all_rows, wall_seconds, skipped=skipped, refused=len(refused_list))
    summary.update(run_id=run_id, model_version=str(model_version), **dict(details or {}))
    summary["report"] = write_report(dst_uri, summary)
    return summary
