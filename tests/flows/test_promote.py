"""`promote` / `rollback`: a worse challenger is refused and changes nothing; an equal one is promoted
(scores within the gate), and rollback moves champion back."""

from __future__ import annotations

import pytest
import torch
import yaml

SUITE = {
    "name": "gate", "images": "samples://holdout", "max_images": 2, "crop": 64, "seeds": [0],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}},
                  {"id": "blur", "degradation": {"type": "blur", "kind": "gaussian", "sigma": 1.5}}],
        "mixed": [{"id": "blur_noise", "sequence": [{"type": "blur", "kind": "gaussian", "sigma": 1.0},
                                                    {"type": "noise", "sigma": 15}]}],
    },
}
PINS = {"backbone": "1", "estimator": "1", "adapter.noise": "1", "adapter.blur": "1"}


@pytest.fixture(scope="module")
def setup(mlflow_store, prefect_harness, micro_bundle_dir, tmp_path_factory):
    from abair_core.bundle import load_bundle, save_bundle
    from tasks.registry import register_bundle

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("promote")
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(mlflow_store.model_dump(mode="json")))
    suite = root / "suite.yaml"
    suite.write_text(yaml.safe_dump(SUITE))
    worse = load_bundle(micro_bundle_dir)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in worse.backbone.named_parameters():
            if "lora_" not in name and p.numel() > 1:
                p.add_(0.5 * p.std() * torch.randn(p.shape, generator=generator))
    save_bundle(worse, root / "worse")
    first = register_bundle(micro_bundle_dir, PINS).version
    return {"pipeline": str(pipeline), "suite": str(suite), "first": first, "worse_dir": root / "worse"}


def test_worse_challenger_is_refused_and_changes_nothing(setup, micro_bundle_dir):
    from mlflow import MlflowClient

    from flows.promote import promote
    from tasks.registry import get_alias_version, register_bundle

    worse = register_bundle(setup["worse_dir"], PINS).version
    assert get_alias_version("abair", "challenger") == worse and get_alias_version("abair", "champion") == "1"
    result = promote(suite=setup["suite"], pipeline=setup["pipeline"])
    assert result["promoted"] is False and result["champion"] == "1"
    assert get_alias_version("abair", "champion") == "1"
    assert result["failing_tasks"] and set(result["failing_tasks"]) <= {"noise_s25", "blur", "blur_noise"}
    assert any("below the champion" in f for f in result["failures"])
    tags = MlflowClient().get_model_version("abair", worse).tags
    assert tags["promotion.decision"] == "refused" and tags["promotion.champion_version"] == "1"
    assert tags["promotion.by"] and tags["promotion.at"] and "gate.sw.psnr.all" in tags["promotion.champion_scores"]


def test_equal_challenger_is_promoted_and_rollback_restores(setup, micro_bundle_dir):
    from mlflow import MlflowClient

    from flows.promote import promote, rollback
    from tasks.registry import get_alias_version, register_bundle

    same = register_bundle(micro_bundle_dir, PINS).version
    result = promote(suite=setup["suite"], pipeline=setup["pipeline"])
    assert result["promoted"] is True and result["failures"] == [] and result["champion"] == same
    assert get_alias_version("abair", "champion") == same
    tags = MlflowClient().get_model_version("abair", same).tags
    assert tags["promotion.decision"] == "promoted" and tags["champion.previous"] == "1"
    assert result["challenger_scores"] == pytest.approx(result["champion_scores"])
    again = promote(suite=setup["suite"], pipeline=setup["pipeline"])
    assert again["promoted"] is False and "already" in again["reason"]
    back = rollback(pipeline=setup["pipeline"])
    assert back == {"model": "abair", "champion": "1", "rolled_back_from": same}
    assert get_alias_version("abair", "champion") == "1"
