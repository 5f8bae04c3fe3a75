"""Retuning an estimator file: same weights, new inference settings, refusals that name the file and key."""

from __future__ import annotations

import json

import pytest
import torch

from abair_core.bundle import BUNDLE_FILE, ESTIMATOR_FILE, load_bundle, read_bundle_manifest, save_bundle
from abair_core.checkpoints import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from abair_core.components import class_names_for, load_estimator
from abair_core.config import PROJECT_ROOT, ConfigError
from abair_core.estimator_retune import (
    EstimatorRetune,
    load_retune,
    retune_estimator_file,
    write_retuned_bundle,
)
from abair_core.models import AdapterConfig, EstimatorConfig, build_abair
from abair_core.models.lora import adapter_parameters

ADAPTERS = ["noise", "blur"]


def saved_bundle(directory):
    """A tiny ABAIR with distinct adapters and an estimator that reads noise 60%, blur 30%, clean 10%."""
    torch.manual_seed(0)
    model = build_abair("tiny", AdapterConfig(), EstimatorConfig(plausibility={"enabled": False}), ADAPTERS,
                        class_names_for(ADAPTERS))
    with torch.no_grad():
        for name in ADAPTERS:
            for p in adapter_parameters(model.backbone, name):
                p.add_(0.05 * torch.randn_like(p))
        layer = model.estimator.output_layer
        layer.weight.zero_()
        layer.bias.copy_(torch.tensor([0.1, 0.6, 0.3]).log())
    save_bundle(model.eval(), directory, versions={"backbone": "1", "estimator": "1"})
    return model.eval()


def write_yaml(path, text: str) -> str:
    path.write_text(text)
    return str(path)


def test_retuned_bundle_blends_like_the_new_setting_with_the_same_weights(tmp_path) -> None:
    model = saved_bundle(tmp_path / "base")
    src = str(tmp_path / "base" / ESTIMATOR_FILE)
    original = (tmp_path / "base" / ESTIMATOR_FILE).read_bytes()
    changes = retune_estimator_file(src, str(tmp_path / "new.safetensors"), EstimatorRetune(sw_sharpness=2))
    assert changes == {"sw_sharpness": {"before": 1.0, "after": 2.0}}
    assert (tmp_path / "base" / ESTIMATOR_FILE).read_bytes() == original  # the source is never touched

    old_tensors, _ = load_checkpoint(src)
    new_tensors, metadata = load_checkpoint(str(tmp_path / "new.safetensors"))
    assert old_tensors.keys() == new_tensors.keys()
    assert all(torch.equal(old_tensors[k], new_tensors[k]) for k in old_tensors)
    assert metadata["retunes"] == [{"changes": changes}]

    out = write_retuned_bundle(tmp_path / "base", tmp_path / "retuned", tmp_path / "new.safetensors",
                               {"backbone": "1", "estimator": "2"})
    assert read_bundle_manifest(out)["versions"] == {"backbone": "1", "estimator": "2"}
    retuned = load_bundle(out)
    assert retuned.estimator.config.sw_sharpness == 2.0
    x = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    model.estimator.config.sw_sharpness = 2.0  # what training with the setting would have stored
    with torch.no_grad():
        torch.testing.assert_close(retuned.restore(x, "sw"), model.restore(x, "sw"), atol=1e-6, rtol=0)
        base = load_bundle(tmp_path / "base")
        assert (retuned.restore(x, "sw") - base.restore(x, "sw")).abs().max() > 1e-4  # the blend did change
        torch.testing.assert_close(retuned.restore(x, "oh"), base.restore(x, "oh"), atol=1e-6, rtol=0)


def test_a_gate_retune_keeps_a_legacy_files_other_settings(tmp_path) -> None:
    saved_bundle(tmp_path / "base")
    tensors, metadata = load_checkpoint(str(tmp_path / "base" / ESTIMATOR_FILE))
    legacy_config = {k: v for k, v in metadata["estimator_config"].items() if k != "sw_sharpness"}
    legacy_config["plausibility"] = {"enabled": True, "low_light_max_highlights": 0.5, "noise_min_sigma": 5.5,
                                     "blur_max_sharpness": None, "haze_min_dark_channel": None, "gated_mass": "clean"}
    save_checkpoint(str(tmp_path / "legacy.safetensors"), tensors, {**metadata, "estimator_config": legacy_config})

    retune = EstimatorRetune(plausibility={"haze_min_dark_channel": 0.1})
    changes = retune_estimator_file(str(tmp_path / "legacy.safetensors"), str(tmp_path / "new.safetensors"), retune)
    assert changes == {"plausibility.haze_min_dark_channel": {"before": None, "after": 0.1}}
    gates = load_estimator(str(tmp_path / "new.safetensors")).config.plausibility
    # what the legacy file meant stays explicit: jpeg and bit-depth gates off, a vetoed expert's share to clean
    assert (gates.jpeg_min_blockiness, gates.bit_depth_max_level_fill, gates.expert_veto) == (None, None, "clean")
    assert load_estimator(str(tmp_path / "new.safetensors")).config.sw_sharpness == 1.0


def test_a_retune_can_turn_on_test_time_views(tmp_path) -> None:
    """tta is inference only: a retuned copy with the 8 dihedral views answers as the same weights with them."""
    model = saved_bundle(tmp_path / "base")
    src = str(tmp_path / "base" / ESTIMATOR_FILE)
    changes = retune_estimator_file(src, str(tmp_path / "new.safetensors"), load_retune(
        write_yaml(tmp_path / "views.yaml", "tta: dihedral\n")))
    assert changes == {"tta": {"before": "none", "after": "dihedral"}}
    retuned = load_estimator(str(tmp_path / "new.safetensors"))
    model.estimator.config = model.estimator.config.model_copy(update={"tta": "dihedral"})
    x = torch.rand(2, 3, 80, 80, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        torch.testing.assert_close(retuned.predict_proba(x), model.estimator.predict_proba(x))


@pytest.mark.parametrize(("text", "message"), [
    ("tta: rotations\n", r"key 'tta'.*'none', 'flip' or 'dihedral'"),
    ("crop_size: 32\n", r"key 'crop_size': Extra inputs are not permitted \(allowed: plausibility, sw_sharpness, tta\)"),
    ("sw_sharpness: 0.5\n", r"key 'sw_sharpness': Input should be greater than or equal to 1"),
    ("plausibility: {noise_min_sigmaa: 4}\n", r"key 'plausibility.noise_min_sigmaa': Extra inputs .*noise_min_sigma"),
    ("plausibility: {gated_mass: everywhere}\n", r"key 'plausibility.gated_mass'.*clean_if_top"),
    ("{}\n", r"names no setting to change \(allowed keys: plausibility, sw_sharpness, tta\)"),
])
def test_bad_settings_are_refused_naming_file_and_key(tmp_path, text: str, message: str) -> None:
    saved_bundle(tmp_path / "base")
    path = write_yaml(tmp_path / "retune.yaml", text)
    with pytest.raises(ConfigError, match=message) as caught:
        retune = load_retune(path)
        retune_estimator_file(str(tmp_path / "base" / ESTIMATOR_FILE), str(tmp_path / "new.safetensors"), retune,
                              source=path)
    assert path in str(caught.value)
    assert not (tmp_path / "new.safetensors").exists()


def test_a_retune_that_changes_nothing_writes_nothing(tmp_path) -> None:
    saved_bundle(tmp_path / "base")
    with pytest.raises(ValueError, match="already has these settings"):
        retune_estimator_file(str(tmp_path / "base" / ESTIMATOR_FILE), str(tmp_path / "new.safetensors"),
                              EstimatorRetune(sw_sharpness=1.0, plausibility={"enabled": False}))
    assert not (tmp_path / "new.safetensors").exists()


def test_a_retuned_bundle_never_overwrites_a_folder(tmp_path) -> None:
    saved_bundle(tmp_path / "base")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError):
        write_retuned_bundle(tmp_path / "base", tmp_path / "taken", tmp_path / "base" / ESTIMATOR_FILE, {})
    assert (tmp_path / "taken" / "keep.txt").read_text() == "mine"
    assert json.loads((tmp_path / "base" / BUNDLE_FILE).read_text())["versions"]["estimator"] == "1"
    assert read_checkpoint_metadata(str(tmp_path / "base" / ESTIMATOR_FILE))["kind"] == "estimator"


@pytest.mark.parametrize("path", sorted(PROJECT_ROOT.glob("configs/estimator/retune/*.yaml")), ids=lambda p: p.name)
def test_shipped_retune_files_apply_to_a_current_estimator(tmp_path, path) -> None:
    saved_bundle(tmp_path / "base")
    changes = retune_estimator_file(str(tmp_path / "base" / ESTIMATOR_FILE), str(tmp_path / "new.safetensors"),
                                    load_retune(path), source=str(path))
    assert changes and all(v["before"] != v["after"] for v in changes.values())


def test_planned_changes_match_the_retune_and_write_nothing(tmp_path) -> None:
    from abair_core.estimator_retune import planned_changes

    saved_bundle(tmp_path / "base")
    src = str(tmp_path / "base" / ESTIMATOR_FILE)
    retune = EstimatorRetune(sw_sharpness=4, plausibility={"noise_min_sigma": 4.0})
    planned = planned_changes(src, retune)
    assert sorted(tmp_path.iterdir()) == [tmp_path / "base"]
    assert planned == retune_estimator_file(src, str(tmp_path / "new.safetensors"), retune)
    assert set(planned) == {"sw_sharpness", "plausibility.noise_min_sigma"}
