"""Prefect tasks of `abair models retune`: a registered estimator's inference settings changed, registered anew."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from prefect import task
from prefect.cache_policies import NO_CACHE

from abair_core.bundle import ESTIMATOR_FILE
from abair_core.estimator_retune import EstimatorRetune, retune_estimator_file, write_retuned_bundle
from tasks.add_degradation import TRAIN_CONFIG_ARTIFACT, recorded_train_config
from tasks.registry import ESTIMATOR_MODEL_NAME, register_component

#: Version tags that say what a retuned estimator or bundle was made from.
RETUNED_FROM_TAG = "abair.retuned_from"
RETUNE_TAG = "abair.retune"


@task(name="retune_estimator", cache_policy=NO_CACHE)
def retune_estimator(base: dict[str, Any], retune: EstimatorRetune, source: str, folder: str,
                     run_id: str) -> dict[str, Any]:
    """Write the base bundle's estimator with ``retune`` applied (``source`` names it in errors) and register it.

    The new ``abair-estimator`` version is logged to ``run_id`` with tags naming the version it was retuned
    from and what changed. The base estimator's training recipe is copied to the run with the new settings,
    so `abair add-degradation` on the retuned bundle trains its estimator with them. Returns ``version``,
    ``path`` (the new file) and ``changes`` (dotted key -> before, after).
    """
    staged = Path(folder) / ESTIMATOR_FILE
    staged.parent.mkdir(parents=True, exist_ok=True)
    base_version = str(base["components"]["estimator"])
    changes = retune_estimator_file(str(Path(base["bundle_dir"]) / ESTIMATOR_FILE), str(staged), retune, source)
    _copy_recipe(base_version, changes, run_id)
    tags = {RETUNED_FROM_TAG: base_version, RETUNE_TAG: describe_changes(changes)}
    ref = register_component("estimator", staged, tags=tags, run_id=run_id)
    return {"version": ref.version, "path": str(staged), "changes": changes}


@task(name="write_retuned_bundle", cache_policy=NO_CACHE)
def write_retuned_bundle_task(base_dir: str, bundle_dir: str, estimator_path: str,
                              versions: dict[str, str]) -> str:
    """The base bundle's files with the retuned estimator, in a new folder."""
    return str(write_retuned_bundle(base_dir, bundle_dir, estimator_path, versions))


def _copy_recipe(base_version: str, changes: dict[str, dict[str, Any]], run_id: str) -> None:
    """Log the base estimator's recipe, with the new settings, to ``run_id`` (nothing when it recorded none)."""
    try:
        recipe = recorded_train_config.fn(ESTIMATOR_MODEL_NAME, base_version)
    except LookupError:
        return
    for dotted, values in changes.items():
        *parents, leaf = dotted.split(".")
        node = recipe.setdefault("estimator", {})
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = values["after"]
    MlflowClient().log_dict(run_id, recipe, TRAIN_CONFIG_ARTIFACT)


def describe_changes(changes: dict[str, dict[str, Any]]) -> str:
    """``key: before -> after`` pairs, the version tag a person reads in `abair models list`."""
    return ", ".join(f"{k}: {json.dumps(v['before'])} -> {json.dumps(v['after'])}" for k, v in changes.items())
