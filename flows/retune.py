"""`abair models retune`: a challenger bundle whose estimator has new inference settings, no retraining.

The soft-weight sharpness and the plausibility gates act only at inference and are stored in the estimator's
file. Retuning registers a new ``abair-estimator`` version (same weights, new settings) and a new ``abair``
bundle version pinning it beside the base's backbone and adapters, with alias ``challenger``. Champion does
not move: `abair promote` evaluates the challenger against it and moves it only if the gate passes.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from prefect import flow, get_run_logger

from abair_core.bundle import ESTIMATOR_FILE
from abair_core.estimator_retune import load_retune, planned_changes
from flows.runtime import local_work_root, pipeline_from
from tasks.add_degradation import TRAIN_ALL_SECONDS_TAG, read_base_bundle
from tasks.registry import BUNDLE_MODEL_NAME, configure_mlflow
from tasks.retune import (
    RETUNE_TAG,
    RETUNED_FROM_TAG,
    describe_changes,
    retune_estimator,
    write_retuned_bundle_task,
)
from tasks.tracking import git_commit, start_run
from tasks.training import register_bundle_task


@flow(name="retune_estimator")
def retune(settings: str, base_model: str = "models:/abair@champion", pipeline: str | None = None) -> dict[str, Any]:
    """Register ``base_model`` with its estimator retuned by the YAML file ``settings`` as the challenger.

    Returns ``bundle`` (name, version, model_uri, aliases, components), ``base`` (version, components),
    ``estimator`` (the new version, its file and ``changes``: dotted key -> before, after) and ``parent_run_id``.
    """
    began = time.perf_counter()
    logger = get_run_logger()
    pipe = pipeline_from(pipeline)
    retune_settings = load_retune(settings)  # a bad file is refused before the registry is touched
    experiment_id = configure_mlflow(pipe)
    base = read_base_bundle(base_model, str(local_work_root(pipe) / "retune" / "base"))
    # a change the estimator refuses (a bad value, nothing new) is refused before any run or version exists
    source = f"{settings} (applied to {base_model}, abair v{base['version']})"
    planned_changes(str(Path(base["bundle_dir"]) / ESTIMATOR_FILE), retune_settings, source)
    commit = git_commit()
    tags = {"abair.kind": "retune_estimator", "abair.base_version": base["version"], "abair.retune_settings": settings,
            **({"git.commit": commit} if commit else {})}
    client = MlflowClient()
    run_id = start_run(experiment_id, f"retune-v{base['version']}", tags)
    try:
        folder = local_work_root(pipe) / "retune" / run_id
        estimator = retune_estimator(base, retune_settings, source, str(folder / "estimator"), run_id)
        versions = {**base["components"], "estimator": str(estimator["version"])}
        bundle_dir = write_retuned_bundle_task(base["bundle_dir"], str(folder / "bundle"), estimator["path"], versions)
        provenance = {RETUNED_FROM_TAG: base["version"], RETUNE_TAG: describe_changes(estimator["changes"]),
                      **({TRAIN_ALL_SECONDS_TAG: repr(base["train_all_seconds"])}
                         if base["train_all_seconds"] is not None else {})}
        ref = register_bundle_task(bundle_dir, versions, {**tags, **provenance}, run_id)
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    aliases = sorted(a for a, v in client.get_registered_model(BUNDLE_MODEL_NAME).aliases.items()
                     if str(v) == ref["version"])
    logger.info("abair v%s registered as challenger: v%s with estimator v%s (%s) in %.1f s; "
                "run `abair promote` to gate it against champion", ref["version"], base["version"],
                estimator["version"], provenance[RETUNE_TAG], time.perf_counter() - began)
    return {"bundle": {**ref, "aliases": aliases, "components": versions, "bundle_dir": bundle_dir},
            "base": {"version": base["version"], "components": base["components"]},
            "estimator": estimator, "parent_run_id": run_id}
