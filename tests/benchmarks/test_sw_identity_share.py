"""benchmarks/sw_identity_share.py on a tiny bundle whose estimator gives clean a share without winning."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from abair_core.bundle import load_bundle, save_bundle
from abair_core.components import class_names_for
from abair_core.config import PROJECT_ROOT
from abair_core.models import AdapterConfig, EstimatorConfig, build_abair

SUITE = {
    "name": "identity", "images": None, "max_images": 2, "crop": 48, "seeds": [0],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}}],
        "clean": [{"id": "clean"}],
        "mild": [{"id": "noise_s5", "degradation": {"type": "noise", "sigma": 5}, "label": "clean"}],
    },
}


@pytest.fixture
def unsure_bundle(tmp_path: Path) -> Path:
    """A tiny bundle whose estimator says clean 0.19, noise 0.52, blur 0.29 for every input (gates off)."""
    torch.manual_seed(0)
    names = ["noise", "blur"]
    model = build_abair("tiny", AdapterConfig(), EstimatorConfig(plausibility={"enabled": False}), names,
                        class_names_for(names))
    with torch.no_grad():
        model.estimator.output_layer.weight.zero_()
        model.estimator.output_layer.bias.copy_(torch.tensor([0.0, 1.0, 0.4]))
    save_bundle(model, tmp_path / "bundle")
    return tmp_path / "bundle"


def test_the_shipped_rule_is_restore_sw_and_the_floors_switch_the_share(load_script, unsure_bundle: Path,
                                                                       suite_on_holdout, capsys) -> None:
    script = load_script("sw_identity_share")
    suite = suite_on_holdout(SUITE)
    model = load_bundle(unsure_bundle).eval()
    loaded_suite, photos = script.suite_photos(str(suite), None)
    rules = script.rule_names([0.1, 0.5])
    assert rules == ["p_clean", "floor 0.1", "floor 0.5", "none"]
    rows = script.measure(model, loaded_suite, photos, rules)
    by_rule = {rule: [r["sw"] for r in rows if r["rule"] == rule] for rule in rules}
    shipped = [script.psnr(model.restore(x, "sw"), clean)
               for *_, clean, x in script.suite_inputs(loaded_suite, photos, script.GROUPS)]
    assert by_rule["p_clean"] == pytest.approx(shipped, abs=1e-4)  # the shipped rule is what restore does
    assert by_rule["floor 0.1"] == by_rule["p_clean"]  # p(clean) 0.19 is above the floor: kept
    assert by_rule["floor 0.5"] == by_rule["none"]  # and below this one: dropped
    assert by_rule["none"] != by_rule["p_clean"] and not any(r["passed"] for r in rows)

    assert script.main(["--models", str(unsure_bundle), "--without", str(unsure_bundle), "--suite", str(suite),
                        "--floors", "0.5", "--no-write"]) == 0
    printed = capsys.readouterr().out
    first = next(line for line in printed.splitlines() if line.startswith("| p_clean |")).split("|")[1:-1]
    assert first[3].strip() == "+0.00" and first[4].strip() == "+0.00"  # a model against itself
    assert "| noise_s25 | +0.00 |" in printed and "with - without, floor 0.5" in printed
    assert "Command: `python benchmarks/sw_identity_share.py" in printed and str(PROJECT_ROOT) not in printed


def test_arguments_are_checked(load_script) -> None:
    script = load_script("sw_identity_share")
    with pytest.raises(SystemExit):
        script.parse_args(["--models", "a", "b", "--without", "c"])
    with pytest.raises(SystemExit):
        script.parse_args(["--models", "a", "--floors", "1.0"])
    assert script.identity_share(0.3, "floor 0.2") == 0.3 and script.identity_share(0.1, "floor 0.2") == 0.0
