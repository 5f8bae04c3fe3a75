"""Adding (or replacing) one degradation on a trained ABAIR: the recipe, the checks and the report.

The paper's promise: a new degradation costs one new adapter and a retrained estimator, not a new
model. This module holds the Prefect-free logic of that retraining (what ``flows/add_degradation.py``
orchestrates):

* :class:`AddedDegradationConfig` - the spec file an engineer passes (``configs/degradations/added/``):
  the training range of the new type and, optionally, the evaluation task that scores it;
* :func:`check_added_degradation` - build it, check its id and run
  :func:`~abair_core.degradations.registry.validate_plugin` on a real photo (refusing a
  non-deterministic or shape-, dtype- or range-changing plugin before any training);
* :func:`extension_configs` - the two recipes derived from the base bundle's recipe: one that
  synthesizes the new type only (single + clean patches) and trains its adapter, and one over every
  adapter (old and new) for the estimator;
* :func:`train_extended_estimator_file` - Phase III over the union of several datasets (the old
  adapters' shards found through their lineage plus the new type's), label maps re-indexed into one
  vocabulary;
* :func:`parameter_budget`, :func:`compare_scores`, :func:`build_extension_report` and
  :func:`render_extension_report` - the before/after report.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import Field

from abair_core.checkpoints import load_checkpoint
from abair_core.components import class_names_for, load_estimator, save_estimator, stored_estimator_config
from abair_core.config import ConfigError, StrictConfig, load_yaml, validate_config
from abair_core.data.dataset import load_dataset_patches, read_dataset_manifest
from abair_core.data.patches import PatchSet
from abair_core.degradations.base import Degradation
from abair_core.degradations.registry import (
    CLEAN,
    build_degradation,
    get_degradation_class,
    list_degradations,
    register_degradation,
    validate_plugin,
)
from abair_core.degradations.specs import DegradationSetConfig
from abair_core.evaluation.suite import BenchmarkSuite, BenchmarkTask
from abair_core.io.errors import ImageDecodeError
from abair_core.io.image_codec import decode_image
from abair_core.io.storage import exists, list_files, read_bytes
from abair_core.models.estimator import SHAPE_FIELDS, DegradationEstimator
from abair_core.training.config import TrainConfig
from abair_core.training.loop import MetricsCallback, TrainResult
from abair_core.training.recipe import run_estimator
from abair_core.training.steps import component_fingerprint
from abair_core.training.warm_start import start_estimator_from

__all__ = [
    "ADDED_GROUP",
    "AddedDegradationConfig",
    "AddedPhotos",
    "build_extension_report",
    "check_added_degradation",
    "check_photo",
    "check_removal",
    "compare_scores",
    "count_parameters",
    "extension_configs",
    "find_task",
    "load_added_degradation",
    "load_union_patches",
    "missing_manifests",
    "parameter_budget",
    "partner_specs",
    "reduced_config",
    "register_added_degradation",
    "removed_task_spec",
    "render_extension_report",
    "resolved_base_distillation",
    "resolved_estimator_trainable",
    "spec_digest",
    "suite_with_task",
    "train_extended_estimator_file",
    "training_spec",
    "worst_changes",
    "write_spec_file",
]

ADDED_GROUP = "added"
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
CHECK_PHOTO_SIZE = 128


class AddedPhotos(StrictConfig):
    """Photos the new type's training data is synthesized from, in place of the base recipe's.

    A new degradation often comes with the photos that show where it matters (a JPEG archive, scans),
    and some types need more photos than the base recipe has: on the demo's 13 sample photos no JPEG
    adapter generalises (docs/BENCHMARKS.md "Adapter learnability: demo model, JPEG, other adapter shapes").
    """

    source: str = Field(..., description="URI prefix (or folder) of clean photos")
    include: str = Field("**/*", description="glob of files under the source")
    exclude: list[str] = Field(default_factory=list, description="globs never trained on (held-out photos)")


class AddedDegradationConfig(StrictConfig):
    """A spec file for ``add-degradation``: the training range and, optionally, how to score it.

    ``degradation`` is one ``{type: ..., **params}`` spec: a registered name (built-in or an
    ``abair.degradations`` entry point) or a dotted ``package.module:ClassName`` plugin. ``evaluation``
    is the fixed-strength spec of the task added to the benchmark suite when the suite has none for
    this id (default: the training spec). ``photos`` (optional) replaces the base recipe's photos for
    the new type's data only; the old types keep theirs. A bare spec (top-level ``type:``) is accepted too.
    """

    degradation: dict[str, Any] = Field(..., description="the training spec {type: ..., params}")
    evaluation: dict[str, Any] | None = Field(None, description="the evaluation task's spec (default: training)")
    photos: AddedPhotos | None = Field(None, description="the new type's training photos (default: the base's)")


def load_added_degradation(path: str | Path) -> AddedDegradationConfig:
    """Read an added-degradation spec file (the wrapped form or a bare ``type:`` spec)."""
    data = load_yaml(path)
    if isinstance(data, Mapping) and "type" in data:
        data = {"degradation": dict(data)}
    config = validate_config(data, AddedDegradationConfig, source=str(path))
    for key in ("degradation", "evaluation"):
        spec = getattr(config, key)
        if spec is not None and "type" not in spec:
            raise ConfigError(f"{path}: key '{key}.type': missing (a registered name or 'package.module:Class')")
    return config


def training_spec(name: str, added: AddedDegradationConfig | None, specs_path: str) -> dict[str, Any]:
    """The training spec of ``name``: from the added spec file, else from the base recipe's spec file."""
    if added is not None:
        return dict(added.degradation)
    for spec in validate_config(load_yaml(specs_path), DegradationSetConfig, source=specs_path).degradations:
        if spec.get("type") == name:
            return dict(spec)
    raise ConfigError(f"no training range for degradation {name!r} in {specs_path}: pass a spec file "
                      f"(--spec configs/degradations/added/<id>.yaml)")


def _declared_id(spec: Mapping[str, Any]) -> str | None:
    """The id a spec's class declares: the registered name, or a dotted plugin's ``registered_name``."""
    type_name = str(spec["type"])
    if ":" not in type_name:
        return type_name
    return get_degradation_class(type_name).__dict__.get("registered_name")


def register_added_degradation(name: str, spec: Mapping[str, Any]) -> None:
    """Make a dotted plugin known under ``name`` in this process (the dataset planner checks ids)."""
    type_name = str(spec["type"])
    if ":" in type_name and name not in list_degradations():
        register_degradation(name)(get_degradation_class(type_name))


def check_photo(source_uri: str, include: str = "**/*", storage_options: Mapping[str, Any] | None = None,
                size: int = CHECK_PHOTO_SIZE, max_pixels: int = 50_000_000) -> np.ndarray:
    """A centre crop of the first decodable photo under ``source_uri`` (what plugins are checked on)."""
    for info in list_files(source_uri, include, storage_options):
        try:
            photo = decode_image(read_bytes(info.uri, storage_options), max_pixels).rgb
        except ImageDecodeError:
            continue
        h, w = photo.shape[:2]
        y, x = max(0, (h - size) // 2), max(0, (w - size) // 2)
        return np.ascontiguousarray(photo[y:y + size, x:x + size], dtype=np.float32)
    raise ValueError(f"no decodable photo under {source_uri} to check the degradation on")


def check_added_degradation(name: str, spec: Mapping[str, Any], photo: np.ndarray,
                            existing: Sequence[str], replace: bool = False,
                            seeds: Sequence[int] = (0, 1)) -> Degradation:
    """Build and validate the new degradation; raise ``ValueError`` saying why it is refused.

    Refused: an id that is not snake_case or is ``clean``; an id already among ``existing`` adapters
    (unless ``replace``) or, with ``replace``, not among them; a dotted plugin that does not declare
    ``registered_name = name`` (worker processes must build it under the same id); a spec whose type
    is another id; and any plugin :func:`validate_plugin` refuses on the real ``photo`` (not
    deterministic for a seed, changes shape, dtype or range, modifies its input).
    """
    if not _ID.match(name or ""):
        raise ValueError(f"degradation id {name!r} must be snake_case (e.g. 'jpeg', 'bit_depth')")
    if name == CLEAN:
        raise ValueError(f"'{CLEAN}' is the no-degradation class, not a degradation id")
    if replace and name not in existing:
        raise ValueError(f"cannot replace adapter {name!r}: the base bundle has adapters {list(existing)}")
    if not replace and name in existing:
        raise ValueError(f"the base bundle already has an adapter {name!r}; retrain it with --replace")
    try:
        declared = _declared_id(spec)
    except (KeyError, TypeError) as exc:
        raise ValueError(f"degradation {name!r}: {exc.args[0] if exc.args else exc}") from None
    if declared is None:
        raise ValueError(
            f"plugin {spec['type']!r} does not declare its id: add `registered_name = {name!r}` to the class "
            f"(or publish it as an 'abair.degradations' entry point named {name!r}) so every worker builds it "
            f"under the same id")
    if declared != name:
        raise ValueError(f"degradation {name!r}: the spec's type {spec['type']!r} is the degradation "
                         f"{declared!r}; the id and the type must agree")
    try:
        degradation = build_degradation(dict(spec), source=f"degradation '{name}'")
    except (KeyError, TypeError) as exc:
        raise ValueError(f"degradation {name!r}: {exc.args[0] if exc.args else exc}") from None
    for seed in seeds:
        validate_plugin(degradation, rng_seed=seed, image=photo)
    return degradation


def extension_configs(base: TrainConfig, name: str, specs_path: str,
                      overrides: TrainConfig | None = None,
                      partners: Sequence[str] = (),
                      photos: AddedPhotos | None = None) -> tuple[TrainConfig, TrainConfig]:
    """The recipes of one retraining, derived from the base bundle's recipe.

    Returns ``(new_only, extended)``. ``new_only`` synthesizes ``name`` alone from the base photo
    source (``single`` and ``clean`` patches, no composites) using ``specs_path`` and trains its
    adapter; with ``partners`` (old ids whose ranges ``specs_path`` also holds) it adds the recipe's
    ``sequence`` patches, each pairing ``name`` with one partner, so the retrained estimator sees the
    new type mixed with the old ones. ``extended`` lists every adapter (the base's, then ``name`` when
    new) for the estimator and the bundle. Schedules, adapter and estimator settings come from
    ``overrides`` (a training config file) when given, else from the base recipe; the model preset is
    always the base's (the adapter trains on the base backbone). ``photos`` (the spec file's) replaces
    the base's photo source for ``new_only`` alone.
    """
    source = overrides or base
    degradations = list(base.degradations) + ([] if name in base.degradations else [name])
    partners = [p for p in partners if p != name]
    settings = _retraining_settings(source)
    phase2 = settings.pop("phase2")  # each recipe below keeps the identity shares of its own adapters
    shared = {"model": base.model, "phase1": base.phase1.model_dump(mode="json"), **settings}
    counts = source.synthesis.counts.model_dump(mode="json")
    synthesis = {**source.synthesis.model_dump(mode="json"),
                 "counts": {**counts, "composite": 0, "sequence": counts["sequence"] if partners else 0}}
    new_only = TrainConfig.model_validate({
        **shared, "name": f"{base.name}-add-{name}".replace("_", "-"), "degradations": [name],
        "phase2": _identity_shares_of(phase2, [name]),
        "sequence_partners": partners,
        "data": {**base.data.model_dump(mode="json"), "degradation_specs": specs_path,
                 **(photos.model_dump(mode="json") if photos is not None else {})},
        "synthesis": synthesis})
    extended = TrainConfig.model_validate({
        **shared, "name": f"{base.name}-with-{name}".replace("_", "-"), "degradations": degradations,
        "phase2": _identity_shares_of(phase2, degradations),
        "data": base.data.model_dump(mode="json"), "synthesis": base.synthesis.model_dump(mode="json")})
    return new_only, extended


def _retraining_settings(source: TrainConfig) -> dict[str, Any]:
    """What a retraining takes from its recipe (the overrides file, else the base's): adapter, estimator, II, III."""
    return {key: getattr(source, key).model_dump(mode="json") for key in ("adapter", "estimator", "phase2", "phase3")}


def _identity_shares_of(phase2: dict[str, Any], degradations: Sequence[str]) -> dict[str, Any]:
    """Phase II settings with ``clean_fraction_by_type`` cut to ``degradations`` (a retraining's own adapters)."""
    by_type = phase2.get("clean_fraction_by_type", {})
    return {**phase2, "clean_fraction_by_type": {n: v for n, v in by_type.items() if n in degradations}}


def reduced_config(base: TrainConfig, name: str, overrides: TrainConfig | None = None) -> TrainConfig:
    """The recipe of a bundle without adapter ``name``: the base's, minus ``name`` (schedules from ``overrides``)."""
    kept = [n for n in base.degradations if n != name]
    settings = _retraining_settings(overrides or base)
    phase2 = _identity_shares_of(settings.pop("phase2"), kept)
    return TrainConfig.model_validate({
        **base.model_dump(mode="json"), "name": f"{base.name}-without-{name}".replace("_", "-"),
        "degradations": kept, **settings, "phase2": phase2})


def check_removal(name: str, adapters: Sequence[str], base_version: str) -> None:
    """Refuse to remove an adapter the base does not have, or its last one (a bundle needs one)."""
    if name not in adapters:
        raise ValueError(f"cannot remove {name!r}: abair v{base_version} has no such adapter "
                         f"(adapters: {', '.join(adapters)})")
    if len(adapters) < 2:
        raise ValueError(f"cannot remove {name!r}: it is the only adapter of abair v{base_version}")


def removed_task_spec(name: str, added: AddedDegradationConfig | None, specs_path: str) -> dict[str, Any]:
    """A spec for the removed type's evaluation task (used only when the suite has no task for it)."""
    if added is not None:
        return dict(added.evaluation or added.degradation)
    try:
        return training_spec(name, None, specs_path)
    except ConfigError:
        return {"type": name}


def partner_specs(specs_path: str, names: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Training specs of ``names`` found in a spec file (the base recipe's): the new type's sequence partners.

    An old type without a range there (a plugin added by its own spec file) is left out: it gets no
    mixtures with the new type, and everything else still works.
    """
    found: dict[str, dict[str, Any]] = {}
    for spec in validate_config(load_yaml(specs_path), DegradationSetConfig, source=specs_path).degradations:
        declared = _declared_id(spec)
        if declared in names and declared not in found:
            found[declared] = dict(spec)
    return {n: found[n] for n in names if n in found}


def write_spec_file(path: str | Path, specs: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """A degradation spec file (the format of ``configs/degradations/train.yaml``) of one or more specs."""
    entries = [dict(specs)] if isinstance(specs, Mapping) else [dict(s) for s in specs]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump({"degradations": entries}, sort_keys=True))
    return str(path)


def spec_digest(spec: Mapping[str, Any] | Sequence[Mapping[str, Any]]) -> str:
    """A short hash of one spec or a list of specs (names the folder of its spec file)."""
    payload = dict(spec) if isinstance(spec, Mapping) else [dict(s) for s in spec]
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:12]


def missing_manifests(uris: Sequence[str | None], storage_options: Mapping[str, Any] | None = None) -> list[str]:
    """The lineage manifests that cannot be read (``None`` = no lineage recorded)."""
    missing = []
    for uri in uris:
        if uri is None or not exists(uri, storage_options):
            missing.append(str(uri))
            continue
        try:
            read_dataset_manifest(uri, storage_options)
        except (OSError, ValueError):
            missing.append(uri)
    return missing


def _reindex(patches: PatchSet, label_names: Sequence[str]) -> PatchSet:
    """The same patches with label maps re-indexed into ``label_names`` (unknown labels become clean)."""
    index = {n: i for i, n in enumerate(label_names)}
    table = np.asarray([index.get(n, 0) for n in patches.label_names], dtype=np.uint8)
    return PatchSet(patches.degraded, patches.clean, table[patches.labels], list(patches.kinds),
                    list(patches.names), list(label_names), list(patches.lineage))


def load_union_patches(manifest_uris: Sequence[str], label_names: Sequence[str],
                       storage_options: Mapping[str, Any] | None = None) -> PatchSet:
    """Every patch of several dataset manifests in one set over the vocabulary ``label_names``."""
    uris = list(dict.fromkeys(manifest_uris))
    if not uris:
        raise ValueError("no dataset manifests to train on")
    sets = [_reindex(load_dataset_patches(uri, storage_options), label_names) for uri in uris]
    return PatchSet.concatenate(sets)


def train_extended_estimator_file(config: TrainConfig, manifest_uris: Sequence[str],
                                  adapter_paths: Mapping[str, str], estimator_path: str,
                                  callback: MetricsCallback | None = None, resume_path: str | None = None,
                                  storage_options: Mapping[str, Any] | None = None,
                                  base_estimator_path: str | None = None) -> dict[str, Any]:
    """Phase III over ``clean`` + every adapter, on the union of the datasets of all adapters.

    Like :func:`abair_core.training.steps.train_estimator_file` with several manifests: the estimator
    file records each adapter's fingerprint and the manifests and dataset hashes it was trained on.
    With ``config.phase3.warm_start == "base"`` and ``base_estimator_path`` it starts from that estimator
    (:func:`abair_core.training.warm_start.start_estimator_from`; the summary's ``warm_start`` lists the
    classes carried over). With ``base_estimator_path`` the loss also keeps that estimator's answers on the
    classes it knows, weighted by ``phase3.base_distillation`` (:func:`resolved_base_distillation`; the summary's
    ``base_distillation`` is the weight used).
    """
    adapters = [name for name in config.degradations if name in adapter_paths]
    if sorted(adapters) != sorted(adapter_paths):
        raise ValueError(f"adapters {sorted(adapter_paths)} must be among the config's {config.degradations}")
    patches = load_union_patches(manifest_uris, class_names_for(config.degradations), storage_options)
    missing = [n for n in adapters if not len(patches.indices(("single",), (n,)))]
    if missing:
        raise ValueError(f"the datasets {list(manifest_uris)} hold no single patches of {missing}")
    if config.phase3.balance_classes is None:  # a union of datasets: the new type's data outweighs each old type's
        config = config.model_copy(update={"phase3": config.phase3.model_copy(update={"balance_classes": True})})
    start: dict[str, Any] = {"from": None, "classes": []}
    init = None
    class_names = class_names_for(adapters)
    trainable = resolved_estimator_trainable(config, base_estimator_path)
    base: dict[str, Any] = {"state": None, "classes": [], "heads": [], "experts": {}}
    if config.phase3.warm_start == "base" and base_estimator_path is not None:
        base["state"], metadata = load_checkpoint(base_estimator_path, expect={"kind": "estimator"})
        base.update(classes=list(metadata["class_names"]), heads=list(metadata.get("head_classes", [])),
                    experts=dict(metadata.get("experts", {})))
        config = with_base_estimator_shape(config, metadata)

        def init(estimator: DegradationEstimator) -> None:
            start["classes"] = start_estimator_from(estimator, base["state"], base["classes"], base["heads"],
                                                    list(base["experts"]))
            start["from"] = "base"
    elif trainable == "new_classes":
        raise ValueError("phase3.trainable 'new_classes' needs the base bundle's estimator to keep, and none was given")
    weight = resolved_base_distillation(config, base_estimator_path)
    teacher = load_estimator(base_estimator_path) if weight > 0 else None
    new_classes = [c for c in class_names if c not in base["classes"]] if trainable == "new_classes" else None
    if new_classes is None:
        estimator, result = run_estimator(config, adapters, patches, callback, resume_path, init,
                                          teacher=teacher, distill_weight=weight)
    else:
        estimator, result, carried = _estimator_with_experts(config, adapters, patches, base, new_classes, init,
                                                             teacher, weight, callback, resume_path)
        start = {"from": "base", "classes": carried}  # also when nothing trained (a removal, a replacement)
    hashes = [read_dataset_manifest(uri, storage_options)[1] for uri in dict.fromkeys(manifest_uris)]
    adapter_fps = {name: component_fingerprint(adapter_paths[name]) for name in adapters}
    extra = {"train_name": config.name, "dataset_manifests": list(dict.fromkeys(manifest_uris)),
             "dataset_hashes": hashes}
    fingerprint = save_estimator(estimator_path, estimator, adapter_fps, extra=extra)
    return {"fingerprint": fingerprint, "steps": result.steps, "metrics": dict(result.metrics),
            "seconds": result.seconds, "resumed_from": result.resumed_from, "device": result.device,
            "patches": len(patches), "dataset_hashes": hashes, "warm_start": start,
            "balance_classes": config.phase3.balance_classes,
            "base_distillation": weight, "trainable": trainable,
            "trained_classes": new_classes,
            "trainable_parameters": None if new_classes is None else
            sum(p.numel() for name in new_classes for p in estimator.experts[name].parameters())}


def with_base_estimator_shape(config: TrainConfig, metadata: Mapping[str, Any]) -> TrainConfig:
    """``config`` with the estimator shape (width, depth, stem, ...) of the base estimator file it starts from.

    A warm start copies the base's tensors, so the new estimator must have its shape: a base trained before its
    recipe's estimator changed (the demo's ``stem: space_to_depth`` of 2026-12-07) is still extended as it is.
    The other estimator settings (crops, gates, soft-weight sharpness) stay the recipe's.
    """
    stored = stored_estimator_config(metadata)
    shape = {key: stored[key] for key in SHAPE_FIELDS if key in stored}
    return config.model_copy(update={"estimator": config.estimator.model_copy(update=shape)})


def _estimator_with_experts(config: TrainConfig, adapters: list[str], patches: PatchSet, base: Mapping[str, Any],
                            new_classes: list[str], init: Callable[[DegradationEstimator], None] | None,
                            teacher: DegradationEstimator | None, weight: float, callback: MetricsCallback | None,
                            resume_path: str | None) -> tuple[DegradationEstimator, TrainResult, list[str]]:
    """``phase3.trainable: new_classes``: the base estimator as it is, gated by one expert per new class.

    The expert is an estimator over every class, started from the base and trained like ``all`` (distillation
    included) for ``phase3.expert_steps``; only its probability of the new class is used. No new class (a
    removal, a replacement): nothing trains and the estimator is the base's without the removed classes. Returns
    the estimator, the expert's training result and the classes carried over from the base.
    """
    if len(new_classes) > 1:
        raise ValueError(f"add one degradation at a time (new classes {new_classes})")
    class_names = class_names_for(adapters)
    experts = {n: v for n, v in base["experts"].items() if n in class_names}
    result = TrainResult(steps=0)
    trained: DegradationEstimator | None = None
    if new_classes:
        longer = config.phase3.model_copy(update={"steps": config.phase3.resolved_expert_steps()})
        trained, result = run_estimator(config.model_copy(update={"phase3": longer}), adapters, patches, callback,
                                        resume_path, init, teacher=teacher, distill_weight=weight)
        experts[new_classes[0]] = trained.class_names
    estimator = DegradationEstimator(config.estimator, class_names,
                                     [h for h in base["heads"] if h in class_names], experts)
    carried = start_estimator_from(estimator, base["state"], base["classes"], base["heads"], list(base["experts"]))
    if trained is not None:
        estimator.experts[new_classes[0]].load_state_dict(trained.state_dict())
    return estimator.eval(), result, carried


def resolved_estimator_trainable(config: TrainConfig, base_estimator_path: str | None) -> str:
    """``phase3.trainable``, its null resolved: 'new_classes' when the estimator starts from a base, else 'all'."""
    if config.phase3.trainable is not None:
        return config.phase3.trainable
    return "new_classes" if config.phase3.warm_start == "base" and base_estimator_path is not None else "all"


def resolved_estimator_steps(config: TrainConfig, base_estimator_path: str | None) -> int:
    """The steps Phase III runs: ``phase3.expert_steps`` when a new class's expert trains, else ``phase3.steps``."""
    if resolved_estimator_trainable(config, base_estimator_path) == "new_classes":
        return config.phase3.resolved_expert_steps()
    return config.phase3.steps


def resolved_base_distillation(config: TrainConfig, base_estimator_path: str | None) -> float:
    """``phase3.base_distillation``, its null resolved to 1.0; 0 without a base estimator (nothing to keep)."""
    if base_estimator_path is None:
        return 0.0
    return 1.0 if config.phase3.base_distillation is None else float(config.phase3.base_distillation)


NORMALISATION_BUFFERS = frozenset({"running_mean", "running_var", "num_batches_tracked"})


def count_parameters(path: str | Path) -> int:
    """Trainable scalars stored in a safetensors component file (header only; BatchNorm running stats skipped)."""
    from safetensors import safe_open

    total = 0
    with safe_open(str(path), framework="numpy") as handle:
        for key in handle.keys():  # noqa: SIM118 - safe_open is not a dict
            if key.rsplit(".", 1)[-1] in NORMALISATION_BUFFERS:  # running statistics, not trained
                continue
            total += int(np.prod(handle.get_slice(key).get_shape(), dtype=np.int64))
    return total


def parameter_budget(bundle_dir: str | Path, trained_adapters: Sequence[str],
                     estimator_trained: int | None = None) -> dict[str, Any]:
    """Trainable parameters of this retraining (the trained adapters + the estimator) vs the whole model.

    ``estimator_trained``: the estimator scalars that trained when not all of them did (``phase3.trainable:
    new_classes``: the new class's expert).
    """
    directory = Path(bundle_dir)
    manifest = json.loads((directory / "bundle.json").read_text())
    backbone = count_parameters(directory / "backbone.safetensors")
    adapters = {n: count_parameters(directory / f"adapter-{n}.safetensors") for n in manifest["adapters"]}
    estimator = count_parameters(directory / "estimator.safetensors")
    total = backbone + sum(adapters.values()) + estimator
    trained = sum(adapters[n] for n in trained_adapters) + (estimator if estimator_trained is None
                                                            else min(estimator_trained, estimator))
    return {"backbone": backbone, "adapters": adapters, "estimator": estimator, "whole_model": total,
            "trainable": trained, "trainable_share": trained / total if total else 0.0,
            "trained_components": [*(f"adapter.{n}" for n in trained_adapters),
                                   "estimator" if estimator_trained is None else "the new class's expert estimator"]}


def _task_type(task: BenchmarkTask) -> str | None:
    specs = task.specs()
    if len(specs) != 1:
        return None
    try:
        return _declared_id(specs[0])
    except (KeyError, TypeError):
        return None


def find_task(suite: BenchmarkSuite, name: str) -> tuple[str, str] | None:
    """(group, task id) of the suite's first single-degradation task of type ``name``, if any."""
    for group, task in suite.tasks():
        if _task_type(task) == name or (task.label == name and task.oracle == [name]):
            return group, task.id
    return None


def suite_with_task(suite: BenchmarkSuite, name: str, spec: Mapping[str, Any]) -> tuple[BenchmarkSuite, str, str]:
    """The suite plus, when it has no task for ``name``, one in group ``added`` (id ``name``).

    Returns ``(suite, group, task id)``. The added task's oracle and estimator label are ``name``.
    """
    found = find_task(suite, name)
    if found is not None:
        return suite, found[0], found[1]
    task = BenchmarkTask.model_validate({"id": name, "degradation": dict(spec), "oracle": [name], "label": name})
    groups = {g: list(t) for g, t in suite.groups.items()}
    groups.setdefault(ADDED_GROUP, []).append(task)
    return suite.model_copy(update={"groups": groups}), ADDED_GROUP, name


def _psnr(scores: Mapping[str, Any], task: str, method: str) -> float | None:
    value = scores.get("scores", {}).get(task, {}).get(method, {}).get("psnr")
    return None if value is None else float(value)


def compare_scores(before: Mapping[str, Any], after: Mapping[str, Any], new_task: str,
                   methods: Sequence[str] = ("oh", "sw", "oracle")) -> dict[str, Any]:
    """PSNR before/after per task and method (``scores.json`` dicts of the same suite).

    Returns ``new_task`` ({method: {before, after, gain}}) and ``tasks`` (every other task:
    {group, methods: {method: {before, after, change}}}); a missing number (N/A) is None.
    """
    def pair(task: str, method: str, key: str) -> dict[str, float | None]:
        b, a = _psnr(before, task, method), _psnr(after, task, method)
        return {"before": b, "after": a, key: None if a is None or b is None else a - b}

    group_of = {t: g for g, tasks in after["groups"].items() for t in tasks}
    new = {m: pair(new_task, m, "gain") for m in ("input", *methods)}
    tasks = {t: {"group": g, "methods": {m: pair(t, m, "change") for m in methods}}
             for t, g in group_of.items() if t != new_task}
    return {"new_task": {"id": new_task, "group": group_of.get(new_task), "methods": new}, "tasks": tasks}


def worst_changes(comparison: Mapping[str, Any], groups: Sequence[str] | None = None) -> dict[str, float | None]:
    """The lowest after - before change under OH and SW over the other tasks (of ``groups`` only, when given)."""
    rows = [v for v in comparison["tasks"].values() if groups is None or v.get("group") in groups]
    return {m: min((v["methods"][m]["change"] for v in rows if v["methods"].get(m, {}).get("change") is not None),
                   default=None) for m in ("oh", "sw")}


def build_extension_report(*, name: str, action: str, base: Mapping[str, Any], new: Mapping[str, Any],
                           comparison: Mapping[str, Any], budget: Mapping[str, Any], seconds: float,
                           train_all_seconds: float | None, lineage: Mapping[str, Any],
                           suite: str, tolerance_db: float = 0.2,
                           partners: Sequence[str] = (),
                           warm_start: Mapping[str, Any] | None = None,
                           estimator_start: Mapping[str, Any] | None = None,
                           photos: str | None = None) -> dict[str, Any]:
    """The JSON report of one retraining (see :func:`render_extension_report` for its Markdown).

    ``action``: ``add``, ``replace`` or ``remove`` (then the "new task" is the removed type's task:
    before with its adapter, after without).
    ``base``/``new``: {version, components}; ``lineage``: how the old types' data was found
    (``mode`` "reused" or "re-synthesized", ``manifests``, ``missing``); ``partners``: the old types the
    new one was mixed with in sequence patches; ``warm_start``: where the trained adapter started
    (``{"from": id or None, "version": ..., "scores": {...}}``; None when nothing was trained);
    ``estimator_start``: where the retrained estimator started (``{"from": "base" or None, "version",
    "classes"}``, and ``base_distillation``, ``base_version``: the weight that kept that base estimator's
    answers, 0 for none); ``photos``: the source the new type's data came from (None: nothing synthesized).
    """
    worst = worst_changes(comparison)
    within = {m: (None if worst[m] is None else worst[m] >= -tolerance_db) for m in worst}
    known = worst_changes(comparison, ("known",))
    return {
        "degradation": name, "action": action, "suite": suite,
        "base": dict(base), "new": dict(new),
        "unchanged_components": sorted(k for k, v in new["components"].items()
                                       if base["components"].get(k) == v),
        "parameters": dict(budget),
        "wall_seconds": seconds, "train_all_seconds": train_all_seconds,
        "wall_share": None if not train_all_seconds else seconds / train_all_seconds,
        "lineage": dict(lineage), "comparison": dict(comparison), "mixed_with": list(partners),
        "photos": photos,
        "warm_start": None if warm_start is None else dict(warm_start),
        "estimator_start": None if estimator_start is None else dict(estimator_start),
        "old_tasks_worst_change_db": worst, "old_tasks_within_tolerance": within, "tolerance_db": tolerance_db,
        "known_tasks_worst_change_db": known,
        "known_tasks_within_tolerance": {m: (None if known[m] is None else known[m] >= -tolerance_db) for m in known},
    }


def _db(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "N/A"
    return f"{value:+.2f}" if signed else f"{value:.2f}"


def _count(n: int) -> str:
    return f"{n / 1e6:.2f}M" if n >= 1_000_000 else f"{n / 1e3:.1f}k" if n >= 1000 else str(n)


def _pins(components: Mapping[str, str], keys: Sequence[str]) -> str:
    return ", ".join(f"`{k}` v{components[k]}" for k in keys) or "none"


def render_extension_report(report: Mapping[str, Any]) -> str:
    """The before/after Markdown of one retraining."""
    name, comparison, p = report["degradation"], report["comparison"], report["parameters"]
    verb = {"add": "Added degradation", "replace": "Replaced adapter", "remove": "Removed adapter"}[report["action"]]
    base, new = report["base"], report["new"]
    reused = list(report["unchanged_components"])
    changed = sorted(k for k in new["components"] if k not in reused)
    share = 100 * p["trainable_share"]
    lines = [f"# {verb} `{name}`: abair v{base['version']} -> v{new['version']} (challenger)", "",
             (f"- Components retrained: {_pins(new['components'], changed)}; "
             f"reused untouched: {_pins(new['components'], reused)}."),
             (f"- Trainable parameters of this retraining: **{_count(p['trainable'])}** of "
             f"{_count(p['whole_model'])} ({share:.1f}% of the whole model: {', '.join(p['trained_components'])}).")]
    if report["train_all_seconds"]:
        lines.append(f"- Wall time: **{report['wall_seconds']:.0f} s** vs {report['train_all_seconds']:.0f} s "
                     f"for the base's full `train_all` ({100 * report['wall_share']:.0f}%).")
    else:
        lines.append(f"- Wall time: **{report['wall_seconds']:.0f} s** vs the full `train_all`: unknown "
                     "(the base bundle's runs recorded no train_all time).")
    lineage = report["lineage"]
    if lineage["mode"] == "reused":
        lines.append("- Old degradations' training data: reused through the lineage of the old adapters "
                     f"({len(lineage['manifests'])} dataset manifest(s)).")
    else:
        lines.append("- Old degradations' training data: re-synthesized deterministically from the base "
                     f"recipe (lineage not found: {', '.join(lineage['missing'])}).")
    if report.get("photos"):
        lines.append(f"- The new type's training photos: `{report['photos']}`.")
    if report.get("mixed_with"):
        lines.append(f"- Mixtures for the estimator: sequences of `{name}` with "
                     f"{', '.join(report['mixed_with'])} (either order).")
    start = report.get("warm_start")
    if start is not None:
        scores = ", ".join(f"{k} {v:.2f}" for k, v in start.get("scores", {}).items())
        origin = (f"a copy of `{start['from']}` v{start.get('version')}" if start.get("from")
                  else "zero (a no-op adapter)")
        lines.append(f"- The new adapter started from {origin}" +
                     (f"; PSNR on its training patches: {scores} dB." if scores else "."))
    estimator_start = report.get("estimator_start")
    if estimator_start is not None:
        lines.append(f"- The estimator started from the base's estimator v{estimator_start['version']} (classes "
                     f"{', '.join(estimator_start['classes'])} carried over)." if estimator_start.get("from")
                     else "- The estimator was retrained from scratch.")
        trained = estimator_start.get("trained_classes")
        if trained is not None:
            lines.append("- Only an expert estimator for " + (", ".join(f"`{c}`" for c in trained) or "no new class")
                         + " trained; it gates the base's estimator, whose weights all stay, so the old classes keep "
                         "their ranking and an old task can only lose inputs to the new class.")
        elif estimator_start.get("base_distillation"):
            lines.append(f"- It kept the answers of the base's estimator v{estimator_start.get('base_version')} on "
                         f"the classes that estimator knows (distillation weight "
                         f"{estimator_start['base_distillation']:g}), so the old tasks' routing moves less.")
    new_task = comparison["new_task"]
    before_note = {"add": ", unseen", "replace": "", "remove": ", with the adapter"}[report["action"]]
    after_note = ", unseen" if report["action"] == "remove" else ""
    title = "The removed type's task" if report["action"] == "remove" else "The new task"
    lines += ["", f"## {title} `{new_task['id']}` (group {new_task['group']}, suite {report['suite']})", "",
              f"| method | before (v{base['version']}{before_note}) | after (v{new['version']}{after_note}) | gain |",
              "|---|---:|---:|---:|"]
    for method, row in new_task["methods"].items():
        lines.append(f"| {method} | {_db(row['before'])} | {_db(row['after'])} | {_db(row['gain'], True)} |")
    lines += ["", "## Every other task (PSNR dB, after - before)", "",
              "| task | group | OH before | OH after | OH change | SW before | SW after | SW change |",
              "|---|---|---:|---:|---:|---:|---:|---:|"]
    for task, row in comparison["tasks"].items():
        cells = [row["group"]]
        for method in ("oh", "sw"):
            values = row["methods"].get(method, {})
            cells += [_db(values.get("before")), _db(values.get("after")), _db(values.get("change"), True)]
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    tol = report["tolerance_db"]
    verdict = {True: f"within {tol} dB", False: f"more than {tol} dB lower", None: "N/A"}
    worst, within = report["old_tasks_worst_change_db"], report["old_tasks_within_tolerance"]
    summary = ", ".join(f"{m.upper()} {_db(worst[m], True)} dB ({verdict[within[m]]})" for m in ("oh", "sw"))
    known, known_within = report["known_tasks_worst_change_db"], report["known_tasks_within_tolerance"]
    known_summary = ", ".join(f"{m.upper()} {_db(known[m], True)} dB ({verdict[known_within[m]]})"
                              for m in ("oh", "sw"))
    lines += ["", (f"Worst change of the known tasks: {known_summary}; of all other tasks (known, unseen, mixed, "
              f"clean, mild): {summary}."), "",
              ("Nothing was promoted: review, then `abair promote` "
              f"(champion stays v{report.get('champion') or base['version']}).")]
    return "\n".join(lines) + "\n"
