"""The three phases from files to files: patches from a dataset manifest in, one component file out.

What a pipeline step (a Prefect task, a notebook cell) calls: each function reads the patches of a
dataset manifest, runs one phase of :mod:`abair_core.training.recipe` (resuming mid-phase from
``resume_path`` when it exists) and writes a self-describing component file. Return values are small
JSON-friendly summaries, never modules or tensors.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from abair_core.checkpoints import load_checkpoint, tensors_fingerprint
from abair_core.components import (
    ensure_adapter_slots,
    load_adapter,
    load_backbone,
    save_adapter,
    save_backbone,
    save_estimator,
)
from abair_core.data.dataset import load_dataset_patches, read_dataset_manifest
from abair_core.data.patches import PatchSet
from abair_core.models.lora import remove_adapter
from abair_core.training.config import TrainConfig
from abair_core.training.loop import MetricsCallback, TrainResult
from abair_core.training.recipe import run_adapter, run_estimator, run_pretrain
from abair_core.training.warm_start import copy_adapter, pick_warm_start, score_adapters_on

__all__ = ["component_fingerprint", "train_adapter_file", "train_backbone_file", "train_estimator_file",
           "warm_start_adapter"]


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


def warm_start_adapter(config: TrainConfig, backbone: nn.Module, backbone_fp: str, name: str, patches: PatchSet,
                       candidates: Mapping[str, str]) -> dict[str, Any]:
    """Start adapter ``name`` as a copy of the candidate adapter file that restores its patches best.

    ``candidates``: old adapter id -> adapter file (trained on this backbone). Each is loaded under a
    private name, scored on ``name``'s single patches (:func:`score_adapters_on`) and removed again; the
    winner, when it beats the backbone alone, is copied into ``name``. Returns ``{"from": id or None,
    "scores": {...}}`` for the summary and the report.
    """
    ensure_adapter_slots(backbone, config.adapter)
    loaded = {old: f"warm_start_{old}" for old in candidates}
    for old, path in candidates.items():
        load_adapter(path, backbone, backbone_fp, name=loaded[old])
    try:
        public = {private: old for old, private in loaded.items()}
        scores = {public.get(k, k): v for k, v in score_adapters_on(backbone, patches, name, list(public)).items()}
        chosen = pick_warm_start(scores, list(candidates))
        if chosen is not None:
            copy_adapter(backbone, loaded[chosen], name)
    finally:
        for private in loaded.values():
            remove_adapter(backbone, private)
    return {"from": chosen, "scores": scores}


def train_adapter_file(config: TrainConfig, name: str, manifest_uri: str, backbone_path: str, adapter_path: str,
                       callback: MetricsCallback | None = None, resume_path: str | None = None,
                       storage_options: Mapping[str, Any] | None = None,
                       warm_start_candidates: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Phase II for adapter ``name`` on the backbone file; writes the adapter file (tagged with the backbone).

    With ``config.phase2.warm_start == "best"`` and ``warm_start_candidates`` (old adapter id -> file),
    the adapter starts from the best of them (:func:`warm_start_adapter`; the summary's ``warm_start``
    says which); a resumed run continues from its own state instead.
    """
    if name not in config.degradations:
        raise ValueError(f"adapter {name!r} is not one of the config's degradations {config.degradations}")
    patches = load_dataset_patches(manifest_uri, storage_options)
    backbone, backbone_fp = load_backbone(backbone_path)
    start: dict[str, Any] = {"from": None, "scores": {}}
    if config.phase2.warm_start == "best" and warm_start_candidates:
        start = warm_start_adapter(config, backbone, backbone_fp, name, patches, warm_start_candidates)
    result = run_adapter(config, backbone, name, patches, callback, resume_path)
    fingerprint = save_adapter(adapter_path, backbone, name, config.adapter, backbone_fp,
                               extra={**_lineage(config, manifest_uri, storage_options),
                                      "warm_start_from": start["from"]})
    return {**_summary(result, fingerprint), "warm_start": start}


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
