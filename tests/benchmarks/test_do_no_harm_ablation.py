"""benchmarks/do_no_harm_ablation.py: the two variants, trained end to end (smoke size) and compared."""

from __future__ import annotations

import json

import numpy as np
import pytest
from skimage import data

from abair_core.config import PROJECT_ROOT, ConfigError, load_yaml
from abair_core.models.plausibility import PlausibilityConfig

SMALL = str(PROJECT_ROOT / "configs/train/small.yaml")


def test_without_drops_every_do_no_harm_knob_and_with_is_the_shipped_recipe(load_script, tmp_path) -> None:
    script = load_script("do_no_harm_ablation")
    with_, without = (script.variant_config(SMALL, v, tmp_path, quick=False) for v in ("with", "without"))
    assert with_.synthesis.counts.clean > 0 and with_.synthesis.counts.mild > 0
    assert with_.estimator.plausibility == PlausibilityConfig()
    assert (without.synthesis.counts.clean, without.synthesis.counts.mild) == (0, 0)
    assert without.synthesis.composite.clean_probability == 0.0
    assert without.phase2.clean_fraction == 0.0 and without.phase3.clean_fraction == 0.0
    assert without.estimator.plausibility.enabled is False
    # everything else is the same recipe: same photos, seeds and schedules
    assert with_.phase1 == without.phase1 and with_.model == without.model
    assert with_.data.source == without.data.source == tmp_path.resolve().as_uri()
    # the validation photos stay out whatever folder --photos names
    recipe = load_yaml(SMALL)["data"]["exclude"]
    assert with_.data.exclude == without.data.exclude == recipe and "gcompris-qt-data__alpaca.png" in recipe
    assert script.variant_config(SMALL, "with", tmp_path, quick=False, phase3_steps=123).phase3.steps == 123


def test_a_replicate_changes_every_seed_and_nothing_else(load_script, tmp_path) -> None:
    script = load_script("do_no_harm_ablation")
    base = script.variant_config(SMALL, "with", tmp_path, quick=False)
    replicate = script.variant_config(SMALL, "with", tmp_path, quick=False, seed=7)
    assert replicate.synthesis.seed == 7 and base.synthesis.seed != 7
    assert (replicate.phase1.seed, replicate.phase2.seed, replicate.phase3.seed) == (7, 7, 7)
    assert replicate.name == f"{base.name}-s7"
    assert replicate.model_dump(exclude={"name", "synthesis", "phase1", "phase2", "phase3"}) == \
        base.model_dump(exclude={"name", "synthesis", "phase1", "phase2", "phase3"})
    assert replicate.phase1.model_dump(exclude={"seed"}) == base.phase1.model_dump(exclude={"seed"})


def test_set_changes_the_recipe_for_both_variants_and_without_still_drops_the_knobs(load_script, tmp_path) -> None:
    script = load_script("do_no_harm_ablation")
    sets = ["phase2.steps=750", "phase2.clean_fraction=0.05", "estimator.sw_sharpness=2",
            "phase2.clean_fraction_by_type={noise: 0.0}"]
    with_, without = (script.variant_config(SMALL, v, tmp_path, quick=False, sets=sets) for v in ("with", "without"))
    assert with_.phase2.steps == without.phase2.steps == 750
    assert with_.estimator.sw_sharpness == without.estimator.sw_sharpness == 2
    # the variant's own overrides come last: `without` has no identity samples whatever --set says
    assert with_.phase2.clean_fraction == 0.05 and without.phase2.clean_fraction == 0.0
    assert with_.phase2.identity_share("noise") == 0.0 and without.phase2.clean_fraction_by_type == {}
    base = script.variant_config(SMALL, "with", tmp_path, quick=False)
    assert with_.phase1 == base.phase1 and with_.phase3 == base.phase3


def test_set_names_a_malformed_item_and_the_config_error_names_the_key(load_script, tmp_path) -> None:
    script = load_script("do_no_harm_ablation")
    assert script.recipe_changes(["phase2.steps=750", "phase2.lr=0.01", "name=x"]) == \
        {"phase2": {"steps": 750, "lr": 0.01}, "name": "x"}
    for bad in (["phase2.steps"], [".steps=3"], ["phase2=3", "phase2.steps=4"]):
        with pytest.raises(ValueError, match="--set"):
            script.recipe_changes(bad)
    with pytest.raises(ConfigError, match=r"--set phase2.stepz=3.*'phase2.stepz'.*allowed: .*steps"):
        script.variant_config(SMALL, "with", tmp_path, quick=False, sets=["phase2.stepz=3"])


def test_replicate_differences_give_mean_and_spread(load_script) -> None:
    script = load_script("do_no_harm_ablation")
    rows = [{"task": t, "group": "known", "sw_on": w, "oh_on": w, "sw_off": w, "oh_off": w}
            for t, w in (("rain", 20.0), ("haze", 10.0))]
    lower = [{**r, "sw_on": r["sw_on"] - 0.3, "oh_on": r["oh_on"] - 0.1} for r in rows]
    assert script.known_differences(lower, rows) == pytest.approx({"sw": -0.3, "oh": -0.1})
    table = script.replicate_lines([{"sw": -0.3, "oh": -0.1}, {"sw": -0.1, "oh": -0.3}], 0.2)
    assert "| mean ± sd | -0.20 ± 0.14 | -0.20 ± 0.14 |" in table
    # two replicates: t(0.975, 1) = 12.71, so the interval is -0.20 ± 1.27 and the bound is unresolved
    assert "| 95% interval over the replicates, vs -0.2 dB | [-1.47, +1.07] unresolved |" in table
    three = script.replicate_lines([{"sw": -0.9, "oh": 0.1}, {"sw": -1.0, "oh": 0.0}, {"sw": -1.1, "oh": 0.05}], 0.2)
    assert "| -1.00 ± 0.10 | +0.05 ± 0.05 |" in three
    assert "] over | [" in three and three.endswith("] within |")


def test_tasks_over_replicates_give_each_seed_and_the_interval_of_their_mean(load_script) -> None:
    script = load_script("do_no_harm_ablation")

    def rows(value: float, off: float) -> list[dict]:
        return [{"task": "haze", "group": "known", "image": "a.png", "seed": 0, "crop": c, "sw_on": value + c,
                 "oh_on": value, "sw_off": off + c, "oh_off": off} for c in (0, 1)]

    pairs = [(rows(19.0, 20.0), rows(20.0, 20.0)), (rows(18.9, 20.0), rows(20.0, 20.0)),
             (rows(19.1, 20.0), rows(20.0, 20.0))]
    table = script.task_replicate_lines(pairs, 0.2)
    # haze loses 1.0 +- 0.1 dB at each seed under both modes: over the bound over the replicates
    assert "| haze | -1.00, -1.10, -0.90 | -1.00 [-1.25, -0.75] over |" in table


def test_the_bound_verdict_reads_the_paired_interval(load_script) -> None:
    """within: the whole 95% interval above -bound; over: all of it below; else unresolved."""
    script = load_script("do_no_harm_ablation")
    assert script.bound_verdict([0.0, 0.1, -0.1, 0.05, -0.05], 0.2)[3] == "within"
    assert script.bound_verdict([-1.0, -1.1, -0.9, -1.05, -0.95], 0.2)[3] == "over"
    mean, low, high, verdict = script.bound_verdict([-3.0, 2.0, -1.0, 1.5, -0.5], 0.2)
    assert verdict == "unresolved" and low < -0.2 < high and mean == pytest.approx(-0.2)
    rows = [{"task": "haze", "group": "known", "image": "a.png", "seed": s, "crop": c, "sw_on": 20.0 + c, "oh_on": 20.0,
             "sw_off": 20.0, "oh_off": 21.0} for s in (0, 1) for c in (0, 1)]
    without = [dict(r) for r in rows]
    table = script.bound_lines(rows, without, 0.2)
    assert "| haze | 4 | -1.00 [-1.00, -1.00] | over |" in table  # OH one dB under at every input
    with pytest.raises(ValueError, match="not the same inputs"):
        script.paired_differences(rows, without[::-1], "haze", "oh")


def test_train_bundle_and_compare_end_to_end(load_script, photos_and_holdout, tmp_path, capsys) -> None:
    script = load_script("do_no_harm_ablation")
    photos, holdout = photos_and_holdout
    # a validation photo of the recipe in the folder: the recipe's data.exclude keeps it out of training
    (photos / "gcompris-qt-data__alpaca.png").write_bytes((photos / "coffee.png").read_bytes())
    out = tmp_path / "out"
    assert script.main(["train", "--photos", str(photos), "--out", str(out), "--quick", "--workers", "1",
                        "--seed", "3"]) == 0
    bundles = {}
    for variant in ("with", "without"):
        components = out / variant / "components"
        assert sorted(p.name for p in components.iterdir())[-2:] == ["backbone.safetensors", "estimator.safetensors"]
        bundles[variant] = tmp_path / f"bundle-{variant}"
        assert script.main(["bundle", "--components", str(components), "--bundle", str(bundles[variant])]) == 0
    capsys.readouterr()
    assert script.main(["compare", "--with", str(bundles["with"]), str(bundles["with"]),
                        "--without", str(bundles["without"]), str(bundles["without"]),
                        "--suite", str(PROJECT_ROOT / "configs/benchmark/demo.yaml"), "--images", holdout.as_uri(),
                        "--out", str(out), "--no-write"]) == 0
    printed = capsys.readouterr().out
    assert "| known | **average** |" in printed and "| clean | clean |" in printed and "| mild | noise_s5 |" in printed
    assert "Phase III 3 steps" in printed
    assert "2 replicate pairs" in printed
    assert "| rain |" in printed.split("Known tasks against the bound")[1]  # the per-task bound table
    replicates = printed.split("| replicate |")[1]  # one row per pair (the same pair twice here), then the spread
    assert "| 1 |" in replicates and "| 2 |" in replicates and "| mean ± sd |" in replicates and "± 0.00" in replicates
    assert "| 95% interval over the replicates, vs -0.2 dB |" in replicates
    over_seeds = printed.split("Known tasks over the replicates")[1]  # each task per pair, then over the pairs
    assert "| rain |" in over_seeds and "[95% over replicates]" in over_seeds
    summary = json.loads((out / "with" / "summary.json").read_text())
    assert summary["seed"] == 3 and summary["photos"] == photos.resolve().as_uri()
    assert summary["sources"] == 2 and "gcompris-qt-data__alpaca.png" in summary["excluded"]  # rocket, coffee
    average = next(line for line in printed.splitlines() if line.startswith("| known | **average** |"))
    float(average.split("|")[-2])  # the true-adapter (oracle) difference of the known tasks
    clean_row = next(line for line in printed.splitlines() if line.startswith("| clean | clean |"))
    assert clean_row.split("|")[-2].strip() == ""  # no adapter is true for a clean input


def test_gate_measurement_reuses_outputs_the_gates_leave_alone(load_script, tmp_path) -> None:
    """An input whose probabilities the gates leave unchanged keeps its outputs; a clean pass-through is 100 dB."""
    gate = load_script("plausibility_gate")
    from abair_core.evaluation.suite import load_suite
    from abair_core.models.estimator import EstimatorConfig
    from abair_core.models.factory import build_abair
    from abair_core.models.lora import AdapterConfig

    model = build_abair("tiny", AdapterConfig(), EstimatorConfig(), ["noise", "low_light"],
                        ["clean", "noise", "low_light"]).eval()
    suite = load_suite(PROJECT_ROOT / "configs/benchmark/demo.yaml")
    photos = {"astronaut.png": data.astronaut()[:160, :160].astype(np.float32) / 255.0}
    rows = gate.measure(model, suite, photos, ["clean", "mild"], {})
    assert {r["task"] for r in rows} == {"clean", "noise_s5", "jpeg_q75", "blur_s05", "haze_t09"}
    for row in rows:
        if not row["gated"]:
            assert (row["sw_on"], row["oh_on"]) == (row["sw_off"], row["oh_off"])
        if row["task"] == "clean" and row["top_on"] == "clean":
            assert row["sw_on"] >= 100.0
    assert model.estimator.config.plausibility == PlausibilityConfig()  # left as it was found
    assert "| clean | clean |" in gate.table(rows)
