"""The three phases from files to files: patches from a dataset manifest in, one component file out.

What a pipeline step (a Prefect task, a notebook cell) calls: each function reads the patches of a
dataset manifest, runs one phase of :mod:`abair_core.training.recipe` (resuming mid-phase from
``resume_path`` when it exists) and writes a self-describing component file. Return values are small
JSON-friendly summaries, never modules or tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from abair_core.checkpoints import load_checkpoint, tensors_fingerprint
from abair_core.components import load_backbone, save_adapter, save_backbone, save_estimator
from abair_core.data.dataset import load_dataset_patches, read_dataset_manifest
from abair_core.training.config import TrainConfig
from abair_core.training.loop import MetricsCallback, TrainResult
from abair_core.training.recipe import run_adapter, run_estimator, run_pretrain

__all__ = ["component_fingerprint", "train_adapter_file", "train_backbone_file", "train_estimator_file"]


def _summary(result: TrainResult, fingerprint: str) -> dict[str, Any]:
    return {"fingerprint": fingerprint, "steps": result.steps, "metrics": dict(result.metrics),
            "seconds": result.seconds, "resumed_from": result.resumed_from, "device": result.device}


def _lineage(config: TrainConfig, manifest_uri: str, storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    _, digest = read_dataset_manifest(manifest_uri, storage_options)
    return {"train_name": config.name, "dataset_manifest": manifest_uri, "dataset_hash": digest}


def component_fingerprint(path: str) -> str:
    """The tensor fingerprint of a component file (what the next component records as its link)."""
    tensors, _ = load_checkpoint(path)
    return tensors_fingerprint(tensors)


def train_backbone_file(config: TrainConfig, manifest_uri: str, backbone_path: str,
                        callback: MetricsCallback | None = None, resume_path: str | None = None,
                        storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Phase I on the manifest's patches; writes the backbone file and returns a summary."""
    patches = load_dataset_patches(manifest_uri, storage_options)
    backbone, result = run_pretrain(config, patches, callback, resume_path)
    fingerprint = save_backbone(backbone_path, backbone, extra=_lineage(config, manifest_uri, storage_options))
    return _summary(result, fingerprint)


def train_adapter_file(config: TrainConfig, name: str, manifest_uri: str, backbone_path: str, adapter_path: str,
                       callback: MetricsCallback | None = None, resume_path: str | None = None,
                       storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Phase II for adapter ``name`` on the backbone file; writes the adapter file (tagged with the backbone)."""
    if name not in config.degradations:
        raise ValueError(f"adapter {name!r} is not one of the config's degradations {config.degradations}")
    patches = load_dataset_patches(manifest_uri, storage_options)
    backbone, backbone_fp = load_backbone(backbone_path)
    result = run_adapter(config, backbone, name, patches, callback, resume_path)
    fingerprint = save_adapter(adapter_path, backbone, name, config.adapter, backbone_fp,
                               extra=_lineage(config, manifest_uri, storage_options))
    return _summary(result, fingerprint)


def train_estimator_file(config: TrainConfig, manifest_uri: str, adapter_paths: Mapping[str, str],
                         estimator_path: str, callback: MetricsCallback | None = None,
                         resume_path: str | None = None,
                         storage_options: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Phase III over ``clean`` + the given adapters; the estimator file records each adapter's fingerprint."""
    adapters = [name for name in config.degradations if name in adapter_paths]
    if sorted(adapters) != sorted(adapter_paths):
        raise ValueError(f"adapters {sorted(adapter_paths)} must be among the config's {config.degradations}")
    patches = load_dataset_patches(manifest_uri, storage_options)
    estimator, result = run_estimator(config, adapters, patches, callback, resume_path)
    adapter_fps = {name: component_fingerprint(adapter_paths[name]) for name in adapters}
    fingerprint = save_estimator(estimator_path, estimator, adapter_fps,
                                 extra=_lineage(config, manifest_uri, storage_options))
    return _summary(result, fingerprint)
