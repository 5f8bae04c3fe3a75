"""train_all end to end on the micro recipe: registry versions, lineage tags, aliases, the pyfunc bundle, resume."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

SPECS = str(Path(__file__).resolve().parents[2] / "configs/degradations/train.yaml")


@pytest.fixture(scope="module")
def train_setup(micro_train_config, mlflow_store, tmp_path_factory):
    """Two real photos in a folder, the micro recipe reading them, and the module's pipeline YAML."""
    from skimage import data

    root = tmp_path_factory.mktemp("train-flows")
    photos = root / "photos"
    photos.mkdir()
    Image.fromarray(data.rocket()[:160, :200]).save(photos / "rocket.png")
    Image.fromarray(data.coffee()[:160, :200]).save(photos / "coffee.png")
    recipe = {**micro_train_config, "data": {"source": str(photos), "degradation_specs": SPECS}}
    pipeline = mlflow_store.model_dump(mode="json")
    pipeline["dask"] = {"n_workers": 1, "threads_per_worker": 1, "processes": True}
    path = root / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    return recipe, str(path)


def test_train_all_resumes_after_a_crash_then_registers_a_linked_bundle(train_setup, prefect_harness,
                                                                         monkeypatch) -> None:
    import mlflow
    from mlflow import MlflowClient

    from abair_core.training import steps
    from flows.train import train_all

    recipe, pipeline = train_setup
    monkeypatch.setenv("ABAIR_ADAPTER_CONCURRENCY", "2")  # both adapters submitted at once
    real_run_adapter = steps.run_adapter
    crashed: list[str] = []
    trained_in: list[int] = []

    def crash_once(config, backbone, name, *args, **kwargs):
        if not crashed:
            crashed.append(name)
            raise RuntimeError(f"simulated crash in phase II ({name})")
        trained_in.append(threading.get_ident())
        return real_run_adapter(config, backbone, name, *args, **kwargs)

    monkeypatch.setattr(steps, "run_adapter", crash_once)
    with pytest.raises(RuntimeError, match="simulated crash"):
        train_all(recipe, pipeline)
    client = MlflowClient()
    assert [str(v.version) for v in client.search_model_versions("name = 'abair-backbone'")] == ["1"]

    # one at a time, the adapters train in the flow's own thread: in a pool thread, after this thread ran
    # Phase I, a CPU step was 1.6x slower (docs/BENCHMARKS.md, "Demo timing: adapters in the flow's thread")
    monkeypatch.setenv("ABAIR_ADAPTER_CONCURRENCY", "1")
    trained_in.clear()
    result = train_all(recipe, pipeline)
    assert trained_in and set(trained_in) == {threading.get_ident()}
    assert "pretrain" in result["skipped"]  # Phase I was not run again
    assert result["timings"]["pretrain"] == 0.0 and result["timings"]["adapters"] > 0
    assert [str(v.version) for v in client.search_model_versions("name = 'abair-backbone'")] == ["1"]
    versions = result["versions"]
    assert versions["backbone"] == "1" and versions["bundle"] == "1"
    for phase in ("synthesize", "adapters", "estimator", "bundle", "total"):
        assert result["timings"][phase] > 0

    dataset_hash = result["dataset"]["dataset_hash"]
    backbone = client.get_model_version("abair-backbone", "1")
    assert backbone.tags["dataset.hash"] == dataset_hash
    assert backbone.tags["dataset.manifest_uri"] == result["dataset"]["manifest_uri"]
    for name in ("noise", "blur"):
        mv = client.get_model_version(f"abair-adapter-{name}", versions[f"adapter.{name}"])
        assert mv.tags["backbone.version"] == "1" and mv.tags["dataset.hash"] == dataset_hash
    estimator = client.get_model_version("abair-estimator", versions["estimator"])
    assert estimator.tags["adapter.noise.version"] == versions["adapter.noise"]
    assert estimator.tags["adapter.blur.version"] == versions["adapter.blur"]
    bundle = client.get_model_version("abair", "1")
    assert bundle.tags["component.backbone"] == "1"
    assert bundle.tags["component.estimator"] == versions["estimator"]
    assert bundle.tags["component.adapter.noise"] == versions["adapter.noise"]
    assert sorted(client.get_registered_model("abair").aliases) == ["challenger", "champion"]
    assert result["bundle"]["aliases"] == ["challenger", "champion"]

    phase_run = client.get_run(backbone.run_id)
    assert "loss" in phase_run.data.metrics and "wall_seconds" in phase_run.data.metrics
    assert phase_run.data.params["dataset.manifest_uri"] == result["dataset"]["manifest_uri"]
    history = client.get_metric_history(backbone.run_id, "loss")
    assert [m.step for m in history] == [4, 8]
    parent = client.get_run(result["parent_run_id"])
    assert parent.info.status == "FINISHED" and "time/total_seconds" in parent.data.metrics
    # the crashed first invocation's time counts too: the recipe's full training cost, not the last resume
    cumulative = parent.data.metrics["time/cumulative_seconds"]
    assert cumulative > result["timings"]["total"] + 0.5

    model = mlflow.pyfunc.load_model("models:/abair@challenger")
    image = (np.random.default_rng(0).random((40, 52, 3)) * 255).astype(np.uint8)
    restored = model.predict(image)
    assert restored.shape == image.shape and restored.dtype == image.dtype

    again = train_all(recipe, pipeline)  # everything finished: nothing retrains, nothing re-registers
    assert set(again["skipped"]) >= {"pretrain", "adapter/noise", "adapter/blur", "estimator", "bundle"}
    assert again["versions"] == versions
