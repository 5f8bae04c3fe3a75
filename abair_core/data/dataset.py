"""A synthesized dataset on storage: source listing -> content-hashed shards -> a per-patch manifest.

Layout under a storage root::

    datasets/<recipe hash>/shards/<shard hash>.safetensors   one shard per source photo
    datasets/<recipe hash>/sources-<dataset hash>.parquet    one row per source: status, reason, shard
    datasets/<recipe hash>/manifest-<dataset hash>.parquet   one row per patch (lineage)

The *recipe hash* covers what turns a photo into patches (synthesis config, the chosen degradation
specs and ids), so every shard made with one recipe lives in one folder whatever the photo pool. A
*shard hash* adds one source's key, size and ETag/mtime: an existing shard is current and never
rewritten, so a rerun writes nothing and a new photo writes one shard. The *dataset hash* covers the
recipe and the sorted shard hashes: it names exactly the patches a model was trained on.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from abair_core.checkpoints import read_checkpoint_metadata
from abair_core.config import ConfigError, load_config
from abair_core.data.patches import PatchSet
from abair_core.data.shards import SHARD_KIND, read_shards, write_shard
from abair_core.data.synthesis import synthesize_patches
from abair_core.degradations.base import Degradation
from abair_core.degradations.registry import build_degradation, list_degradations
from abair_core.degradations.specs import DegradationSetConfig
from abair_core.io.errors import ImageDecodeError
from abair_core.io.image_codec import decode_image
from abair_core.io.storage import (
    FileInfo,
    get_fs,
    join_uri,
    list_files,
    read_bytes,
    read_parquet,
    write_parquet,
)
from abair_core.training.config import TrainConfig

__all__ = [
    "SOURCE_COLUMNS",
    "DatasetPlan",
    "build_dataset_manifest",
    "chunk_ranges",
    "dataset_hash",
    "finish_dataset",
    "load_dataset_patches",
    "plan_dataset",
    "plan_sources",
    "read_dataset_manifest",
    "read_source_rows",
    "shard_hash",
    "synthesize_chunk",
    "write_source_plan",
    "write_sources_manifest",
]

SOURCE_COLUMNS = ("key", "uri", "size", "etag_or_mtime", "shard_hash", "shard_uri", "status", "reason",
                  "patches")
HASH_CHARS = 32


@dataclass(frozen=True)
class DatasetPlan:
    """What a synthesis run makes, fixed before any work: the recipe, its hash and the shard folder."""

    recipe_hash: str
    dataset_dir: str
    shards_dir: str
    label_names: list[str]
    specs: list[dict[str, Any]]
    #: ids among ``specs`` used only as the other half of a sequence (``TrainConfig.sequence_partners``)
    partners: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"recipe_hash": self.recipe_hash, "dataset_dir": self.dataset_dir, "shards_dir": self.shards_dir,
                "label_names": list(self.label_names), "specs": [dict(s) for s in self.specs],
                "partners": list(self.partners)}

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> DatasetPlan:
        return DatasetPlan(str(data["recipe_hash"]), str(data["dataset_dir"]), str(data["shards_dir"]),
                           list(data["label_names"]), [dict(s) for s in data["specs"]],
                           list(data.get("partners", [])))


def _digest(payload: Any) -> str:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:HASH_CHARS]


def plan_dataset(config: TrainConfig, storage_root: str) -> DatasetPlan:
    """Validate the recipe's degradations against the registry and the spec file; hash the recipe.

    Fails (``ConfigError``) before any work when ``config.degradations`` names an unregistered id
    (listing the valid ids) or one without a training range in ``config.data.degradation_specs``.
    """
    specs_path = config.data.degradation_specs
    valid = list_degradations()
    for key, names in (("degradations", config.degradations), ("sequence_partners", config.sequence_partners)):
        unknown = [name for name in names if name not in valid]
        if unknown:
            raise ConfigError(f"training config: key '{key}': unknown degradation(s) {unknown} "
                              f"(valid ids: {', '.join(valid)})")
    entries = {}
    for i, spec in enumerate(load_config(specs_path, DegradationSetConfig).degradations):
        entries[build_degradation(spec, source=specs_path, key=f"degradations.{i}").name] = dict(spec)
    partners = list(config.sequence_partners)
    missing = [name for name in [*config.degradations, *partners] if name not in entries]
    if missing:
        raise ConfigError(f"{specs_path}: no training range for degradation(s) {missing} "
                          f"(ids in the file: {', '.join(sorted(entries))})")
    specs = [entries[name] for name in [*config.degradations, *partners]]
    labels = ["clean", *config.degradations, *partners]
    synthesis = config.synthesis.model_dump(mode="json")
    if not synthesis["greyscale_fraction"]:  # absent when off: colour-only recipes keep their hashes
        del synthesis["greyscale_fraction"]
    payload = {"synthesis": synthesis, "specs": specs,
               "degradations": list(config.degradations), "labels": labels, "format": SHARD_KIND}
    if partners:  # absent when empty: recipes without partners keep the hashes they always had
        payload["partners"] = partners
    recipe = _digest(payload)
    dataset_dir = join_uri(storage_root, f"datasets/{recipe}")
    return DatasetPlan(recipe, dataset_dir, join_uri(dataset_dir, "shards"), labels, specs, partners)


def shard_hash(recipe_hash: str, key: str, size: int, etag_or_mtime: str) -> str:
    """The content hash naming one source's shard: recipe + source key + its size and change token."""
    return _digest({"recipe": recipe_hash, "key": key, "size": int(size), "etag_or_mtime": etag_or_mtime})


def dataset_hash(recipe_hash: str, shard_hashes: Iterable[str]) -> str:
    """The hash of exactly these patches: the recipe and the sorted set of shard hashes."""
    return _digest({"recipe": recipe_hash, "shards": sorted(set(shard_hashes))})


def plan_sources(source_uri: str, include: str, plan: DatasetPlan,
                 storage_options: Mapping[str, Any] | None = None,
                 source_options: Mapping[str, Any] | None = None, *,
                 exclude: Sequence[str]) -> pa.Table:
    """One row per source photo with its shard; ``status`` is ``existing`` (shard present) or ``pending``.

    Keys matching a glob of ``exclude`` (held-out validation photos, ``data.exclude`` of the recipe) are left out
    entirely. It has no default, so no caller can forget the recipe's held-out photos (``()`` says "none").
    """
    for uri, options in ((source_uri, source_options), (plan.shards_dir, storage_options)):
        get_fs(uri, options)[0].invalidate_cache()  # object stores cache listings; a stale one would redo work
    infos: list[FileInfo] = [f for f in list_files(source_uri, include, source_options)
                             if not any(fnmatch.fnmatchcase(f.key, pattern) for pattern in exclude)]
    present = {f.key for f in list_files(plan.shards_dir, "*.safetensors", storage_options)}
    rows = []
    for info in infos:
        digest = shard_hash(plan.recipe_hash, info.key, info.size, info.etag_or_mtime)
        name = f"{digest}.safetensors"
        rows.append({"key": info.key, "uri": info.uri, "size": info.size, "etag_or_mtime": info.etag_or_mtime,
                     "shard_hash": digest, "shard_uri": join_uri(plan.shards_dir, name),
                     "status": "existing" if name in present else "pending", "reason": "", "patches": -1})
    return _sources_table(rows)


def write_source_plan(table: pa.Table, plan: DatasetPlan,
                      storage_options: Mapping[str, Any] | None = None) -> tuple[str, list[int]]:
    """Store the planned source table (named by its content); returns its URI and the pending row indices."""
    digest = _digest(table.select(["key", "size", "etag_or_mtime", "status"]).to_pylist())
    uri = join_uri(plan.dataset_dir, f"plans/sources-{digest}.parquet")
    write_parquet(uri, table, storage_options)
    pending = [i for i, status in enumerate(table.column("status").to_pylist()) if status == "pending"]
    return uri, pending


def read_source_rows(uri: str, indices: Sequence[int],
                     storage_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Rows ``indices`` of a stored source table (what one synthesis chunk works on)."""
    return read_parquet(uri, storage_options).take(list(indices)).to_pylist()


def _sources_table(rows: Sequence[Mapping[str, Any]]) -> pa.Table:
    schema = pa.schema([("key", pa.string()), ("uri", pa.string()), ("size", pa.int64()),
                        ("etag_or_mtime", pa.string()), ("shard_hash", pa.string()), ("shard_uri", pa.string()),
                        ("status", pa.string()), ("reason", pa.string()), ("patches", pa.int64())])
    return pa.Table.from_pylist([{c: r[c] for c in SOURCE_COLUMNS} for r in rows], schema=schema)


def chunk_ranges(count: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges covering ``count`` items in chunks of at most ``chunk_size``."""
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    return [(start, min(start + chunk_size, count)) for start in range(0, count, chunk_size)]


def synthesize_chunk(sources: Sequence[Mapping[str, Any]], config: TrainConfig, plan: DatasetPlan,
                     storage_options: Mapping[str, Any] | None = None,
                     source_options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Decode each source, synthesize its patches and write its shard; undecodable sources are skipped.

    Returns one row per source (the ``SOURCE_COLUMNS``) with ``status`` ``written`` or ``skipped``
    and, when skipped, the decoder's reason. Read errors of the store itself propagate (worth a retry).
    """
    built = [build_degradation(spec) for spec in plan.specs]
    degradations: dict[str, Degradation] = {d.name: d for d in built if d.name not in plan.partners}
    partners: dict[str, Degradation] = {d.name: d for d in built if d.name in plan.partners}
    out = []
    for source in sources:
        row = {c: source.get(c) for c in SOURCE_COLUMNS}
        try:
            photo = decode_image(read_bytes(str(source["uri"]), source_options), config.data.max_pixels).rgb
        except ImageDecodeError as exc:
            out.append({**row, "status": "skipped", "reason": str(exc), "patches": 0})
            continue
        patches = synthesize_patches(photo, str(source["key"]), degradations, plan.label_names, config.synthesis,
                                     partners)
        write_shard(str(source["shard_uri"]), patches, storage_options)
        out.append({**row, "status": "written", "reason": "", "patches": len(patches)})
    return out


def write_sources_manifest(rows: Sequence[Mapping[str, Any]], plan: DatasetPlan, digest: str,
                           storage_options: Mapping[str, Any] | None = None) -> str:
    """Write the final per-source table (statuses and reasons) next to the shards; returns its URI."""
    uri = join_uri(plan.dataset_dir, f"sources-{digest}.parquet")
    write_parquet(uri, _sources_table(rows), storage_options)
    return uri


def build_dataset_manifest(shard_uris: Sequence[str], plan: DatasetPlan,
                           storage_options: Mapping[str, Any] | None = None) -> tuple[str, str, int]:
    """Write the per-patch lineage manifest of these shards (headers only are read).

    Returns ``(manifest uri, dataset hash, number of patches)``. Columns: source_key, shard_uri, index
    (within the shard), kind, name, params (JSON), seed, box (y, x, h, w), dataset_hash.
    """
    get_fs(plan.shards_dir, storage_options)[0].invalidate_cache()  # shards may come from other processes
    hashes = [u.rsplit("/", 1)[-1].removesuffix(".safetensors") for u in shard_uris]
    digest = dataset_hash(plan.recipe_hash, hashes)
    rows = []
    for uri in sorted(set(shard_uris)):
        meta = read_checkpoint_metadata(uri, storage_options)
        if meta.get("label_names") != plan.label_names:
            raise ValueError(f"{uri}: label names {meta.get('label_names')} differ from {plan.label_names}")
        for index, (kind, name, lineage) in enumerate(zip(meta["kinds"], meta["names"], meta["lineage"])):
            rows.append({"source_key": lineage["source_key"], "shard_uri": uri, "index": index, "kind": kind,
                         "name": name, "params": json.dumps(lineage["params"], sort_keys=True),
                         "seed": str(lineage["seed"]), "box": [int(v) for v in lineage["box"]],
                         "dataset_hash": digest})
    schema = pa.schema([("source_key", pa.string()), ("shard_uri", pa.string()), ("index", pa.int32()),
                        ("kind", pa.string()), ("name", pa.string()), ("params", pa.string()),
                        ("seed", pa.string()), ("box", pa.list_(pa.int32())), ("dataset_hash", pa.string())])
    metadata = {"abair.dataset_hash": digest, "abair.recipe_hash": plan.recipe_hash,
                "abair.label_names": json.dumps(plan.label_names)}
    table = pa.Table.from_pylist(rows, schema=schema).replace_schema_metadata(metadata)
    uri = join_uri(plan.dataset_dir, f"manifest-{digest}.parquet")
    write_parquet(uri, table, storage_options)
    return uri, digest, len(rows)


def read_dataset_manifest(uri: str, storage_options: Mapping[str, Any] | None = None) -> tuple[pa.Table, str]:
    """The per-patch manifest and its dataset hash."""
    table = read_parquet(uri, storage_options)
    meta = table.schema.metadata or {}
    digest = meta.get(b"abair.dataset_hash")
    if digest is None:
        raise ValueError(f"{uri} is not an ABAIR dataset manifest (no dataset hash in its metadata)")
    return table, digest.decode()


def load_dataset_patches(uri: str, storage_options: Mapping[str, Any] | None = None) -> PatchSet:
    """Every patch of a dataset manifest, in memory (shards read in the manifest's order)."""
    table, _ = read_dataset_manifest(uri, storage_options)
    shards = list(dict.fromkeys(table.column("shard_uri").to_pylist()))
    if not shards:
        raise ValueError(f"{uri}: the dataset has no patches (every source was skipped?)")
    return read_shards(shards, storage_options)


def finish_dataset(sources_uri: str, results: Sequence[Mapping[str, Any]], plan: DatasetPlan,
                   storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge the chunk results into the planned source table and write both manifests.

    ``sources_uri`` is the planned table of :func:`plan_sources`; ``results`` the rows returned by
    :func:`synthesize_chunk`. Returns the manifest URIs, the dataset hash, patch and shard counts and the
    skipped sources with their reasons.
    """
    planned = read_parquet(sources_uri, storage_options).to_pylist()
    by_key = {str(r["key"]): dict(r) for r in results}
    rows = [by_key.get(str(r["key"]), r) for r in planned]
    shards = [str(r["shard_uri"]) for r in rows if r["status"] in ("existing", "written")]
    if not shards:
        skipped = [f"{r['key']} ({r['reason']})" for r in rows if r["status"] == "skipped"]
        raise ValueError(f"no usable source photos under the configured source (skipped: {skipped or 'none found'})")
    manifest_uri, digest, patches = build_dataset_manifest(shards, plan, storage_options)
    final_sources = write_sources_manifest(rows, plan, digest, storage_options)
    counts = {status: sum(r["status"] == status for r in rows) for status in ("written", "existing", "skipped")}
    return {"dataset_hash": digest, "recipe_hash": plan.recipe_hash, "manifest_uri": manifest_uri,
            "sources_uri": final_sources, "patches": patches, "sources": len(rows),
            "shards_written": counts["written"], "shards_existing": counts["existing"],
            "skipped": [{"key": r["key"], "reason": r["reason"]} for r in rows if r["status"] == "skipped"]}
