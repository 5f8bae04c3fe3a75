"""add_degradation end to end on a registered micro base (train_all): refusals, pins, aliases, the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from PIL import Image

ROOT = Path(__file__).resolve().parents[2]
SPECS = str(ROOT / "configs/degradations/train.yaml")
PLUGINS = ROOT / "tests/plugins_example"
SUITE = {
    "name": "addtest", "images": "samples://holdout", "max_images": 1, "crop": 64, "seeds": [0],
    "groups": {"known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}},
                         {"id": "blur", "degradation": {"type": "blur", "kind": "motion", "length": 9}}],
               "unseen": [{"id": "jpeg_q20", "degradation": {"type": "jpeg", "quality": 20}}]},
}


@pytest.fixture(scope="module")
def base(micro_train_config, mlflow_store, prefect_harness, tmp_path_factory):
    """A registered champion bundle (noise, blur) made by train_all; the pipeline YAML and a tiny suite."""
    import sys

    from skimage import data

    from flows.train import train_all

    if str(ROOT) not in sys.path:  # `tests.plugins_example` importable here and in spawned Dask workers
        sys.path.insert(0, str(ROOT))
    root = tmp_path_factory.mktemp("add-degradation")
    photos = root / "photos"
    photos.mkdir()
    Image.fromarray(data.rocket()[:160, :200]).save(photos / "rocket.png")
    Image.fromarray(data.coffee()[:160, :200]).save(photos / "coffee.png")
    recipe = {**micro_train_config, "data": {"source": str(photos), "degradation_specs": SPECS}}
    pipeline = mlflow_store.model_dump(mode="json")
    pipeline["dask"] = {"n_workers": 1, "threads_per_worker": 1, "processes": True}
    (root / "pipeline.yaml").write_text(yaml.safe_dump(pipeline))
    (root / "suite.yaml").write_text(yaml.safe_dump(SUITE))
    (root / "recipe.yaml").write_text(yaml.safe_dump(recipe))
    result = train_all(recipe, str(root / "pipeline.yaml"))
    return {"pipeline": str(root / "pipeline.yaml"), "suite": str(root / "suite.yaml"), "train": result,
            "storage": Path(mlflow_store.storage.root.removeprefix("file://"))}


def estimator_tags(result: dict) -> dict[str, str]:
    from mlflow import MlflowClient

    return MlflowClient().get_model_version("abair-estimator", result["estimator"]["version"]).tags


def _model_names() -> set[str]:
    from mlflow import MlflowClient

    return {m.name for m in MlflowClient().search_registered_models()}


@pytest.mark.parametrize(("plugin", "message"), [("flaky", "not deterministic"), ("cropper", "changed the shape")])
def test_broken_plugins_are_refused_before_any_training(base, plugin, message) -> None:
    from flows.add_degradation import add_degradation

    datasets = sorted((base["storage"] / "datasets").iterdir())
    with pytest.raises(ValueError, match=f"plugin {plugin} .*refused: .*{message}"):
        add_degradation(plugin, spec=str(PLUGINS / f"{plugin}.yaml"), pipeline=base["pipeline"], suite=base["suite"])
    assert f"abair-adapter-{plugin}" not in _model_names()
    assert sorted((base["storage"] / "datasets").iterdir()) == datasets  # nothing synthesized


def test_add_jpeg_reuses_old_adapters_and_registers_a_pinned_challenger(base) -> None:
    from mlflow import MlflowClient

    from flows.add_degradation import add_degradation
    from tasks.registry import get_alias_version

    client = MlflowClient()
    before = base["train"]["versions"]
    assert get_alias_version("abair", "champion") == before["bundle"]
    old_versions = {n: [v.version for v in client.search_model_versions(f"name = 'abair-adapter-{n}'")]
                    for n in ("noise", "blur")}

    result = add_degradation("jpeg", spec=str(ROOT / "configs/degradations/added/jpeg.yaml"),
                             pipeline=base["pipeline"], suite=base["suite"])

    new = result["bundle"]
    assert new["version"] != before["bundle"] and new["aliases"] == ["challenger"]
    assert get_alias_version("abair", "champion") == before["bundle"]  # champion did not move
    assert get_alias_version("abair", "challenger") == new["version"]
    for n in ("noise", "blur"):  # the old adapters were not retrained: same registry versions, no new ones
        assert [v.version for v in client.search_model_versions(f"name = 'abair-adapter-{n}'")] == old_versions[n]
    tags = client.get_model_version("abair", new["version"]).tags
    pins = {k: v for k, v in tags.items() if k.startswith("component.")}
    assert pins == {"component.backbone": before["backbone"], "component.adapter.noise": before["adapter.noise"],
                    "component.adapter.blur": before["adapter.blur"],
                    "component.adapter.jpeg": result["adapter"]["version"],
                    "component.estimator": result["estimator"]["version"]}
    assert result["estimator"]["version"] != before["estimator"]
    assert tags["abair.base_version"] == before["bundle"] and tags["abair.added_degradation"] == "jpeg"
    adapter = client.get_model_version("abair-adapter-jpeg", result["adapter"]["version"])
    assert adapter.tags["backbone.version"] == before["backbone"]
    assert adapter.tags["abair.warm_start_from"] == "zero"  # the micro recipe starts new adapters at zero
    assert estimator_tags(result)["abair.warm_start_from"] == "scratch"
    # the base's estimator is kept all the same (distillation; the recipe leaves the weight null = 1.0)
    assert estimator_tags(result)["abair.base_distillation"] == "1.0"
    estimator = client.get_model_version("abair-estimator", result["estimator"]["version"])
    assert estimator.tags["adapter.jpeg.version"] == result["adapter"]["version"]
    assert json.loads(estimator.tags["dataset.manifest_uris"]) == [base["train"]["dataset"]["manifest_uri"],
                                                                 result["dataset"]["manifest_uri"]]
    # the new data mixes jpeg with each old type (sequence patches), so the estimator sees its mixtures
    from abair_core.data.dataset import load_dataset_patches

    new_data = load_dataset_patches(result["dataset"]["manifest_uri"])
    mixtures = {new_data.names[i] for i in new_data.indices(("sequence",))}
    assert mixtures and all("jpeg" in m.split("+") for m in mixtures)
    assert {p for m in mixtures for p in m.split("+")} <= {"jpeg", "noise", "blur"}
    assert result["report"]["mixed_with"] == ["noise", "blur"]

    report = result["report"]
    assert report["lineage"]["mode"] == "reused"
    assert report["comparison"]["new_task"]["id"] == "jpeg_q20"
    jpeg = report["comparison"]["new_task"]["methods"]
    assert jpeg["oracle"]["before"] is None and jpeg["oracle"]["after"] is not None  # unseen before
    assert jpeg["oh"]["before"] is not None and jpeg["oh"]["after"] is not None
    assert set(report["comparison"]["tasks"]) == {"noise_s25", "blur"}
    assert 0 < report["parameters"]["trainable"] < report["parameters"]["whole_model"]
    assert report["train_all_seconds"] == pytest.approx(base["train"]["timings"]["total"])
    assert report["unchanged_components"] == ["adapter.blur", "adapter.noise", "backbone"]
    markdown = Path(result["report_files"]["markdown"]).read_text()
    assert "Added degradation `jpeg`" in markdown and "| jpeg_q20 |" not in markdown
    assert f"champion stays v{before['bundle']})" in markdown and report["champion"] == before["bundle"]
    assert json.loads(Path(result["report_files"]["json"]).read_text())["new"]["version"] == new["version"]


def test_warm_starts_begin_from_the_pinned_old_components_and_say_so(base, tmp_path) -> None:
    from mlflow import MlflowClient

    from flows.add_degradation import add_degradation

    before = base["train"]["versions"]
    recipe = yaml.safe_load(Path(base["pipeline"]).with_name("recipe.yaml").read_text())
    recipe["phase2"] = {**recipe["phase2"], "warm_start": "best"}
    recipe["phase3"] = {**recipe["phase3"], "warm_start": "base"}
    (tmp_path / "warm.yaml").write_text(yaml.safe_dump(recipe))
    result = add_degradation("jpeg", spec=str(ROOT / "configs/degradations/added/jpeg.yaml"),
                             pipeline=base["pipeline"], suite=base["suite"], train_config=str(tmp_path / "warm.yaml"))
    start = result["report"]["warm_start"]
    assert set(start["scores"]) == {"input", "backbone", "noise", "blur"}
    best = max(("noise", "blur"), key=start["scores"].get)
    expected = best if start["scores"][best] > start["scores"]["backbone"] else None
    assert start["from"] == expected
    assert start["version"] == (before[f"adapter.{expected}"] if expected else None)
    tag = MlflowClient().get_model_version("abair-adapter-jpeg", result["adapter"]["version"]).tags
    assert tag["abair.warm_start_from"] == (f"{expected}@v{start['version']}" if expected else "zero")
    markdown = Path(result["report_files"]["markdown"]).read_text()
    assert "- The new adapter started from " in markdown and "PSNR on its training patches: input " in markdown
    # the estimator started from the base's: its classes carried over, the version recorded
    assert result["report"]["estimator_start"] == {"from": "base", "version": before["estimator"],
                                                   "classes": ["clean", "noise", "blur"],
                                                   "base_distillation": 1.0, "base_version": before["estimator"],
                                                   "trained_classes": ["jpeg"]}
    estimator = MlflowClient().get_model_version("abair-estimator", result["estimator"]["version"])
    assert estimator.tags["abair.warm_start_from"] == f"estimator@v{before['estimator']}"
    assert estimator.tags["abair.estimator_trainable"] == "new_classes"  # null: an expert, the rest kept
    assert f"- The estimator started from the base's estimator v{before['estimator']}" in markdown
    assert "- Only an expert estimator for `jpeg` trained; it gates the base's estimator" in markdown
    # the old classes' scores are the base's: same logits on any image (the expert only adds the jpeg gate)
    from abair_core.components import load_estimator
    from tasks.add_degradation import base_bundle_info

    base_dir = base_bundle_info(f"models:/abair/{result['base']['version']}", str(tmp_path / "base"))["bundle_dir"]
    base_estimator = load_estimator(str(Path(base_dir) / "estimator.safetensors"))
    grown = load_estimator(result["estimator"]["path"])
    import torch

    x = torch.rand(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(grown(x)[:, :3], base_estimator(x), atol=1e-5)
    # the old adapters it was scored against are untouched: same versions pinned in the new bundle
    tags = MlflowClient().get_model_version("abair", result["bundle"]["version"]).tags
    assert tags["component.adapter.noise"] == before["adapter.noise"]
    assert tags["component.adapter.blur"] == before["adapter.blur"]


@pytest.mark.slow
def test_a_dotted_plugin_is_added_by_name_on_its_own_photos(base, tmp_path) -> None:
    from mlflow import MlflowClient
    from skimage import data

    from abair_core.data.dataset import read_dataset_manifest
    from flows.add_degradation import add_degradation

    photos = tmp_path / "speckle-photos"  # the spec's `photos`: the new type's data comes from these alone
    photos.mkdir()
    Image.fromarray(data.chelsea()[:160, :200]).save(photos / "chelsea.png")
    spec = tmp_path / "speckle.yaml"
    spec.write_text(yaml.safe_dump({**yaml.safe_load((PLUGINS / "speckle.yaml").read_text()),
                                    "photos": {"source": str(photos)}}))
    result = add_degradation("speckle", spec=str(spec), pipeline=base["pipeline"], suite=base["suite"])
    table, _ = read_dataset_manifest(result["dataset"]["manifest_uri"])
    assert set(table.column("source_key").to_pylist()) == {"chelsea.png"}
    assert result["report"]["photos"] == str(photos)
    assert f"training photos: `{photos}`" in Path(result["report_files"]["markdown"]).read_text()
    tags = MlflowClient().get_model_version("abair", result["bundle"]["version"]).tags
    assert {k for k in tags if k.startswith("component.adapter.")} == {
        "component.adapter.noise", "component.adapter.blur", "component.adapter.speckle"}
    new_task = result["report"]["comparison"]["new_task"]
    assert new_task["id"] == "speckle" and new_task["group"] == "added"
    assert result["report"]["evaluation"]["task_added_to_suite"]
    assert result["report"]["base"]["version"] == base["train"]["versions"]["bundle"]  # built on the champion


def test_remove_drops_one_adapter_and_retrains_only_the_estimator(base) -> None:
    from mlflow import MlflowClient

    from abair_core.bundle import load_bundle
    from flows.add_degradation import add_degradation

    before = base["train"]["versions"]
    client = MlflowClient()
    blur_versions = [v.version for v in client.search_model_versions("name = 'abair-adapter-blur'")]
    with pytest.raises(ValueError, match="has no such adapter"):
        add_degradation("rain", remove=True, pipeline=base["pipeline"], suite=base["suite"])
    # a suite that names no photos is scored on --images (as configs/benchmark/small.yaml with the photo pool)
    bare = Path(base["suite"]).with_name("suite-no-images.yaml")
    bare.write_text(yaml.safe_dump({**SUITE, "images": None}))
    result = add_degradation("blur", remove=True, pipeline=base["pipeline"], suite=str(bare),
                             images="samples://holdout")
    tags = client.get_model_version("abair", result["bundle"]["version"]).tags
    assert {k for k in tags if k.startswith("component.adapter.")} == {"component.adapter.noise"}
    assert tags["component.adapter.noise"] == before["adapter.noise"] and tags["abair.action"] == "remove"
    assert [v.version for v in client.search_model_versions("name = 'abair-adapter-blur'")] == blur_versions
    assert result["adapter"] is None and result["dataset"] is None
    assert load_bundle(result["bundle"]["bundle_dir"]).class_names == ["clean", "noise"]
    report = result["report"]
    assert report["action"] == "remove" and report["lineage"]["mode"] == "reused"
    assert report["parameters"]["trained_components"] == ["estimator"]
    assert report["comparison"]["new_task"]["id"] == "blur"
    assert report["comparison"]["new_task"]["methods"]["oracle"]["after"] is None  # no blur adapter any more
    assert "# Removed adapter `blur`" in Path(result["report_files"]["markdown"]).read_text()
    assert report["comparison"]["new_task"]["methods"]["oh"]["before"] is not None  # scored on the given photos


@pytest.mark.slow
def test_replace_retrains_one_adapter_and_resynthesizes_lost_lineage(base) -> None:
    from mlflow import MlflowClient

    from flows.add_degradation import add_degradation

    before = base["train"]["versions"]
    manifest = Path(base["train"]["dataset"]["manifest_uri"].removeprefix("file://"))
    manifest.unlink()  # the old adapters' lineage is gone: their data must be re-synthesized
    result = add_degradation("noise", replace=True, pipeline=base["pipeline"], suite=base["suite"])
    report = result["report"]
    assert report["action"] == "replace" and report["lineage"]["mode"] == "re-synthesized"
    assert manifest.is_file()  # the same recipe gave the same dataset back
    tags = MlflowClient().get_model_version("abair", result["bundle"]["version"]).tags
    assert tags["component.adapter.noise"] == result["adapter"]["version"] != before["adapter.noise"]
    assert tags["component.adapter.blur"] == before["adapter.blur"]
    assert report["comparison"]["new_task"]["id"] == "noise_s25"


def test_cli_parser() -> None:
    import argparse

    from flows.add_degradation_cli import add_add_degradation_parser, cmd_add_degradation

    parser = argparse.ArgumentParser()
    add_add_degradation_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["add-degradation", "jpeg", "--spec", "configs/degradations/added/jpeg.yaml"])
    assert (args.name, args.spec, args.replace, args.base_model) == (
        "jpeg", "configs/degradations/added/jpeg.yaml", False, "models:/abair@champion")
    assert args.func is cmd_add_degradation
    assert parser.parse_args(["add-degradation", "rain", "--replace"]).replace
    assert parser.parse_args(["add-degradation", "rain", "--remove"]).remove
    with pytest.raises(SystemExit):
        parser.parse_args(["add-degradation", "rain", "--remove", "--replace"])
