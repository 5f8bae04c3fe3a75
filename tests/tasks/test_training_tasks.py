"""Training tasks through ``.fn`` with the real core and a real sqlite MLflow; progress reporting."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image

from abair_core.data.dataset import (
    finish_dataset,
    plan_dataset,
    plan_sources,
    read_source_rows,
    synthesize_chunk,
    write_source_plan,
)
from abair_core.training.config import TrainConfig

SPECS = str(Path(__file__).resolve().parents[2] / "configs/degradations/train.yaml")


def test_progress_line_and_artifact_key() -> None:
    from tasks.tracking import ProgressReporter, artifact_key, flatten

    stream = io.StringIO()
    progress = ProgressReporter("phase2/low_light", 10, stream=stream)
    progress.update(5, {"loss": 0.12345})
    progress.update(10)
    lines = stream.getvalue().splitlines()
    assert lines[0].startswith("[phase2/low_light] |##########") and "5/10 steps" in lines[0]
    assert "loss 0.1235" in lines[0] and "eta" in lines[0]
    assert "10/10 steps 100%" in lines[1]
    assert artifact_key("abair", "phase2/low_light") == "abair-phase2-low-light"
    assert flatten("s", {"a": 1, "b": {"c": "x"}}) == {"s.a": "1", "s.b.c": "x"}


def test_train_backbone_task_logs_and_registers(mlflow_store, tmp_path: Path) -> None:
    from mlflow import MlflowClient

    from tasks.registry import configure_mlflow
    from tasks.training import download_component_task, train_backbone

    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((48, 48, 3)) * 255).astype(np.uint8)).save(photos / "a.png")
    config = TrainConfig.model_validate({
        "name": "task", "model": "tiny", "degradations": ["noise", "blur"],
        "data": {"source": str(photos), "degradation_specs": SPECS},
        "synthesis": {"patch_size": 32, "counts": {"composite": 2, "single": 2, "sequence": 1, "clean": 2}},
        "phase1": {"steps": 2, "batch_size": 2, "patch_size": 32, "warmup_steps": 1, "log_every": 1},
    })
    plan = plan_dataset(config, str(tmp_path / "work"))
    uri, pending = write_source_plan(plan_sources(str(photos), "**/*", plan, exclude=()), plan)
    data = finish_dataset(uri, synthesize_chunk(read_source_rows(uri, pending), config, plan), plan)
    dataset = {"manifest_uri": data["manifest_uri"], "dataset_hash": data["dataset_hash"]}

    experiment_id = configure_mlflow(mlflow_store)
    result = train_backbone.fn(config, dataset, str(tmp_path / "run"), experiment_id)
    client = MlflowClient()
    version = client.get_model_version("abair-backbone", result["version"])
    assert version.tags["dataset.hash"] == data["dataset_hash"]
    assert version.tags["component.kind"] == "backbone"
    run = client.get_run(result["run_id"])
    assert run.info.status == "FINISHED"
    assert run.data.params["schedule.steps"] == "2"
    assert [m.step for m in client.get_metric_history(result["run_id"], "loss")] == [1, 2]
    local = download_component_task.fn("abair-backbone", result["version"], str(tmp_path / "dl"))
    assert Path(local).name == "backbone.safetensors" and Path(local).stat().st_size > 0
