"""Results manifests: one Parquet file per run (or per chunk) and the merged current view.

Every restoration attempt leaves one row per source key. Rows are appended as new files, never
edited in place, so a crash can lose at most the rows of the chunk in flight; the merged view
(latest row per key) is rebuilt from them and replaced atomically.

Layout under the destination prefix::

    _abair/manifest.parquet                       merged current view, one row per key
    _abair/runs/<run_id>/work.parquet             what the run planned
    _abair/runs/<run_id>/chunks/<chunk_id>.parquet rows of one finished chunk (optional)
    _abair/runs/<run_id>/results.parquet          all rows of the run
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from abair_core.io.storage import atomic_write_bytes, exists, join_uri, list_files, read_parquet

__all__ = [
    "ACTIONS",
    "RESULT_SCHEMA",
    "STATE_PREFIX",
    "STATUSES",
    "current_manifest_uri",
    "latest_per_key",
    "make_row",
    "merge_manifests",
    "probabilities_json",
    "read_current_manifest",
    "read_run_rows",
    "refused_rows",
    "run_manifest_uris",
    "utc_now",
    "write_run_manifest",
    "write_table_atomic",
]

logger = logging.getLogger(__name__)

#: Folder (relative to the destination prefix) that holds manifests and reports; never a source key.
STATE_PREFIX = "_abair"
STATUSES = ("ok", "failed", "quarantined")
ACTIONS = ("restored", "passed_through_clean", "low_confidence", "none")

RESULT_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("status", pa.string()),
        ("action", pa.string()),
        ("reason", pa.string()),
        ("message", pa.string()),
        ("model_version", pa.string()),
        ("probabilities", pa.string()),
        ("top_class", pa.string()),
        ("gated", pa.string()),
        ("top_before_gates", pa.string()),
        ("width", pa.int64()),
        ("height", pa.int64()),
        ("input_bytes", pa.int64()),
        ("output_bytes", pa.int64()),
        ("seconds", pa.float64()),
        ("fingerprint", pa.string()),
        ("settings_hash", pa.string()),
        ("run_id", pa.string()),
        ("chunk_id", pa.string()),
        ("finished_at", pa.string()),
    ]
)


def utc_now() -> str:
    """Current UTC time as a fixed-width ISO string (sorts lexicographically in time order)."""
    return datetime.now(UTC).isoformat(timespec="microseconds")


def make_row(key: str, status: str, **fields: Any) -> dict[str, Any]:
    """A manifest row with every column present (unset ones empty/null) and checked status/action."""
    if status not in STATUSES:
        raise ValueError(f"status {status!r} is not one of {STATUSES}")
    row: dict[str, Any] = {name: None for name in RESULT_SCHEMA.names}
    row.update(
        key=key, status=status, action="none", reason="", message="", probabilities="{}", top_class="",
        gated="{}", finished_at=utc_now(),
    )
    unknown = set(fields) - set(RESULT_SCHEMA.names)
    if unknown:
        raise ValueError(f"unknown manifest columns: {sorted(unknown)}")
    row.update(fields)
    if row["action"] not in ACTIONS:
        raise ValueError(f"action {row['action']!r} is not one of {ACTIONS}")
    return row


def refused_rows(
    refused: Iterable[tuple[str, str]], run_id: str, model_version: str, settings_hash: str
) -> list[dict[str, Any]]:
    """Quarantine rows for keys refused at planning (e.g. ``unsafe_key``: it would escape the prefix)."""
    return [
        make_row(
            key, "quarantined", reason=reason, message=f"key {key!r} refused at planning ({reason})",
            model_version=str(model_version), settings_hash=settings_hash, run_id=run_id, fingerprint="",
        )
        for key, reason in refused
    ]


def _table_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def write_table_atomic(uri: str, table: pa.Table) -> str:
    """Write ``table`` as Parquet to ``uri`` in one atomic step (readers see the old or the new file)."""
    atomic_write_bytes(uri, _table_bytes(table))
    return uri


def _rows_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([dict(r) for r in rows], schema=RESULT_SCHEMA)


def write_run_manifest(
    dst_uri: str, run_id: str, rows: Sequence[Mapping[str, Any]], chunk_id: str | None = None
) -> str:
    """Persist rows of ``run_id``: the whole run (``results.parquet``) or, with ``chunk_id``, one chunk.

    Writing each chunk's rows as soon as it finishes means a killed run keeps the work it did.
    """
    name = "results.parquet" if chunk_id is None else f"chunks/{chunk_id}.parquet"
    uri = join_uri(dst_uri, f"{STATE_PREFIX}/runs/{run_id}/{name}")
    return write_table_atomic(uri, _rows_table(rows))


def run_manifest_uris(dst_uri: str) -> list[str]:
    """Every run and chunk results file under ``dst_uri`` (temp files and work manifests excluded)."""
    runs = join_uri(dst_uri, f"{STATE_PREFIX}/runs")
    try:
        listing = list_files(runs, "**/*")
    except FileNotFoundError:
        return []
    uris = []
    for info in listing:
        parts = info.key.split("/")
        if (len(parts) == 2 and parts[1] == "results.parquet") or (
            len(parts) == 3 and parts[1] == "chunks" and parts[2].endswith(".parquet")
        ):
            uris.append(info.uri)
    return sorted(uris)


def _conform(table: pa.Table) -> pa.Table:
    """Bring a manifest table (possibly written by an older version) to :data:`RESULT_SCHEMA`."""
    columns = []
    for fld in RESULT_SCHEMA:
        if fld.name in table.column_names:
            columns.append(table.column(fld.name).cast(fld.type))
        else:
            columns.append(pa.nulls(table.num_rows, type=fld.type))
    return pa.Table.from_arrays(columns, schema=RESULT_SCHEMA)


def read_run_rows(dst_uri: str, run_id: str) -> pa.Table:
    """All rows one run has persisted so far (its results file and its chunk files, deduplicated)."""
    prefix = join_uri(dst_uri, f"{STATE_PREFIX}/runs/{run_id}/")
    tables = [_conform(read_parquet(u)) for u in run_manifest_uris(dst_uri) if u.startswith(prefix)]
    return latest_per_key(pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table())


def latest_per_key(table: pa.Table) -> pa.Table:
    """Keep the most recent row of each key (by ``finished_at``, then ``run_id``), sorted by key."""
    if table.num_rows == 0:
        return table
    table = table.sort_by([("key", "ascending"), ("finished_at", "descending"), ("run_id", "descending")])
    keys = table.column("key").combine_chunks()
    first = pc.not_equal(keys.slice(1), keys.slice(0, len(keys) - 1))
    mask = pa.concat_arrays([pa.array([True]), first.fill_null(True)])
    return table.filter(mask)


def current_manifest_uri(dst_uri: str) -> str:
    """Where the merged current view lives."""
    return join_uri(dst_uri, f"{STATE_PREFIX}/manifest.parquet")


def merge_manifests(dst_uri: str) -> pa.Table:
    """Rebuild the current view (latest row per key over every run) and write it atomically."""
    tables = [_conform(read_parquet(uri)) for uri in run_manifest_uris(dst_uri)]
    merged = latest_per_key(pa.concat_tables(tables) if tables else RESULT_SCHEMA.empty_table())
    write_table_atomic(current_manifest_uri(dst_uri), merged)
    logger.info("merged %d run manifests into %d current rows", len(tables), merged.num_rows)
    return merged


def read_current_manifest(dst_uri: str) -> pa.Table | None:
    """The merged current view, or ``None`` before the first run."""
    uri = current_manifest_uri(dst_uri)
    if not exists(uri):
        return None
    return _conform(read_parquet(uri))


def probabilities_json(probabilities: Mapping[str, float]) -> tuple[str, str]:
    """Normalise estimator probabilities to sum to 1; return their JSON (sorted keys) and the top class."""
    values = {str(k): max(float(v), 0.0) for k, v in probabilities.items()}
    total = sum(values.values())
    if not values or total <= 0:
        return "{}", ""
    values = {k: v / total for k, v in values.items()}
    top = max(values, key=lambda k: (values[k], k))
    return json.dumps(values, sort_keys=True), top
