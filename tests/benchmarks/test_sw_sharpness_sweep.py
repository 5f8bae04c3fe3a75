"""benchmarks/sw_sharpness_sweep.py on a tiny bundle with distinct adapters: the sharpness reaches the SW output."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from abair_core.bundle import load_bundle, save_bundle
from abair_core.components import class_names_for
from abair_core.config import PROJECT_ROOT
from abair_core.models import AdapterConfig, EstimatorConfig, build_abair
from abair_core.models.lora import adapter_parameters

SUITE = {
    "name": "sharpness", "images": None, "max_images": 2, "crop": 48, "seeds": [0],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}}],
        "clean": [{"id": "clean"}],
        "mild": [{"id": "noise_s5", "degradation": {"type": "noise", "sigma": 5}, "label": "clean"}],
    },
}


@pytest.fixture
def adapted_bundle(tmp_path: Path) -> Path:
    """A tiny bundle whose two adapters differ (as if trained) and whose estimator never says clean."""
    torch.manual_seed(0)
    names = ["noise", "blur"]
    model = build_abair("tiny", AdapterConfig(), EstimatorConfig(plausibility={"enabled": False}), names,
                        class_names_for(names))
    with torch.no_grad():
        for scale, name in zip((0.3, -0.3), names):
            for p in adapter_parameters(model.backbone, name):
                p.add_(scale * torch.randn_like(p))
        model.estimator.output_layer.weight.zero_()
        model.estimator.output_layer.bias.copy_(torch.tensor([-9.0, 1.0, 0.4]))  # noise 0.65, blur 0.35
    save_bundle(model, tmp_path / "bundle")
    return tmp_path / "bundle"


@pytest.fixture
def sweep(load_script, adapted_bundle: Path, suite_on_holdout) -> tuple:
    """The script, the suite's file, the loaded model, the loaded suite and its photos."""
    script = load_script("sw_sharpness_sweep")
    suite = suite_on_holdout(SUITE)
    return script, suite, load_bundle(adapted_bundle).eval(), *script.suite_photos(str(suite), None)


def test_sweep_applies_each_sharpness_and_keeps_the_model(sweep, adapted_bundle: Path, capsys) -> None:
    script, suite, model, loaded_suite, photos = sweep
    rows = script.measure(model, loaded_suite, photos, [1.0, 8.0])
    assert model.estimator.config.sw_sharpness == 1.0  # the stored setting is back
    soft = [r["sw"] for r in rows if r["sharpness"] == 1.0 and r["task"] == "noise_s25"]
    sharp = [r["sw"] for r in rows if r["sharpness"] == 8.0 and r["task"] == "noise_s25"]
    assert len(soft) == len(sharp) == 2 and soft != sharp  # a different blend of distinct adapters

    assert script.main(["--models", str(adapted_bundle), "--without", str(adapted_bundle), "--suite", str(suite),
                        "--sharpness", "1", "8", "--no-write"]) == 0
    printed = capsys.readouterr().out
    first = next(line for line in printed.splitlines() if line.startswith("| 1 |")).split("|")[1:-1]
    assert float(first[1]) == pytest.approx(sum(soft) / 2, abs=0.01)  # known SW at the stored sharpness
    assert first[3].strip() == "+0.00" and first[4].strip() == "+0.00"  # a model against itself
    assert "| known | noise_s25 |" in printed and "with - without, s=8" in printed
    assert "Command: `python benchmarks/sw_sharpness_sweep.py" in printed and str(PROJECT_ROOT) not in printed


def test_sweep_crosses_sharpness_with_test_time_views(sweep, adapted_bundle: Path, capsys) -> None:
    script, suite, model, loaded_suite, photos = sweep
    rows = script.measure(model, loaded_suite, photos, [1.0], ["none", "dihedral"])
    assert model.estimator.config.tta == "none"  # the stored setting is back
    assert {r["setting"] for r in rows} == {"1, none", "1, dihedral"}
    plain = [r for r in rows if r["tta"] == "none"]
    assert [r["sw"] for r in plain] == [r["sw"] for r in script.measure(model, loaded_suite, photos, [1.0])]

    assert script.main(["--models", str(adapted_bundle), "--suite", str(suite), "--sharpness", "1",
                        "--tta", "none", "dihedral", "--no-write"]) == 0
    printed = capsys.readouterr().out
    assert "| sw_sharpness, tta |" in printed and "| 1, dihedral |" in printed and "--tta none dihedral" in printed


def test_without_needs_one_bundle_per_model(load_script) -> None:
    script = load_script("sw_sharpness_sweep")
    with pytest.raises(SystemExit):
        script.parse_args(["--models", "a", "b", "--without", "c"])
