"""The phases from files to files: backbone, adapters and estimator files that assemble into a bundle."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from abair_core.bundle import assemble_bundle, load_bundle
from abair_core.checkpoints import load_checkpoint
from abair_core.data.dataset import (
    finish_dataset,
    plan_dataset,
    plan_sources,
    read_source_rows,
    synthesize_chunk,
    write_source_plan,
)
from abair_core.training import steps
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


def _dataset(tmp_path: Path, **over: dict) -> tuple[TrainConfig, str]:
    """A recipe and the manifest of its synthesized patches (one random 64 px photo)."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(photos / "a.png")
    config = TrainConfig.model_validate({**RECIPE, **over, "data": {"source": str(photos), "degradation_specs": SPECS}})
    plan = plan_dataset(config, str(tmp_path / "work"))
    uri, pending = write_source_plan(plan_sources(str(photos), "**/*", plan, exclude=()), plan)
    manifest = finish_dataset(uri, synthesize_chunk(read_source_rows(uri, pending), config, plan), plan)["manifest_uri"]
    return config, manifest


def test_phase_files_link_into_a_bundle(tmp_path: Path) -> None:
    config, manifest = _dataset(tmp_path)

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


def test_a_warm_started_adapter_begins_as_an_exact_copy_of_the_best_old_one(tmp_path: Path, monkeypatch) -> None:
    phase2 = {**RECIPE["phase2"], "steps": 1, "lr": 1e-12, "min_lr": 0.0, "warm_start": "best"}
    config, manifest = _dataset(tmp_path, phase2=phase2)
    backbone_path = str(tmp_path / "backbone.safetensors")
    train_backbone_file(config, manifest, backbone_path)
    noise_path = str(tmp_path / "adapter-noise.safetensors")
    zero = TrainConfig.model_validate({**config.model_dump(mode="json"), "phase2": {**phase2, "lr": 0.05}})
    train_adapter_file(zero, "noise", manifest, backbone_path, noise_path)
    scored: list[str] = []

    def fake_scores(backbone, patches, name, candidates, **_):
        scored.extend(candidates)
        return {"input": 20.0, "backbone": 18.0, **{c: 19.0 for c in candidates}}

    monkeypatch.setattr(steps, "score_adapters_on", fake_scores)
    blur_path = str(tmp_path / "adapter-blur.safetensors")
    summary = train_adapter_file(config, "blur", manifest, backbone_path, blur_path,
                                 warm_start_candidates={"noise": noise_path})
    assert scored == ["warm_start_noise"]
    assert summary["warm_start"] == {"from": "noise", "scores": {"input": 20.0, "backbone": 18.0, "noise": 19.0}}
    noise, _ = load_checkpoint(noise_path)
    blur, metadata = load_checkpoint(blur_path)
    assert metadata["warm_start_from"] == "noise" and metadata["adapter_id"] == "blur"
    assert set(blur) == set(noise)  # the file holds the new adapter only, not the scored candidates
    # one step at lr 1e-12 leaves the copy where it started
    assert all(torch.allclose(blur[k], noise[k], atol=1e-9) for k in noise)
    assert any(float(noise[k].abs().max()) > 0 for k in noise if k.endswith("lora_b"))


def test_warm_start_is_off_unless_the_schedule_asks_for_it(tmp_path: Path) -> None:
    config, manifest = _dataset(tmp_path)
    backbone_path = str(tmp_path / "backbone.safetensors")
    train_backbone_file(config, manifest, backbone_path)
    noise_path = str(tmp_path / "adapter-noise.safetensors")
    train_adapter_file(config, "noise", manifest, backbone_path, noise_path)
    summary = train_adapter_file(config, "blur", manifest, backbone_path, str(tmp_path / "blur.safetensors"),
                                 warm_start_candidates={"noise": noise_path})
    assert config.phase2.warm_start == "zero" and summary["warm_start"] == {"from": None, "scores": {}}
