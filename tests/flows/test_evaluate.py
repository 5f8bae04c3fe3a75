"""`evaluate` and `train_baseline` flows: report files, MLflow metrics that match a recomputation,
one evaluation run per (version, suite hash), and the all-in-one baseline row."""

from __future__ import annotations

import json
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from skimage import data

TINY_SUITE = {
    "name": "tiny", "images": "samples://holdout", "max_images": 2, "crop": 64, "seeds": [0],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}},
                  {"id": "blur", "degradation": {"type": "blur", "kind": "motion", "length": 9}}],
        "unseen": [{"id": "jpeg_q20", "degradation": {"type": "jpeg", "quality": 20}}],
        "mixed": [{"id": "blur_noise", "sequence": [{"type": "blur", "kind": "gaussian", "sigma": 1.5},
                                                    {"type": "noise", "sigma": 15}]}],
    },
}


@pytest.fixture(scope="module")
def setup(mlflow_store, prefect_harness, micro_bundle_dir, micro_train_config, tmp_path_factory):
    from tasks.registry import register_bundle

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("evaluate")
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(mlflow_store.model_dump(mode="json")))
    suite = root / "suite.yaml"
    suite.write_text(yaml.safe_dump(TINY_SUITE))
    photos = root / "train-photos"
    photos.mkdir()
    Image.fromarray(data.rocket()[:160, :160]).save(photos / "rocket.png")
    Image.fromarray(data.coins()[:120, :120]).convert("RGB").save(photos / "coins.png")
    train = root / "micro.yaml"
    train.write_text(yaml.safe_dump({**micro_train_config, "data": {"source": photos.as_uri()}}))
    version = register_bundle(micro_bundle_dir, {"backbone": "1", "estimator": "1", "adapter.noise": "1",
                                                 "adapter.blur": "1"}).version
    return {"pipeline": str(pipeline), "suite": str(suite), "train": str(train), "version": version,
            "config": mlflow_store, "root": root}


@pytest.fixture(scope="module")
def flow_tmp(tmp_path_factory) -> Iterator[Path]:
    """The temporary folder the flows of this module see, to check they leave nothing behind."""
    folder = tmp_path_factory.mktemp("flow-tmp")
    saved, tempfile.tempdir = tempfile.tempdir, str(folder)
    yield folder
    tempfile.tempdir = saved


@pytest.fixture(scope="module")
def baseline(setup, flow_tmp):
    from flows.baseline import train_baseline

    return train_baseline(setup["train"], pipeline=setup["pipeline"])


@pytest.fixture(scope="module")
def evaluated(setup, baseline, flow_tmp):
    from flows.evaluate import evaluate

    report = setup["root"] / "report"
    return evaluate(model="models:/abair@challenger", suite=setup["suite"], pipeline=setup["pipeline"],
                    report_dir=str(report))


def test_flows_leave_no_model_copies_in_the_temporary_folder(evaluated, flow_tmp, session_model_cache):
    assert not list(flow_tmp.glob("abair-*"))
    assert any(session_model_cache.glob(f"abair-v{evaluated['version']}-*/MLmodel"))


def test_baseline_is_registered_with_its_budget(baseline):
    from mlflow import MlflowClient

    assert baseline["name"] == "abair-baseline" and baseline["version"] == "1"
    budget = baseline["budget"]
    assert budget["target"] == 8 * 4 * 32 * 32 + 2 * 4 * 4 * 32 * 32 and budget["steps"] == 16
    tags = MlflowClient().get_model_version("abair-baseline", "1").tags
    assert tags["budget.steps"] == "16" and tags["preset"] == "tiny" and tags["baseline.architecture"]


def test_report_files_and_baseline_row(evaluated):
    out = Path(evaluated["report_dir"])
    for name in ("report.md", "table-known.md", "table-unseen.md", "table-mixed.md", "confusion.md",
                 "radar.png", "samples.png", "scores.json"):
        assert (out / name).is_file(), name
    scores = json.loads((out / "scores.json").read_text())
    assert scores["methods"] == ["input", "backbone", "all_in_one", "oh", "sw", "oracle"]
    assert evaluated["baseline_version"] == "1" and evaluated["version"] == "1"
    table = (out / "table-known.md").read_text()
    assert "All-in-one baseline" in table and "ABAIR SW" in table and "| noise_s25 | blur | Average |" in table
    assert "N/A" in (out / "table-unseen.md").read_text()  # no jpeg adapter: oracle N/A
    assert "demo-sized" in (out / "report.md").read_text()


def test_logged_metrics_match_a_recomputation(evaluated, setup):
    from mlflow import MlflowClient

    from abair_core.bundle import load_bundle
    from abair_core.components import load_backbone
    from abair_core.evaluation import evaluate_suite, load_images, load_suite, metric_dict
    from tasks.evaluation import find_baseline
    from tasks.registry import resolve_model
    from tasks.sample_photos import resolve_photo_source

    client = MlflowClient()
    run = client.get_run(evaluated["run_id"])
    suite = load_suite(setup["suite"])
    uri = resolve_photo_source("samples://holdout", setup["config"].storage.root)
    suite = suite.with_images(uri)
    resolved = resolve_model("models:/abair/1", setup["root"] / "recompute")
    base = find_baseline.fn(str(resolved.bundle_dir / "backbone.safetensors"), str(setup["root"] / "b"))
    result = evaluate_suite(load_bundle(resolved.bundle_dir), suite, load_images(uri, max_images=2),
                            baselines={"all_in_one": load_backbone(base["path"])[0]})
    expected = metric_dict({**result.to_dict()})
    assert result.suite_hash == evaluated["suite_hash"] == run.data.tags["abair.suite_hash"]
    logged = run.data.metrics
    assert set(expected) == set(logged)
    for key, value in expected.items():
        assert logged[key] == pytest.approx(value, abs=1e-9), key
    assert np.isfinite(logged["eval/tiny/noise_s25/sw/psnr"])
    tags = client.get_model_version("abair", "1").tags
    assert tags["eval.tiny.run_id"] == evaluated["run_id"]
    assert float(tags["metric.tiny.sw.psnr.all"]) == pytest.approx(evaluated["headline"]["tiny.sw.psnr.all"])


def test_one_run_per_version_and_suite_hash_and_artifacts(evaluated, setup):
    from prefect.artifacts import Artifact

    from flows.evaluate import evaluate

    again = evaluate(model="models:/abair/1", suite=setup["suite"], pipeline=setup["pipeline"],
                     report_dir=str(setup["root"] / "report2"))
    assert again["run_id"] == evaluated["run_id"]
    artifact = Artifact.get("abair-benchmark-known")
    assert artifact is not None and "ABAIR SW" in artifact.data
