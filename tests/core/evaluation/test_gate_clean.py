"""The gate refuses a challenger that harms clean images or makes mild degradations worse."""

from __future__ import annotations

import pytest

from abair_core.evaluation import GateConfig, decide, load_gate


def scores(sw: dict[str, float], inputs: dict[str, float] | None = None, suite_hash: str = "h") -> dict:
    inputs = inputs or {}
    groups = {"known": ["noise_s25"], "clean": ["clean"], "mild": ["noise_s5", "jpeg_q75"]}
    return {"suite": "t", "suite_hash": suite_hash, "methods": ["input", "sw"], "groups": groups,
            "scores": {t: {"sw": {"psnr": v, "ssim": 0.9}, **({"input": {"psnr": inputs[t], "ssim": 0.9}}
                                                                 if t in inputs else {})}
                       for t, v in sw.items()},
            "estimator": {"accuracy": 0.9}}


INPUTS = {"noise_s25": 20.2, "clean": 100.0, "noise_s5": 34.2, "jpeg_q75": 36.0}
CHAMPION = scores({"noise_s25": 28.0, "clean": 100.0, "noise_s5": 35.0, "jpeg_q75": 36.1}, INPUTS)


def test_a_challenger_that_restores_clean_images_below_the_floor_is_refused():
    # better on noise, but clean photos come back at 33 dB: refused, and clean is named
    harmful = scores({"noise_s25": 29.0, "clean": 33.0, "noise_s5": 35.0, "jpeg_q75": 36.1}, INPUTS)
    decision = decide(harmful, CHAMPION)
    assert not decision.passed and decision.failing_tasks == ["clean"]
    assert len(decision.failures) == 1 and "harms clean images" in decision.failures[0]
    assert "40.00 dB" in decision.failures[0]


def test_clean_drop_is_counted_up_to_the_ceiling_and_not_in_the_average():
    # 100 dB (untouched) -> 62 dB: both above the 50 dB ceiling, so no harm; the average over the
    # other groups is unchanged, so the 38 dB "drop" does not trip the average or per-task margins
    harmless = scores({"noise_s25": 28.0, "clean": 62.0, "noise_s5": 35.0, "jpeg_q75": 36.1}, INPUTS)
    assert decide(harmless, CHAMPION).passed
    # 100 -> 49 dB: above the floor but 1 dB below the ceiling-capped champion (allowed 0.5)
    worse = scores({"noise_s25": 28.0, "clean": 49.0, "noise_s5": 35.0, "jpeg_q75": 36.1}, INPUTS)
    decision = decide(worse, CHAMPION)
    assert not decision.passed and decision.failing_tasks == ["clean"] and "champion" in decision.failures[0]
    assert decide(worse, CHAMPION, GateConfig(max_clean_psnr_drop=1.5)).passed
    # a champion already below the floor does not lower it
    low_champion = scores({"noise_s25": 28.0, "clean": 35.0, "noise_s5": 35.0, "jpeg_q75": 36.1}, INPUTS)
    same = scores({"noise_s25": 28.0, "clean": 35.0, "noise_s5": 35.0, "jpeg_q75": 36.1}, INPUTS)
    assert not decide(same, low_champion).passed
    assert decide(same, low_champion, GateConfig(min_clean_psnr=None)).passed


def test_mild_tasks_must_not_be_worse_than_their_input():
    # jpeg_q75: 35.5 dB out of a 36.0 dB input (and 0.6 dB below the champion)
    worse = scores({"noise_s25": 28.0, "clean": 100.0, "noise_s5": 35.0, "jpeg_q75": 35.5}, INPUTS)
    decision = decide(worse, CHAMPION)
    assert not decision.passed and decision.failing_tasks == ["jpeg_q75"]
    assert any("worse than its input" in f for f in decision.failures)
    # within the champion margin but still below the input: refused by the input check alone
    champion = scores({"noise_s25": 28.0, "clean": 100.0, "noise_s5": 35.0, "jpeg_q75": 35.9}, INPUTS)
    near = scores({"noise_s25": 28.0, "clean": 100.0, "noise_s5": 35.0, "jpeg_q75": 35.8}, INPUTS)
    decision = decide(near, champion)
    assert not decision.passed and decision.failing_tasks == ["jpeg_q75"] and len(decision.failures) == 1
    assert decide(near, champion, GateConfig(no_worse_than_input=[])).passed


def test_gated_groups_select_the_do_no_harm_checks_and_missing_clean_scores_fail():
    harmful = scores({"noise_s25": 28.0, "clean": 20.0, "noise_s5": 35.0, "jpeg_q75": 36.1}, INPUTS)
    assert decide(harmful, CHAMPION, GateConfig(groups=["known", "mild"])).passed
    missing = scores({"noise_s25": 28.0, "noise_s5": 35.0, "jpeg_q75": 36.1}, INPUTS)
    decision = decide(missing, CHAMPION)
    assert not decision.passed and decision.failing_tasks == ["clean"]
    # suites without clean or mild groups are gated as before
    plain = {**CHAMPION, "groups": {"known": ["noise_s25"]}}
    assert decide(plain, plain).passed


def test_gate_file_sets_the_do_no_harm_margins():
    gate = load_gate("configs/promotion/gate.yaml")
    assert gate.min_clean_psnr == pytest.approx(40.0) and gate.clean_group == "clean"
    assert gate.no_worse_than_input == ["mild"] and gate == GateConfig()
