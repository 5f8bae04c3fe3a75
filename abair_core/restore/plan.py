"""Plan a restoration run: list the source, skip what is current, cut the rest into chunks.

Planning is pure bookkeeping (no pixels): it compares the source listing against the merged
results manifest of the destination and writes a Parquet *work manifest* so a run can be resumed
or distributed chunk by chunk. Settings live here because they decide what "current" means.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
from pydantic import Field

from abair_core.config import StrictConfig
from abair_core.io.storage import (
    FileInfo,
    join_uri,
    list_files,
    read_parquet,
    safe_relative_key,
    uris_overlap,
)
from abair_core.restore.manifest import STATE_PREFIX, write_table_atomic

__all__ = [
    "WORK_SCHEMA",
    "Chunk",
    "RestoreSettings",
    "WorkItem",
    "WorkPlan",
    "fingerprint",
    "new_run_id",
    "plan_from_listing",
    "plan_work",
    "read_work_manifest",
    "settings_hash",
    "work_manifest_uri",
]

logger = logging.getLogger(__name__)

WORK_SCHEMA = pa.schema(
    [
        ("chunk_id", pa.string()),
        ("key", pa.string()),
        ("uri", pa.string()),
        ("size", pa.int64()),
        ("fingerprint", pa.string()),
    ]
)


class RestoreSettings(StrictConfig):
    """Knobs of one restoration run; those that change output pixels form :func:`settings_hash`."""

    include: str = Field("**/*", description="Glob of source keys to restore, relative to the source prefix.")
    chunk_size: int = Field(16, ge=1, le=100_000, description="Images per chunk (one unit of distributed work).")
    max_pixels: int = Field(
        100_000_000, ge=1, description="Decoded images above this many pixels are quarantined (bomb guard)."
    )
    jpeg_quality: int = Field(95, ge=1, le=100, description="Quality of re-encoded JPEG outputs.")
    mode: str = Field("sw", min_length=1, description="'sw' (soft blend), 'oh' (one adapter) or an adapter id.")
    min_confidence: float = Field(
        0.0, ge=0.0, le=1.0, description="Below this top estimator probability the source is copied unchanged."
    )
    clean_weight: float = Field(
        1.0, gt=0.0, le=1000.0, description="The archive's prior on clean: scales the odds of the estimator's "
        "clean class (1 = as trained; 3 = mostly clean archive, three times the evidence needed to restore).")
    estimator_crops: int | None = Field(
        16, ge=1, le=256, description="Native crops the estimator reads per image, on an evenly spaced grid "
        "(16: 4 x 4); null: the estimator's stored count (4: the corners only, which on a whole photo are its "
        "background).")
    tone_check: bool = Field(
        False, description="Before restoring, read the estimator again at contrast 0.85 and 1.15; when either "
        "reading is clean, copy the source unchanged as low_confidence (a decision a contrast setting would turn; "
        "docs/DO_NO_HARM.md, '--tone-check').")
    tile: int = Field(512, ge=16, description="Tile side for restoring large images with bounded memory.")
    overlap: int = Field(32, ge=0, description="Overlap between neighbouring tiles, blended smoothly.")
    max_failure_rate: float = Field(
        0.05, ge=0.0, le=1.0, description="A run fails when more images than this failed (bad input excluded)."
    )
    reprocess_on_new_model: bool = Field(
        False, description="Redo outputs made by another model version (off: any version counts as current)."
    )


#: Fields of :class:`RestoreSettings` that change the bytes of an output.
PIXEL_FIELDS: tuple[str, ...] = ("mode", "tile", "overlap", "jpeg_quality", "min_confidence", "clean_weight",
                                  "estimator_crops", "tone_check")
#: Pixel fields added later, with the value that behaves as before they existed: they enter the hash only when
#: set away from it, so an archive restored before keeps its hash while its behaviour is unchanged, and is redone
#: once when the new value changes the outputs (``estimator_crops``: 16 since 2026-12-04, the stored 4 before).
_LEGACY_PIXEL_VALUES: dict[str, object] = {"clean_weight": 1.0, "estimator_crops": None, "tone_check": False}


def settings_hash(settings: RestoreSettings) -> str:
    """SHA-256 (hex) of the settings that change output pixels; other knobs never force a redo."""
    payload = {name: getattr(settings, name) for name in PIXEL_FIELDS
               if name not in _LEGACY_PIXEL_VALUES or getattr(settings, name) != _LEGACY_PIXEL_VALUES[name]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class WorkItem:
    """One source object to restore: its relative key, full URI, size and fingerprint."""

    key: str
    uri: str
    size: int
    fingerprint: str


@dataclass(frozen=True)
class Chunk:
    """A unit of work: a few images restored one after another by one worker."""

    id: str
    items: tuple[WorkItem, ...]


@dataclass
class WorkPlan:
    """What a run will do: chunks to restore, keys already current, keys refused (with reasons)."""

    run_id: str
    chunks: list[Chunk]
    skipped: list[str] = field(default_factory=list)
    refused: list[tuple[str, str]] = field(default_factory=list)
    work_manifest_uri: str | None = None

    @property
    def num_items(self) -> int:
        """Number of images the chunks hold."""
        return sum(len(chunk.items) for chunk in self.chunks)


def new_run_id(now: datetime | None = None) -> str:
    """A sortable, unique run id: UTC timestamp plus a short random suffix (``20261124T010203Z-1a2b3c4d``)."""
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:8]}"


def fingerprint(size: int, etag_or_mtime: Any) -> str:
    """Identity of a source object's content as listed: size plus ETag (object stores) or mtime (files)."""
    return f"{int(size)}:{'' if etag_or_mtime is None else etag_or_mtime}"


def work_manifest_uri(dst_uri: str, run_id: str) -> str:
    """Where the work manifest of ``run_id`` lives under the destination."""
    return join_uri(dst_uri, f"{STATE_PREFIX}/runs/{run_id}/work.parquet")


def plan_work(
    src_uri: str,
    dst_uri: str,
    settings: RestoreSettings,
    model_version: str,
    current: pa.Table | None,
    run_id: str | None = None,
) -> WorkPlan:
    """List ``src_uri``, decide per key what is current against ``current`` (the merged manifest), chunk the
    rest and write the work manifest under ``dst_uri``. Refuses overlapping prefixes (``ValueError``)."""
    if uris_overlap(src_uri, dst_uri):
        raise ValueError(f"source {src_uri!r} and destination {dst_uri!r} overlap; refusing to restore in place")
    run_id = run_id or new_run_id()
    listing = list_files(src_uri, settings.include)
    present = _output_sizes(dst_uri)
    plan = plan_from_listing(listing, settings, model_version, current, run_id, outputs=present)
    plan.work_manifest_uri = work_manifest_uri(dst_uri, run_id)
    write_table_atomic(plan.work_manifest_uri, work_table(plan.chunks))
    logger.info(
        "run %s: %d images in %d chunks, %d current, %d refused",
        run_id, plan.num_items, len(plan.chunks), len(plan.skipped), len(plan.refused),
    )
    return plan


def plan_from_listing(
    listing: Iterable[FileInfo],
    settings: RestoreSettings,
    model_version: str,
    current: pa.Table | None,
    run_id: str,
    outputs: Mapping[str, int] | None = None,
) -> WorkPlan:
    """The planning decision on an explicit listing (no I/O).

    ``outputs`` maps destination keys to sizes; when given, an ``ok`` row whose output is missing (or whose
    size differs from the recorded one) is redone. Keys under the state prefix ``_abair/`` are ignored.
    """
    rows = _rows_by_key(current)
    want_hash = settings_hash(settings)
    todo: list[WorkItem] = []
    skipped: list[str] = []
    refused: list[tuple[str, str]] = []
    for info in sorted(listing, key=lambda f: f.key):
        try:
            key = safe_relative_key(info.key)
        except ValueError:
            refused.append((info.key, "unsafe_key"))
            continue
        if key == STATE_PREFIX or key.startswith(STATE_PREFIX + "/"):
            continue
        item = WorkItem(key=key, uri=info.uri, size=int(info.size), fingerprint=fingerprint(info.size, info.etag_or_mtime))
        if _is_current(rows.get(key), item, want_hash, model_version, settings.reprocess_on_new_model, outputs):
            skipped.append(key)
        else:
            todo.append(item)
    chunks = [
        Chunk(id=f"c{index:05d}", items=tuple(todo[start : start + settings.chunk_size]))
        for index, start in enumerate(range(0, len(todo), settings.chunk_size))
    ]
    return WorkPlan(run_id=run_id, chunks=chunks, skipped=skipped, refused=refused)


def _is_current(
    row: Mapping[str, Any] | None,
    item: WorkItem,
    want_hash: str,
    model_version: str,
    reprocess_on_new_model: bool,
    outputs: Mapping[str, int] | None,
) -> bool:
    """Whether the manifest row says this source needs no work in this run."""
    if row is None:
        return False
    same_source = row.get("fingerprint") == item.fingerprint
    if row.get("status") == "quarantined":
        return same_source  # bad input stays bad until its bytes change
    if row.get("status") != "ok" or not same_source or row.get("settings_hash") != want_hash:
        return False
    if reprocess_on_new_model and str(row.get("model_version")) != str(model_version):
        return False
    if outputs is not None:
        size = outputs.get(item.key)
        if size is None or (row.get("output_bytes") is not None and int(row["output_bytes"]) != size):
            return False
    return True


def _rows_by_key(current: pa.Table | None) -> dict[str, dict[str, Any]]:
    """Index the merged manifest by key (the last row wins if a key repeats)."""
    if current is None or current.num_rows == 0:
        return {}
    wanted = [c for c in ("key", "status", "fingerprint", "settings_hash", "model_version", "output_bytes")
              if c in current.column_names]
    return {row["key"]: row for row in current.select(wanted).to_pylist()}


def _output_sizes(dst_uri: str) -> dict[str, int]:
    """Sizes of the outputs already under ``dst_uri`` (empty when the destination does not exist yet)."""
    try:
        return {info.key: int(info.size) for info in list_files(dst_uri, "**/*")}
    except FileNotFoundError:
        return {}


def work_table(chunks: Sequence[Chunk]) -> pa.Table:
    """The work manifest: one row per image with its chunk id."""
    rows = [
        {"chunk_id": chunk.id, "key": it.key, "uri": it.uri, "size": it.size, "fingerprint": it.fingerprint}
        for chunk in chunks
        for it in chunk.items
    ]
    return pa.Table.from_pylist(rows, schema=WORK_SCHEMA)


def read_work_manifest(uri: str) -> list[Chunk]:
    """Read a work manifest back into chunks (for resuming or distributing a planned run)."""
    table = read_parquet(uri)
    grouped: dict[str, list[WorkItem]] = {}
    for row in table.to_pylist():
        item = WorkItem(key=row["key"], uri=row["uri"], size=int(row["size"]), fingerprint=row["fingerprint"])
        grouped.setdefault(row["chunk_id"], []).append(item)
    return [Chunk(id=cid, items=tuple(items)) for cid, items in sorted(grouped.items())]
