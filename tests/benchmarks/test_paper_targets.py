"""benchmarks/paper_targets.py: the acceptance checks read the right numbers from a scores.json."""

from __future__ import annotations


def _scores() -> dict:
    def m(psnr: float, worst: float | None = None) -> dict:
        return {"psnr": psnr, "ssim": 0.9, "psnr_y": psnr, "ssim_y": 0.9, **({"psnr_min": worst} if worst else {})}

    return {
        "suite": "t", "suite_hash": "h", "samples_per_task": {"rain": 2, "clean": 2, "noise_s5": 2},
        "groups": {"known": ["rain"], "clean": ["clean"], "mild": ["noise_s5"]},
        "scores": {
            "rain": {"input": m(20), "sw": m(25), "oh": m(24.9), "oracle": m(25.2), "all_in_one": m(24)},
            "clean": {"input": m(100), "sw": m(50, 36), "oh": m(45, 34)},
            "noise_s5": {"input": m(34), "sw": m(34.5), "oh": m(33)},
        },
        "estimator": {"classes": ["clean", "rain"], "labels": ["clean", "rain"], "matrix": [[3, 1], [1, 19]]},
    }


def test_known_accuracy_leaves_the_clean_row_out(load_script):
    assert load_script("paper_targets").known_accuracy(_scores()["estimator"]) == 19 / 20


def test_targets_met_and_missed(load_script):
    rows = {check: met for check, _, _, met in load_script("paper_targets").target_rows(_scores())}
    assert rows["SW vs all-in-one baseline, known average"] is True
    assert rows["oracle - SW, known average"] is True  # 0.2 dB
    assert rows["estimator accuracy, single known degradations"] is True  # 95%
    assert rows["SW clean images vs input: mean / worst"] is True
    assert rows["OH clean images vs input: mean / worst"] is False  # one image at 34 dB
    assert rows["SW mild `noise_s5` vs its input"] is True and rows["OH mild `noise_s5` vs its input"] is False
