"""MLflow registry operations against a real sqlite store (one per module)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow import MlflowClient
from safetensors.torch import load_file

from tasks.pipeline_config import PipelineConfig
from tasks.registry import (
    ModelVersionRef,
    adapter_model_name,
    component_file_name,
    configure_mlflow,
    download_component,
    get_alias_version,
    list_registered_models,
    previous_champion,
    register_bundle,
    register_component,
    resolve_model,
    rollback_champion,
    set_alias,
    set_headline_metrics,
)

PINS = {"backbone": "1", "estimator": "1", "adapter.rain": "1", "adapter.haze": "1"}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def two_bundles(mlflow_store: PipelineConfig, tmp_path_factory: pytest.TempPathFactory, bundle_writer):
    """Two bundles registered in order into an empty ``abair`` model."""
    root = tmp_path_factory.mktemp("bundles")
    dirs = [bundle_writer(root / "b1", seed=1), bundle_writer(root / "b2", seed=2)]
    refs = [register_bundle(d, PINS, tags={"preset": "tiny"}) for d in dirs]
    return dirs, refs


def test_configure_mlflow_creates_sqlite_folder(mlflow_store: PipelineConfig, tmp_path: Path):
    config = PipelineConfig().resolved(tmp_path / "nested")
    try:
        experiment_id = configure_mlflow(config)
        assert (tmp_path / "nested" / "abair-work").is_dir()
        assert mlflow.get_tracking_uri() == config.mlflow.tracking_uri
        assert (
            MlflowClient().get_experiment(experiment_id).artifact_location == config.mlflow.artifact_location
        )
        assert configure_mlflow(config) == experiment_id  # idempotent
    finally:
        configure_mlflow(mlflow_store)


def test_component_versions_increment_with_tags(mlflow_store: PipelineConfig, make_component):
    first = register_component("backbone", make_component("a.safetensors", 1), {"preset": "tiny", "steps": 5})
    second = register_component("backbone", make_component("b.safetensors", 2), {"preset": "tiny"})
    assert first == ModelVersionRef("abair-backbone", "1", "models:/abair-backbone/1")
    assert second.version == "2"
    tags = MlflowClient().get_model_version("abair-backbone", "1").tags
    assert tags["preset"] == "tiny" and tags["steps"] == "5"
    assert tags["component.kind"] == "backbone" and tags["component.file"] == "backbone.safetensors"
    assert tags["sha256"] == sha256(make_component("a.safetensors", 1))


def test_adapter_registers_under_its_id_and_downloads_intact(
    mlflow_store: PipelineConfig, make_component, tmp_path
):
    source = make_component("whatever.safetensors", 7)
    ref = register_component("adapter", source, {"backbone_version": "1"}, adapter_id="low_light")
    assert ref.name == "abair-adapter-low_light"
    path = download_component(ref.name, ref.version, tmp_path / "bundle")
    assert path == tmp_path / "bundle" / "adapter-low_light.safetensors"
    assert sha256(path) == sha256(source)
    expected, got = load_file(str(source)), load_file(str(path))
    assert all(torch.equal(expected[k], got[k]) for k in expected)


def test_components_download_into_one_bundle_folder(mlflow_store: PipelineConfig, make_component, tmp_path):
    estimator = register_component("estimator", make_component("e.safetensors", 3), {})
    backbone = register_component("backbone", make_component("bb.safetensors", 4), {})
    for ref in (estimator, backbone):
        download_component(ref.name, ref.version, tmp_path / "assembled")
    assert sorted(p.name for p in (tmp_path / "assembled").iterdir()) == [
        "backbone.safetensors",
        "estimator.safetensors",
    ]


def test_component_logged_into_a_given_run(mlflow_store: PipelineConfig, make_component):
    with mlflow.start_run() as run:
        ref = register_component(
            "estimator", make_component("est.safetensors", 5), {}, run_id=run.info.run_id
        )
    version = MlflowClient().get_model_version(ref.name, ref.version)
    assert version.run_id == run.info.run_id
    assert version.source.startswith(run.info.artifact_uri)


def test_component_arguments_are_checked(mlflow_store: PipelineConfig, make_component, tmp_path):
    good = make_component("g.safetensors")
    with pytest.raises(ValueError, match="adapter_id is required"):
        register_component("adapter", good, {})
    with pytest.raises(ValueError, match="adapter_id is required"):
        register_component("backbone", good, {}, adapter_id="rain")
    with pytest.raises(ValueError, match="allowed: 'backbone', 'adapter', 'estimator'"):
        register_component("segmenter", good, {})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="snake_case"):
        adapter_model_name("Low-Light")
    fake = tmp_path / "fake.safetensors"
    fake.write_bytes(b"\x00" * 64)
    with pytest.raises(ValueError, match="not a valid safetensors"):
        register_component("backbone", fake, {})
    with pytest.raises(ValueError, match="existing .safetensors"):
        register_component("backbone", tmp_path / "missing.safetensors", {})
    assert component_file_name("adapter", "rain") == "adapter-rain.safetensors"


def test_first_bundle_is_champion_second_only_challenger(two_bundles):
    _, (first, second) = two_bundles
    assert (first.name, first.version, second.version) == ("abair", "1", "2")
    assert get_alias_version("abair", "champion") == "1"
    assert get_alias_version("abair", "challenger") == "2"
    tags = MlflowClient().get_model_version("abair", "2").tags
    assert {k: v for k, v in tags.items() if k.startswith("component.")} == {
        f"component.{k}": v for k, v in PINS.items()
    }
    assert tags["preset"] == "tiny"


def test_bundle_artifacts_are_code_and_tensors_without_pickles(two_bundles, tmp_path):
    dirs, refs = two_bundles
    local = Path(mlflow.artifacts.download_artifacts(artifact_uri=refs[0].uri, dst_path=str(tmp_path)))
    files = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    assert "bundle_model.py" in files and "MLmodel" in files
    assert "artifacts/bundle/bundle.json" in files and "artifacts/bundle/adapter-rain.safetensors" in files
    assert not [f for f in files if f.endswith((".pkl", ".pickle"))]
    assert sha256(local / "artifacts/bundle/backbone.safetensors") == sha256(dirs[0] / "backbone.safetensors")


def test_bundle_pins_must_match_its_adapters(mlflow_store: PipelineConfig, make_bundle_dir):
    bundle = make_bundle_dir("pins", adapters=("rain",))
    with pytest.raises(ValueError, match=r"missing: \['adapter.rain'\].*unexpected: \['adapter.snow'\]"):
        register_bundle(bundle, {"backbone": 1, "estimator": 1, "adapter.snow": 1})


def test_bundle_with_a_pickle_is_refused(mlflow_store: PipelineConfig, make_bundle_dir):
    bundle = make_bundle_dir("pickled", adapters=("rain",))
    (bundle / "extra.pt").write_bytes(b"not allowed")
    with pytest.raises(ValueError, match="extra.pt"):
        register_bundle(bundle, {"backbone": 1, "estimator": 1, "adapter.rain": 1})


def test_resolve_alias_pins_a_concrete_version(two_bundles, tmp_path):
    dirs, _ = two_bundles
    resolved = resolve_model("models:/abair@champion", dst_dir=tmp_path / "champ")
    assert (resolved.name, resolved.version, resolved.uri) == ("abair", "1", "models:/abair/1")
    assert resolved.local_dir.is_relative_to(tmp_path / "champ")
    assert sha256(resolved.bundle_dir / "bundle.json") == sha256(dirs[0] / "bundle.json")
    assert resolve_model("models:/abair/2", dst_dir=tmp_path / "v2").version == "2"
    assert resolve_model("models:/abair/latest", dst_dir=tmp_path / "latest").version == "2"
    with pytest.raises(LookupError, match="aliases: \\['challenger', 'champion'\\]"):
        resolve_model("models:/abair@staging")


def test_registry_versions_download_once_into_the_model_cache(two_bundles, tmp_path, monkeypatch):
    dirs, _ = two_bundles
    downloads: list[str] = []
    real_download = mlflow.artifacts.download_artifacts

    def counting_download(*args, **kwargs):
        downloads.append(kwargs.get("artifact_uri", ""))
        return real_download(*args, **kwargs)

    monkeypatch.setattr(mlflow.artifacts, "download_artifacts", counting_download)
    cache = tmp_path / "cache"
    first = resolve_model("models:/abair@champion", cache_dir=cache)
    again = resolve_model("models:/abair/1", cache_dir=cache)
    other = resolve_model("models:/abair/2", cache_dir=cache)
    assert downloads == ["models:/abair/1", "models:/abair/2"]  # the second resolve of v1 reused the copy
    assert first.bundle_dir == again.bundle_dir and first.bundle_dir.is_relative_to(cache)
    assert sha256(first.bundle_dir / "bundle.json") == sha256(dirs[0] / "bundle.json")
    assert sha256(other.bundle_dir / "bundle.json") == sha256(dirs[1] / "bundle.json")
    assert sorted(p.name.split("-")[1] for p in cache.iterdir()) == ["v1", "v2"]  # no staging folder left


def test_model_cache_keeps_two_stores_apart(two_bundles, mlflow_store: PipelineConfig, tmp_path, bundle_writer):
    """Another registry's abair/1 is another model: it gets its own cache entry, not store one's copy."""
    dirs, _ = two_bundles
    cache = tmp_path / "cache"
    ours = resolve_model("models:/abair/1", cache_dir=cache)
    other_store = PipelineConfig().resolved(tmp_path / "other")
    try:
        configure_mlflow(other_store)
        foreign = bundle_writer(tmp_path / "foreign", seed=7)
        register_bundle(foreign, PINS, tags={"preset": "tiny"})
        theirs = resolve_model("models:/abair/1", cache_dir=cache)
    finally:
        configure_mlflow(mlflow_store)
    assert theirs.bundle_dir != ours.bundle_dir
    assert sha256(theirs.bundle_dir / "bundle.json") == sha256(foreign / "bundle.json")
    assert sha256(ours.bundle_dir / "bundle.json") == sha256(dirs[0] / "bundle.json")


def test_model_cache_location(monkeypatch, tmp_path):
    from tasks.registry import model_cache_dir

    monkeypatch.setenv("ABAIR_MODEL_CACHE", str(tmp_path / "env"))
    assert model_cache_dir() == tmp_path / "env"
    assert model_cache_dir(tmp_path / "configured") == tmp_path / "configured"
    monkeypatch.delenv("ABAIR_MODEL_CACHE")
    assert model_cache_dir() == Path("~/.cache/abair/models").expanduser()


def test_resolve_local_directories(two_bundles, tmp_path):
    dirs, _ = two_bundles
    plain = resolve_model(dirs[0])
    assert plain.version == "local:" + sha256(dirs[0] / "bundle.json")[:12]
    assert plain.bundle_dir == dirs[0].resolve()
    downloaded = resolve_model("models:/abair/1", dst_dir=tmp_path / "m")
    from_mlflow_dir = resolve_model(downloaded.local_dir)
    assert from_mlflow_dir.version == plain.version and (from_mlflow_dir.local_dir / "MLmodel").is_file()
    with pytest.raises(FileNotFoundError, match="neither an MLflow model directory"):
        resolve_model(tmp_path)


def test_champion_history_and_rollback(mlflow_store: PipelineConfig, make_component):
    name = "abair-adapter-snow"
    versions = [
        register_component("adapter", make_component(f"s{i}.safetensors", i), {}, "snow") for i in range(3)
    ]
    assert get_alias_version(name, "champion") is None and previous_champion(name) is None
    for ref in versions:
        set_alias(name, "champion", ref.version)
    assert get_alias_version(name, "champion") == "3" and previous_champion(name) == "2"
    assert rollback_champion(name) == "2"
    assert get_alias_version(name, "champion") == "2" and previous_champion(name) == "1"
    assert MlflowClient().get_model_version(name, "3").tags["champion.rolled_back"] == "true"
    assert rollback_champion(name) == "1"
    with pytest.raises(LookupError, match="no previous champion"):
        rollback_champion(name)
    assert get_alias_version("abair-no-such-model", "champion") is None


def test_list_rows_carry_aliases_tags_and_headline_metrics(two_bundles, make_component):
    register_component("backbone", make_component("listed.safetensors", 9), {})
    set_headline_metrics("abair", "2", {"eval/demo/avg/sw/psnr": 27.5})
    rows = list_registered_models()
    bundles = [row for row in rows if row["name"] == "abair"]
    assert [(r["version"], r["aliases"]) for r in bundles] == [("1", ["champion"]), ("2", ["challenger"])]
    assert bundles[1]["metrics"] == {"eval/demo/avg/sw/psnr": 27.5}
    assert bundles[0]["tags"]["component.backbone"] == "1" and bundles[0]["run_id"]
    names = [row["name"] for row in rows]
    assert names == sorted(names) and "abair-backbone" in names
    assert all(row["name"].startswith("abair-backbone") for row in list_registered_models("abair-backbone"))


def test_set_alias_refuses_unknown_version(two_bundles):
    with pytest.raises(mlflow.exceptions.MlflowException):
        set_alias("abair", "champion", "99")
    assert get_alias_version("abair", "champion") == "1"
