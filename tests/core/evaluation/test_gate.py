"""Gate arithmetic on hand-made numbers."""

import pytest

from abair_core.evaluation import GateConfig, decide, load_gate


def scores(psnr: dict, accuracy=0.9, suite_hash="h"):
    return {"suite": "t", "suite_hash": suite_hash, "methods": ["sw"],
            "groups": {"known": [t for t in psnr if t != "jpeg_q20"], "unseen": ["jpeg_q20"]},
            "scores": {t: {"sw": {"psnr": v, "ssim": 0.5}} for t, v in psnr.items()},
            "estimator": {"accuracy": accuracy}}


CHAMPION = scores({"rain": 30.0, "noise_s25": 28.0, "jpeg_q20": 26.0})


def test_equal_scores_pass():
    decision = decide(CHAMPION, CHAMPION)
    assert decision.passed and decision.failures == [] and decision.challenger_average == pytest.approx(28.0)


def test_small_losses_within_margins_pass():
    # average drop 0.04 dB (< 0.05), worst task drop 0.12 dB (< 0.3), accuracy drop 1.9 points (< 2)
    chall = scores({"rain": 29.88, "noise_s25": 28.0, "jpeg_q20": 26.0}, accuracy=0.881)
    assert decide(chall, CHAMPION).passed


def test_one_task_down_by_more_than_the_task_margin_fails_and_is_named():
    # rain -0.4 dB, others +0.2 dB: the average rises, but one task falls by more than 0.3 dB
    chall = scores({"rain": 29.6, "noise_s25": 28.2, "jpeg_q20": 26.2})
    decision = decide(chall, CHAMPION)
    assert not decision.passed and decision.failing_tasks == ["rain"]
    assert len(decision.failures) == 1 and "rain" in decision.failures[0]


def test_average_drop_fails_without_any_task_failing():
    chall = scores({"rain": 29.9, "noise_s25": 27.9, "jpeg_q20": 25.9})  # -0.1 dB each
    decision = decide(chall, CHAMPION)
    assert not decision.passed and decision.failing_tasks == [] and "average" in decision.failures[0]


def test_accuracy_drop_beyond_two_points_fails():
    decision = decide(scores({"rain": 30.0, "noise_s25": 28.0, "jpeg_q20": 26.0}, accuracy=0.87), CHAMPION)
    assert not decision.passed and "accuracy" in decision.failures[0]


def test_groups_and_task_margins_and_suite_mismatch():
    chall = scores({"rain": 30.0, "noise_s25": 28.0, "jpeg_q20": 25.0})  # unseen -1 dB
    assert decide(chall, CHAMPION, GateConfig(groups=["known"])).passed
    assert not decide(chall, CHAMPION).passed
    strict = GateConfig(task_margins={"rain": 0.01})
    assert not decide(scores({"rain": 29.95, "noise_s25": 28.0, "jpeg_q20": 26.0}), CHAMPION, strict).passed
    with pytest.raises(ValueError, match="different suites"):
        decide(scores({"rain": 30.0}, suite_hash="other"), CHAMPION)


def test_gate_file_defaults():
    gate = load_gate("configs/promotion/gate.yaml")
    assert gate == GateConfig()


def test_non_finite_challenger_fails():
    chall = scores({"rain": float("nan"), "noise_s25": 28.0, "jpeg_q20": 26.0})
    decision = decide(chall, CHAMPION)
    assert not decision.passed and decision.failing_tasks == ["rain"]
