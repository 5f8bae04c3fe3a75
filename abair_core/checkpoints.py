"""Checkpoints as safetensors files whose header carries their metadata; nothing is ever unpickled.

The metadata (config, class names, versions, the fingerprint of what a component builds on) is one
JSON document (sorted keys) stored under the single header key ``abair``; the tensors' own fingerprint
is added to that document under the reserved key ``_tensors_sha256``, checked on load and removed from
the metadata handed back. One header key keeps the file bytes deterministic (safetensors does not order
several metadata keys). :func:`load_checkpoint` compares ``expect`` with
the metadata *before* decoding any tensor, so a wrong adapter or backbone is refused up front.
Paths may be local or any fsspec URI; writes are atomic.
"""

from __future__ import annotations

import hashlib
import json
import struct
from collections.abc import Mapping
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors

from abair_core.io.storage import atomic_write_bytes, get_fs, read_bytes

__all__ = [
    "CheckpointError",
    "CheckpointMismatchError",
    "load_checkpoint",
    "read_checkpoint_metadata",
    "save_checkpoint",
    "tensors_fingerprint",
]

METADATA_KEY = "abair"
FINGERPRINT_KEY = "_tensors_sha256"
MAX_HEADER_BYTES = 100_000_000
_MISSING = object()


class CheckpointError(ValueError):
    """The file is not a readable ABAIR checkpoint (not safetensors, no metadata, damaged)."""


class CheckpointMismatchError(CheckpointError):
    """A metadata entry differs from what the caller expects; names the key, expected and found values."""

    def __init__(self, key: str, expected: Any, found: Any, path: str = "") -> None:
        self.key, self.expected, self.found = key, expected, found
        shown = "<missing>" if found is _MISSING else repr(found)
        where = f"{path}: " if path else ""
        super().__init__(f"{where}checkpoint metadata {key!r}: expected {expected!r}, found {shown}")


def tensors_fingerprint(tensors: Mapping[str, torch.Tensor]) -> str:
    """sha256 (hex) over sorted names, dtypes, shapes and raw bytes: equal iff the tensors are equal."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().to("cpu").contiguous()
        header = json.dumps([name, str(tensor.dtype), list(tensor.shape)]).encode()
        digest.update(struct.pack("<Q", len(header)) + header)
        raw = tensor.reshape(-1).view(torch.uint8).numpy().tobytes() if tensor.numel() else b""
        digest.update(struct.pack("<Q", len(raw)) + raw)
    return digest.hexdigest()


def save_checkpoint(
    path_or_uri: str,
    tensors: Mapping[str, torch.Tensor],
    metadata: Mapping[str, Any],
    storage_options: Mapping[str, Any] | None = None,
) -> str:
    """Write ``tensors`` + JSON ``metadata`` as one safetensors file, atomically; returns the fingerprint."""
    if FINGERPRINT_KEY in metadata:
        raise ValueError(f"checkpoint metadata key {FINGERPRINT_KEY!r} is reserved")
    plain = {name: t.detach().to("cpu").contiguous().clone() for name, t in tensors.items()}
    fingerprint = tensors_fingerprint(plain)
    try:
        encoded = json.dumps({**metadata, FINGERPRINT_KEY: fingerprint}, sort_keys=True, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"checkpoint metadata must be JSON-serialisable: {exc}") from exc
    data = save_safetensors(plain, metadata={METADATA_KEY: encoded})
    atomic_write_bytes(str(path_or_uri), data, storage_options)
    return fingerprint


def read_checkpoint_metadata(
    path_or_uri: str, storage_options: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The metadata dict, reading only the header (a few KB) of the file."""
    fs, path = get_fs(str(path_or_uri), storage_options)
    with fs.open(path, "rb") as handle:
        head = handle.read(8)
        size = _header_size(head, path_or_uri)
        header = handle.read(size)
    return _parse_header(head + header, path_or_uri)[0]


def load_checkpoint(
    path_or_uri: str,
    expect: Mapping[str, Any] | None = None,
    storage_options: Mapping[str, Any] | None = None,
) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """(tensors, metadata); raises :class:`CheckpointMismatchError` if ``expect`` disagrees with the metadata.

    ``expect`` keys are metadata keys, or dotted paths into nested dicts (``"config.preset"``).
    """
    data = read_bytes(str(path_or_uri), storage_options)
    metadata, stored_fingerprint = _parse_header(data, path_or_uri)
    for key, expected in (expect or {}).items():
        found = _lookup(metadata, key)
        if found is _MISSING or found != expected:
            raise CheckpointMismatchError(key, expected, found, str(path_or_uri))
    try:
        tensors = load_safetensors(data)
    except Exception as exc:
        raise CheckpointError(f"{path_or_uri}: damaged safetensors data: {exc}") from exc
    if stored_fingerprint and tensors_fingerprint(tensors) != stored_fingerprint:
        raise CheckpointError(f"{path_or_uri}: tensors do not match the fingerprint in the header")
    return tensors, metadata


def _header_size(head: bytes, source: Any) -> int:
    if len(head) < 8:
        raise CheckpointError(f"{source}: too short to be a safetensors file")
    (size,) = struct.unpack("<Q", head[:8])
    if size > MAX_HEADER_BYTES:
        raise CheckpointError(f"{source}: not a safetensors file (header size {size})")
    return size


def _parse_header(data: bytes, source: Any) -> tuple[dict[str, Any], str | None]:
    """(metadata, stored tensors fingerprint) from the start of a safetensors file."""
    size = _header_size(data[:8], source)
    try:
        header = json.loads(data[8 : 8 + size])
        extra = header.get("__metadata__") or {}
        metadata = json.loads(extra[METADATA_KEY])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(
            f"{source}: not an ABAIR checkpoint (no '{METADATA_KEY}' header metadata)"
        ) from exc
    if not isinstance(metadata, dict):
        raise CheckpointError(f"{source}: header metadata is not a JSON object")
    fingerprint = metadata.pop(FINGERPRINT_KEY, None)
    return metadata, fingerprint


def _lookup(metadata: Mapping[str, Any], key: str) -> Any:
    if key in metadata:
        return metadata[key]
    current: Any = metadata
    for part in key.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return _MISSING
        current = current[part]
    return current
