"""`abair add-degradation NAME [--spec file.yaml] [--replace | --remove]`: one new adapter and a retrained estimator.

The paper's promise (a new degradation costs one adapter and a retrained estimator, not a new model)
as one flow:

1. resolve the base bundle (``models:/abair@champion``) to one version; read its component pins;
2. check the new degradation on a real training photo (built-in name, entry point or a dotted
   ``package.module:Class`` plugin): refused before any work when it is not deterministic for a seed
   or changes shape, dtype or range;
3. synthesize data for the new type only (single + clean patches, and sequences pairing it with each
   old type so the estimator sees their mixtures; content-hashed shards);
4. train its adapter on the base's frozen backbone (``abair-adapter-<id>``, tagged with that backbone
   version) - the only adapter trained; the old ones keep their registry versions;
5. retrain the estimator over every adapter on the union of their datasets: the old adapters' shards
   are found through the ``dataset.manifest_uri`` lineage of their versions, or re-synthesized
   deterministically from their recorded recipe when they are gone (the report says which);
6. assemble and register the new bundle as ``challenger`` (champion never moves here);
7. score the new bundle and the base on the suite (the new task: its PSNR before, as an unseen task,
   and after) and write the before/after report (Markdown + JSON, a Prefect artifact, MLflow run).

``--replace NAME`` retrains an existing adapter the same way; the new bundle pins the new version.
``--remove NAME`` trains nothing but the estimator (over the remaining adapters, on their lineage data);
the new bundle leaves ``NAME`` out, and the report shows its task before (with the adapter) and after.
"""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from prefect import flow, get_run_logger

from abair_core.bundle import ESTIMATOR_FILE, adapter_file
from abair_core.data.dataset import read_dataset_manifest
from abair_core.training.config import TrainConfig
from abair_core.training.extension import (
    build_extension_report,
    check_removal,
    compare_scores,
    extension_configs,
    load_added_degradation,
    missing_manifests,
    parameter_budget,
    partner_specs,
    reduced_config,
    removed_task_spec,
    spec_digest,
    training_spec,
    write_spec_file,
)
from flows.evaluate import score_model
from flows.runtime import local_work_root, pipeline_from
from flows.synthesize import load_train_config, synthesize
from flows.train import adapters, bundle, work_dir
from tasks.add_degradation import (
    TRAIN_ALL_SECONDS_TAG,
    adapter_lineage,
    check_degradation_task,
    prepare_suite_task,
    publish_extension_report,
    read_base_bundle,
    recorded_train_config,
    tag_model_version,
    train_extended_estimator,
)
from tasks.registry import (
    BUNDLE_MODEL_NAME,
    ESTIMATOR_MODEL_NAME,
    adapter_model_name,
    configure_mlflow,
    get_alias_version,
)
from tasks.tracking import git_commit, start_run
from tasks.training import download_component_task

__all__ = ["add_degradation"]


def _combined_hash(hashes: list[str]) -> str:
    return hashlib.sha256("|".join(sorted(hashes)).encode()).hexdigest()[:32]


def _old_datasets(lineage: dict[str, dict[str, Any]], pipeline: str | None, options: dict[str, Any],
                  logger: Any) -> dict[str, Any]:
    """The old adapters' dataset manifests: reused through lineage, else re-synthesized from their recipes."""
    uris = [entry["manifest_uri"] for entry in lineage.values()]
    missing = missing_manifests(uris, options)
    if not missing:
        return {"mode": "reused", "manifests": list(dict.fromkeys(uris)), "missing": []}
    logger.warning("lineage of the old adapters not found (%s): re-synthesizing their data", missing)
    manifests: list[str] = []
    for name, entry in lineage.items():
        uri = entry["manifest_uri"]
        if uri is not None and uri not in missing:
            manifests.append(uri)
            continue
        recipe = recorded_train_config(adapter_model_name(name), str(entry["version"]))
        manifests.append(synthesize(recipe, pipeline)["manifest_uri"])
    return {"mode": "re-synthesized", "manifests": list(dict.fromkeys(manifests)), "missing": missing}


def _base_adapter_files(base: dict[str, Any]) -> dict[str, dict[str, str]]:
    """Every adapter of the base bundle (id -> pinned version and its file in the base's local bundle folder)."""
    folder = Path(base["bundle_dir"])
    return {old: {"version": str(base["components"][f"adapter.{old}"]), "path": str(folder / adapter_file(old))}
            for old in base["adapters"]}


def _action(replace: bool, remove: bool) -> str:
    if replace and remove:
        raise ValueError("--replace and --remove exclude each other")
    return "remove" if remove else "replace" if replace else "add"


@flow(name="add_degradation")
def add_degradation(name: str, spec: str | None = None, base_model: str = "models:/abair@champion",
                    train_config: str | None = None, replace: bool = False, pipeline: str | None = None,
                    suite: str = "configs/benchmark/demo.yaml", remove: bool = False,
                    images: str | None = None) -> dict[str, Any]:
    """Add degradation ``name`` (with ``replace``: retrain its adapter; ``remove``: drop it) on ``base_model``.

    ``spec``: an added-degradation spec file (``configs/degradations/added/<id>.yaml``: the training
    range, optionally the evaluation task); without it the range comes from the base recipe's spec
    file. ``train_config``: a training recipe whose phase II/III schedules, adapter, estimator and
    synthesis counts replace the base's. ``remove`` trains no adapter: the estimator keeps the base's weights without
    ``name``'s class (with ``phase3.trainable: all``: retrained over the remaining adapters on their lineage data)
    and the new bundle leaves ``name`` out. ``images``: the
    photo folder the suite is scored on when it names none or another (`configs/benchmark/small.yaml` names
    none: its 44 inputs per task judge the old tasks far better than the demo suite's 4). Returns
    ``bundle`` (name, version, model_uri, aliases, components), ``base`` (version, components),
    ``adapter`` (the new adapter's version and summary; None on removal), ``estimator``, ``lineage``,
    ``report`` (the JSON report) and ``report_dir``.
    """
    began = time.perf_counter()
    action = _action(replace, remove)
    logger = get_run_logger()
    pipe = pipeline_from(pipeline)
    experiment_id = configure_mlflow(pipe)
    options = dict(pipe.storage.storage_options)
    local = local_work_root(pipe) / "add-degradation"

    base = read_base_bundle(base_model, str(local / "base"))
    overrides = load_train_config(train_config) if train_config else None
    try:
        recipe = load_train_config(recorded_train_config(ESTIMATOR_MODEL_NAME, base["components"]["estimator"]))
    except LookupError:
        if overrides is None:
            raise
        logger.warning("the base estimator's run recorded no recipe: using %s as the base recipe", train_config)
        recipe = overrides
    recipe = TrainConfig.model_validate({**recipe.model_dump(mode="json"), "degradations": base["adapters"]})
    added = load_added_degradation(spec) if spec else None
    partners: dict[str, dict[str, Any]] = {}
    if action == "remove":
        check_removal(name, base["adapters"], base["version"])
        training = removed_task_spec(name, added, recipe.data.degradation_specs)
        new_only, extended = None, reduced_config(recipe, name, overrides)
    else:
        training = training_spec(name, added, recipe.data.degradation_specs)
        photos = added.photos if added is not None else None  # the spec's own photos, else the base recipe's
        photo_source = photos or recipe.data
        check_degradation_task(name, training, photo_source.source, photo_source.include, pipe.storage.root,
                               options, base["adapters"], replace)
        # the old types' ranges ride along: sequences pair the new type with each of them (estimator mixtures)
        partners = partner_specs(recipe.data.degradation_specs, [n for n in base["adapters"] if n != name])
        entries = [training, *partners.values()]
        specs_path = write_spec_file(local / "specs" / f"{name}-{spec_digest(entries)}.yaml", entries)
        new_only, extended = extension_configs(recipe, name, specs_path, overrides, partners=list(partners),
                                               photos=photos)
    logger.info("%s %r on abair v%s (adapters %s)", {"add": "adding", "replace": "replacing",
                                                     "remove": "removing"}[action], name, base["version"],
                base["adapters"])

    client = MlflowClient()
    parent = start_run(experiment_id, f"add_degradation-{name}",
                       {"abair.kind": "add_degradation", "abair.degradation": name, "abair.replace": str(replace),
                        "abair.action": action, "abair.base_version": base["version"], "git.commit": git_commit()})
    try:
        data, trained, new_versions = None, None, {}
        on_disk = _base_adapter_files(base)  # the old adapters' pinned files: warm-start candidates, estimator inputs
        if new_only is not None:
            data = synthesize(new_only.model_dump(mode="json"), pipeline)
            trained = adapters(new_only.model_dump(mode="json"), data["manifest_uri"],
                               base["components"]["backbone"], pipeline, only=[name], concurrency=1,
                               parent_run_id=parent,
                               warm_start=on_disk if new_only.phase2.warm_start == "best" else None)[name]
            new_versions = {name: trained["version"]}
        old = {n: base["components"][f"adapter.{n}"] for n in base["adapters"] if n != name}
        lineage = _old_datasets(adapter_lineage(old), pipeline, options, logger) if old else \
            {"mode": "reused", "manifests": [], "missing": []}
        versions = {**old, **new_versions}
        manifests = [*lineage["manifests"], *([data["manifest_uri"]] if data else [])]
        digest = _combined_hash([read_dataset_manifest(u, options)[1] for u in dict.fromkeys(manifests)])
        folder = work_dir(pipe, extended, data["dataset_hash"] if data else digest)
        found = {n: on_disk[n] if n in old else
                 {"version": str(versions[n]),
                  "path": download_component_task(adapter_model_name(n), str(versions[n]),
                                                  str(folder / "registry" / f"adapter-{n}-v{versions[n]}"))}
                 for n in extended.degradations}
        # the pinned file, already in the base's local bundle folder: where `phase3.warm_start: base` starts and
        # what `phase3.base_distillation` keeps (the old tasks' routing)
        base_estimator = {"version": str(base["components"]["estimator"]),
                          "path": str(Path(base["bundle_dir"]) / ESTIMATOR_FILE)}
        estimator = train_extended_estimator(extended, manifests, digest, found, str(folder), experiment_id,
                                             parent, options, base_estimator)
        made = bundle(extended.model_dump(mode="json"), base["components"]["backbone"], versions,
                      estimator["version"], pipeline, digest, parent)
        provenance = {"abair.added_degradation": name, "abair.action": action,
                      "abair.base_version": base["version"], "abair.add_degradation_run_id": parent}
        if base["train_all_seconds"] is not None:
            provenance[TRAIN_ALL_SECONDS_TAG] = repr(base["train_all_seconds"])
        tag_model_version(BUNDLE_MODEL_NAME, made["version"], provenance)

        report_dir = local / "reports" / re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{name}-v{made['version']}")
        evaluation = (added.evaluation if added is not None and added.evaluation else training)
        chosen = prepare_suite_task(suite, name, evaluation, str(report_dir / "suite.yaml"))
        after, after_scores = score_model(made["model_uri"], chosen["path"], pipe, images,
                                          report_dir=str(report_dir / "after"), role="challenger: ")
        before, before_scores = score_model(base["model_uri"], chosen["path"], pipe, images,
                                            report_dir=str(report_dir / "before"), role="base: ")
        seconds = time.perf_counter() - began
        report = build_extension_report(
            name=name, action=action,
            base={"version": base["version"], "components": base["components"]},
            new={"version": made["version"], "components": made["components"], "aliases": made["aliases"]},
            comparison=compare_scores(before_scores, after_scores, chosen["task_id"]),
            budget=parameter_budget(made["bundle_dir"], list(new_versions), estimator.get("trainable_parameters")),
            seconds=seconds,
            train_all_seconds=base["train_all_seconds"], lineage=lineage, suite=after["suite"],
            partners=list(partners), warm_start=trained["warm_start"] if trained else None,
            estimator_start={**estimator["warm_start"], "base_distillation": estimator["base_distillation"],
                             "base_version": base_estimator["version"],
                             "trained_classes": estimator.get("trained_classes")}, photos=new_only.data.source if new_only else None)
        report["champion"] = get_alias_version(BUNDLE_MODEL_NAME, "champion")
        report["evaluation"] = {"suite_path": chosen["path"], "task_added_to_suite": chosen["added"],
                                "before_run_id": before["run_id"], "after_run_id": after["run_id"]}
        paths = publish_extension_report(report, str(report_dir), parent)
    except BaseException:
        client.set_terminated(parent, "FAILED")
        raise
    client.log_metric(parent, "time/add_degradation_seconds", seconds)
    client.set_terminated(parent, "FINISHED")
    logger.info("abair v%s registered as challenger (%s %r on v%s) in %.1f s; report %s", made["version"],
                {"add": "added", "replace": "replaced", "remove": "removed"}[action], name, base["version"],
                seconds, paths["markdown"])
    return {"bundle": made, "base": {"version": base["version"], "components": base["components"]},
            "adapter": trained, "estimator": estimator, "dataset": data, "lineage": lineage, "report": report,
            "report_dir": str(report_dir), "report_files": paths, "parent_run_id": parent}
