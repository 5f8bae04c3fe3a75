"""The phases from files to files: backbone, adapters and estimator files that assemble into a bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from abair_core.bundle import assemble_bundle, load_bundle
from abair_core.data.dataset import (
    finish_dataset,
    plan_dataset,
    plan_sources,
    read_source_rows,
    synthesize_chunk,
    write_source_plan,
)
from abair_core.training.config import TrainConfig
from abair_core.training.steps import train_adapter_file, train_backbone_file, train_estimator_file

SPECS = str(Path(__file__).resolve().parents[3] / "configs/degradations/train.yaml")
RECIPE = {
    "name": "steps", "model": "tiny", "degradations": ["noise", "blur"],
    "synthesis": {"patch_size": 40, "counts": {"composite": 4, "single": 4, "sequence": 2, "clean": 4}},
    "phase1": {"steps": 3, "batch_size": 2, "patch_size": 32, "warmup_steps": 1, "log_every": 1,
               "checkpoint_every": 2},
    "phase2": {"steps": 2, "batch_size": 2, "patch_size": 32, "warmup_steps": 1, "log_every": 1},
    "phase3": {"steps": 2, "batch_size": 4, "patch_size": 32, "warmup_steps": 1, "log_every": 1},
}


def test_phase_files_link_into_a_bundle(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(photos / "a.png")
    config = TrainConfig.model_validate({**RECIPE, "data": {"source": str(photos), "degradation_specs": SPECS}})
    plan = plan_dataset(config, str(tmp_path / "work"))
    uri, pending = write_source_plan(plan_sources(str(photos), "**/*", plan), plan)
    manifest = finish_dataset(uri, synthesize_chunk(read_source_rows(uri, pending), config, plan), plan)["manifest_uri"]

    seen: list[int] = []
    resume = str(tmp_path / "resume-phase1.safetensors")
    backbone = train_backbone_file(config, manifest, str(tmp_path / "backbone.safetensors"),
                                   lambda step, metrics: seen.append(step), resume)
    assert seen == [1, 2, 3] and backbone["steps"] == 3 and Path(resume).is_file()
    again = train_backbone_file(config, manifest, str(tmp_path / "backbone2.safetensors"), None, resume)
    assert again["resumed_from"] == 3 and again["fingerprint"] == backbone["fingerprint"]

    adapters = {}
    for name in config.degradations:
        adapters[name] = str(tmp_path / f"adapter-{name}.safetensors")
        train_adapter_file(config, name, manifest, str(tmp_path / "backbone.safetensors"), adapters[name])
    estimator = train_estimator_file(config, manifest, adapters, str(tmp_path / "estimator.safetensors"))
    assert estimator["steps"] == 2
    assemble_bundle(tmp_path / "bundle", str(tmp_path / "backbone.safetensors"), adapters,
                    str(tmp_path / "estimator.safetensors"))
    model = load_bundle(tmp_path / "bundle")
    assert model.adapter_names == ["noise", "blur"]
