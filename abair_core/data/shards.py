"""Patch shards on any fsspec storage: one safetensors file per shard (never pickle), lineage in its header."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from abair_core.checkpoints import load_checkpoint, save_checkpoint
from abair_core.data.patches import PatchSet

SHARD_KIND = "patch-shard"


def write_shard(uri: str, patches: PatchSet, storage_options: Mapping[str, Any] | None = None) -> str:
    """Write ``patches`` atomically to ``uri``; returns the shard's content fingerprint."""
    tensors = {
        "degraded": torch.from_numpy(patches.degraded),
        "clean": torch.from_numpy(patches.clean),
        "labels": torch.from_numpy(patches.labels),
    }
    metadata = {
        "kind": SHARD_KIND,
        "label_names": patches.label_names,
        "kinds": patches.kinds,
        "names": patches.names,
        "lineage": patches.lineage,
    }
    return save_checkpoint(uri, tensors, metadata, storage_options)


def read_shard(uri: str, storage_options: Mapping[str, Any] | None = None) -> PatchSet:
    """Load one shard written by :func:`write_shard`."""
    tensors, metadata = load_checkpoint(uri, expect={"kind": SHARD_KIND}, storage_options=storage_options)
    return PatchSet(
        degraded=tensors["degraded"].numpy(),
        clean=tensors["clean"].numpy(),
        labels=tensors["labels"].numpy(),
        kinds=list(metadata["kinds"]),
        names=list(metadata["names"]),
        label_names=list(metadata["label_names"]),
        lineage=list(metadata["lineage"]),
    )


def read_shards(uris: list[str], storage_options: Mapping[str, Any] | None = None) -> PatchSet:
    """Load and concatenate several shards into one in-memory training set."""
    return PatchSet.concatenate([read_shard(u, storage_options) for u in uris])
