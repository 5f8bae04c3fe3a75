"""`abair models retune` on a real MLflow store: a pinned challenger with the same weights and new settings."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
SHARPEN = str(ROOT / "configs/estimator/retune/sharpen.yaml")


@pytest.fixture(scope="module")
def registry(mlflow_store, prefect_harness, micro_bundle_dir, micro_train_config, tmp_path_factory):
    """The micro bundle registered as v1 (champion) from registered components; its estimator run has a recipe."""
    import mlflow
    from mlflow import MlflowClient

    from abair_core.bundle import BACKBONE_FILE, ESTIMATOR_FILE, adapter_file, read_bundle_manifest
    from tasks.registry import register_bundle, register_component

    root = tmp_path_factory.mktemp("retune")
    (root / "pipeline.yaml").write_text(yaml.safe_dump(mlflow_store.model_dump(mode="json")))
    adapters = read_bundle_manifest(micro_bundle_dir)["adapters"]
    versions = {"backbone": register_component("backbone", micro_bundle_dir / BACKBONE_FILE).version}
    for name in adapters:
        versions[f"adapter.{name}"] = register_component("adapter", micro_bundle_dir / adapter_file(name),
                                                         adapter_id=name).version
    with mlflow.start_run(run_name="micro-phase3") as run:
        recipe = {**micro_train_config, "estimator": {"crop_size": 64}}
        MlflowClient().log_dict(run.info.run_id, recipe, "train_config.json")
    versions["estimator"] = register_component("estimator", micro_bundle_dir / ESTIMATOR_FILE,
                                               run_id=run.info.run_id).version
    base = register_bundle(micro_bundle_dir, versions).version
    return {"pipeline": str(root / "pipeline.yaml"), "base": base, "versions": versions, "root": root}


def _bundle_versions() -> int:
    from mlflow import MlflowClient

    return len(MlflowClient().search_model_versions("name='abair'"))


def test_retune_registers_a_pinned_challenger_with_new_settings_and_the_same_weights(registry, capsys) -> None:
    from mlflow import MlflowClient

    from abair_core.bundle import load_bundle
    from flows.cli import main
    from tasks.add_degradation import recorded_train_config
    from tasks.registry import get_alias_version, resolve_model

    base = registry["base"]
    assert main(["--pipeline", registry["pipeline"], "models", "retune", "--settings", SHARPEN,
                 "--model", f"models:/abair/{base}"]) == 0
    result = json.loads(capsys.readouterr().out)
    new = result["bundle"]["version"]
    assert result["bundle"]["aliases"] == ["challenger"] and get_alias_version("abair", "champion") == base
    assert result["estimator"]["changes"] == {"sw_sharpness": {"before": 1.0, "after": 2.0}}

    client = MlflowClient()
    tags = client.get_model_version("abair", new).tags
    pins = {k: tags[f"component.{k}"] for k in registry["versions"]}
    assert pins == {**registry["versions"], "estimator": result["estimator"]["version"]}
    assert pins["estimator"] != registry["versions"]["estimator"]
    assert tags["abair.retuned_from"] == base and tags["abair.retune"] == "sw_sharpness: 1.0 -> 2.0"
    estimator_tags = client.get_model_version("abair-estimator", pins["estimator"]).tags
    assert estimator_tags["abair.retuned_from"] == registry["versions"]["estimator"]
    # add-degradation on the retuned bundle reads a recipe that carries the new setting
    assert recorded_train_config.fn("abair-estimator", pins["estimator"])["estimator"] == {
        "crop_size": 64, "sw_sharpness": 2.0}

    old = load_bundle(resolve_model(f"models:/abair/{base}", registry["root"] / "old").bundle_dir)
    retuned = load_bundle(resolve_model(f"models:/abair/{new}", registry["root"] / "new").bundle_dir)
    assert (old.estimator.config.sw_sharpness, retuned.estimator.config.sw_sharpness) == (1.0, 2.0)
    for a, b in zip(old.state_dict().values(), retuned.state_dict().values(), strict=True):
        assert torch.equal(a, b)

    assert main(["--pipeline", registry["pipeline"], "models", "list"]) == 0
    assert "abair.retune=sw_sharpness: 1.0 -> 2.0" in capsys.readouterr().out


def test_bad_settings_are_refused_and_register_nothing(registry, tmp_path, capsys) -> None:
    from flows.cli import main

    settings = tmp_path / "retune.yaml"
    settings.write_text("sw_sharpness: 2\nnum_crops: 16\n")
    before = _bundle_versions()
    assert main(["--pipeline", registry["pipeline"], "models", "retune", "--settings", str(settings),
                 "--model", f"models:/abair/{registry['base']}"]) == 2
    err = capsys.readouterr().err
    assert "retune refused" in err and str(settings) in err and "key 'num_crops'" in err
    assert _bundle_versions() == before


def test_a_retune_that_changes_nothing_is_refused_before_any_run(registry, tmp_path, capsys) -> None:
    from mlflow import MlflowClient

    from flows.cli import main

    settings = tmp_path / "same.yaml"
    settings.write_text("sw_sharpness: 1.0\n")  # what the base estimator already has
    client = MlflowClient()
    runs = len(client.search_runs([e.experiment_id for e in client.search_experiments()]))
    before = _bundle_versions()
    assert main(["--pipeline", registry["pipeline"], "models", "retune", "--settings", str(settings),
                 "--model", f"models:/abair/{registry['base']}"]) == 2
    assert "already has these settings" in capsys.readouterr().err
    assert _bundle_versions() == before
    assert len(client.search_runs([e.experiment_id for e in client.search_experiments()])) == runs
