"""`abair baseline --config configs/train/<name>.yaml`: the all-in-one baseline of a training recipe.

The same backbone preset trained on Phase I composites and every Phase II degradation's patches,
with no adapters and the same budget (optimizer steps x batch x patch pixels of Phase I plus every
Phase II adapter). It is registered as a version of ``abair-baseline`` with the budget and the
architecture key as tags; ``evaluate`` shows it as the ``all_in_one`` row for matching bundles.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
from prefect import flow, task

from abair_core.config import load_config
from abair_core.degradations.specs import load_degradation_specs
from abair_core.evaluation.images import load_images
from abair_core.training.baseline import train_baseline_from_photos
from abair_core.training.config import TrainConfig
from flows.runtime import pipeline_from
from tasks.evaluation import register_baseline
from tasks.registry import configure_mlflow
from tasks.sample_photos import resolve_photo_source

__all__ = ["train_baseline"]


@task(name="fit-baseline")
def fit_baseline(train_config: str, photos_uri: str, out_file: str, storage_options: dict[str, Any]) -> dict:
    """Train the baseline of a training config on the photos under ``photos_uri``; metrics go to MLflow."""
    config = load_config(train_config, TrainConfig)
    photos = load_images(photos_uri, config.data.include, max_pixels=config.data.max_pixels,
                         storage_options=storage_options)

    def log_metrics(step: int, metrics: dict[str, float]) -> None:
        mlflow.log_metrics({f"baseline/{k}": v for k, v in metrics.items()}, step=step)

    return train_baseline_from_photos(config, photos, load_degradation_specs(config.data.degradation_specs),
                                      out_file, log_metrics)


@flow(name="train-baseline")
def train_baseline(train_config: str, pipeline: str | None = None) -> dict:
    """Train and register the all-in-one baseline; returns its version, budget and seconds."""
    config = pipeline_from(pipeline)
    configure_mlflow(config)
    recipe = load_config(train_config, TrainConfig)
    photos = resolve_photo_source(recipe.data.source, config.storage.root, config.storage.storage_options)
    with (tempfile.TemporaryDirectory(prefix="abair-baseline-") as staging,
          mlflow.start_run(run_name=f"baseline-{recipe.name}") as run):
        out_file = str(Path(staging) / "backbone.safetensors")
        mlflow.set_tags({"abair.kind": "baseline", "abair.train_config": recipe.name})
        result = fit_baseline(train_config, photos, out_file, config.storage.storage_options)
        mlflow.log_params({f"budget.{k}": v for k, v in result["budget"].items()})
        tags = {"train_config": recipe.name, "preset": result["preset"],
                **{f"budget.{k}": v for k, v in result["budget"].items()}}
        version = register_baseline(out_file, tags, run.info.run_id)
    return {"name": "abair-baseline", "version": version, "run_id": run.info.run_id, **result}
