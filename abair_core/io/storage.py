"""fsspec storage helpers: safe keys, listing, atomic writes and Parquet manifests on any URI.

One code path serves a local folder (plain path or ``file://``), ``memory://`` in tests and object
stores such as ``s3://`` (fsspec loads s3fs by protocol; the core never imports it). Writes are atomic:
a reader sees the old object or the complete new one, never a partial file. Locally that is a temp file
in the target's folder plus ``os.replace``; on object stores the bytes go to ``<key>.tmp-<uuid>`` and are
moved (server-side copy + delete) onto the key, so the final key only ever holds a complete object.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq
from fsspec.core import split_protocol
from fsspec.implementations.local import LocalFileSystem

__all__ = [
    "FileInfo",
    "atomic_write_bytes",
    "exists",
    "get_fs",
    "join_uri",
    "list_files",
    "read_bytes",
    "read_parquet",
    "safe_relative_key",
    "uris_overlap",
    "write_parquet",
]

TEMP_SUFFIX_RE = re.compile(r"\.tmp-[0-9a-f]{32}$")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_LOCAL_PROTOCOLS = (None, "", "file", "local")


@dataclass(frozen=True)
class FileInfo:
    """One listed object: ``key`` relative to the listed prefix, its full ``uri``, size and change token."""

    key: str
    uri: str
    size: int
    etag_or_mtime: str


def get_fs(
    uri: str, storage_options: Mapping[str, Any] | None = None
) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem for ``uri`` and the path inside it (protocol stripped)."""
    fs, path = fsspec.core.url_to_fs(str(uri), **dict(storage_options or {}))
    return fs, path


def safe_relative_key(key: str) -> str:
    """Normalise a relative key ("a/./b" -> "a/b"); refuse "..", absolute paths, backslashes, drives, empty."""
    if not isinstance(key, str) or not key.strip():
        raise ValueError(f"unsafe key {key!r}: empty")
    if "\\" in key or "\x00" in key:
        raise ValueError(f"unsafe key {key!r}: backslash or NUL")
    if key.startswith(("/", "~")) or _DRIVE_RE.match(key) or "://" in key:
        raise ValueError(f"unsafe key {key!r}: absolute path or URI")
    parts = [part for part in key.split("/") if part not in ("", ".")]
    if any(part == ".." for part in parts):
        raise ValueError(f"unsafe key {key!r}: '..' component")
    if not parts:
        raise ValueError(f"unsafe key {key!r}: empty after normalisation")
    return "/".join(parts)


def join_uri(prefix: str, key: str) -> str:
    """``prefix`` + "/" + a safe relative ``key``, keeping the prefix's protocol."""
    return f"{str(prefix).rstrip('/')}/{safe_relative_key(key)}"


def list_files(
    prefix_uri: str,
    include: str | Iterable[str] = "**/*",
    storage_options: Mapping[str, Any] | None = None,
) -> list[FileInfo]:
    """Every object under ``prefix_uri`` whose relative key matches a glob in ``include``, sorted by key.

    Globs: ``*`` and ``?`` stay within one folder, ``**/`` spans any number of folders (none included),
    matching is case-sensitive. Temporary objects left by an interrupted atomic write are skipped.
    """
    fs, root = get_fs(prefix_uri, storage_options)
    root = root.rstrip("/")
    patterns = [include] if isinstance(include, str) else list(include)
    regexes = [_glob_regex(p) for p in patterns]
    if not fs.isdir(root):
        return []
    found = fs.find(root, detail=True)
    infos = []
    for path, info in found.items():
        if info.get("type", "file") != "file" or not path.startswith(root + "/"):
            continue
        key = path[len(root) + 1 :]
        if TEMP_SUFFIX_RE.search(key) or not any(r.fullmatch(key) for r in regexes):
            continue
        # The URI is built without the key-safety check: an unsafe key must reach the planner, which
        # refuses that one object, instead of aborting the whole listing here.
        uri = f"{prefix_uri.rstrip('/')}/{key}"
        infos.append(FileInfo(key, uri, int(info.get("size") or 0), _change_token(info)))
    return sorted(infos, key=lambda item: item.key)


def read_bytes(uri: str, storage_options: Mapping[str, Any] | None = None) -> bytes:
    """The whole object at ``uri``."""
    fs, path = get_fs(uri, storage_options)
    return fs.cat_file(path)


def exists(uri: str, storage_options: Mapping[str, Any] | None = None) -> bool:
    """Whether an object or folder exists at ``uri``."""
    fs, path = get_fs(uri, storage_options)
    return bool(fs.exists(path))


def atomic_write_bytes(uri: str, data: bytes, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``data`` to ``uri`` so that readers never see a partial object (see the module docstring)."""
    fs, path = get_fs(uri, storage_options)
    if isinstance(fs, LocalFileSystem):
        _atomic_write_local(path, data)
        return
    temp = f"{path}.tmp-{uuid.uuid4().hex}"
    fs.pipe_file(temp, bytes(data))
    try:
        fs.mv(temp, path)
    except BaseException:
        if fs.exists(temp):
            fs.rm(temp)
        raise
    if fs.exists(temp):  # some stores implement mv as copy without delete
        fs.rm(temp)


def write_parquet(uri: str, table: pa.Table, storage_options: Mapping[str, Any] | None = None) -> None:
    """Write ``table`` as one Parquet object, atomically."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    atomic_write_bytes(uri, buffer.getvalue(), storage_options)


def read_parquet(uri: str, storage_options: Mapping[str, Any] | None = None) -> pa.Table:
    """Read one Parquet object written by :func:`write_parquet` (or anyone)."""
    return pq.read_table(io.BytesIO(read_bytes(uri, storage_options)))


def uris_overlap(a: str, b: str) -> bool:
    """Whether one URI is the other or lies inside it (so a run could read its own outputs)."""
    proto_a, path_a = _canonical(a)
    proto_b, path_b = _canonical(b)
    if proto_a != proto_b:
        return False
    return path_a == path_b or path_a.startswith(path_b + "/") or path_b.startswith(path_a + "/")


def _canonical(uri: str) -> tuple[str, str]:
    protocol, path = split_protocol(str(uri))
    if protocol in _LOCAL_PROTOCOLS:
        return "file", os.path.realpath(os.path.abspath(os.path.expanduser(path))).rstrip("/") or "/"
    protocol = {"s3a": "s3", "gcs": "gs"}.get(protocol, protocol)
    return protocol, path.strip("/")


def _atomic_write_local(path: str, data: bytes) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    temp = f"{path}.tmp-{uuid.uuid4().hex}"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise


def _glob_regex(pattern: str) -> re.Pattern[str]:
    """Translate a path glob (``**/``, ``**``, ``*``, ``?``) to an anchored regex on "/"-separated keys."""
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out))


def _change_token(info: Mapping[str, Any]) -> str:
    """An ETag when the store has one, else the modification time, as a string."""
    for name in ("ETag", "etag", "ETAG"):
        if info.get(name):
            return str(info[name]).strip('"')
    for name in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(name)
        if isinstance(value, datetime):
            return value.isoformat()
        if value is not None:
            return repr(float(value)) if isinstance(value, int | float) else str(value)
    return ""
