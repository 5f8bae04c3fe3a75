"""The runner: every method scored, oracle N/A without an adapter, confusion counts, reproducibility."""

import math

import numpy as np
import pytest
import torch

from abair_core.evaluation import (
    PSNR_CAP,
    BenchmarkSuite,
    evaluate_suite,
    headline_metrics,
    metric_dict,
    save_samples,
    score_images,
)
from abair_core.metrics import psnr, ssim

SUITE = BenchmarkSuite.model_validate({
    "name": "unit", "images": None, "crop": 64, "seeds": [0],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}},
                  {"id": "blur", "degradation": {"type": "blur", "kind": "gaussian", "sigma": 1.5}}],
        "unseen": [{"id": "jpeg_q20", "degradation": {"type": "jpeg", "quality": 20}}],
        "mixed": [{"id": "blur_noise", "sequence": [{"type": "blur", "kind": "gaussian", "sigma": 1.0},
                                                    {"type": "noise", "sigma": 15}]}],
        "clean": [{"id": "clean"}],
    },
})


@pytest.fixture(scope="module")
def result(tiny_model, photos):
    return evaluate_suite(tiny_model, SUITE, photos)


def test_methods_and_na(result):
    assert result.methods == ["input", "backbone", "oh", "sw", "oracle"]
    assert set(result.scores["noise_s25"]) == {"input", "backbone", "oh", "sw", "oracle"}
    assert "oracle" not in result.scores["jpeg_q20"]  # unseen task, no jpeg adapter
    assert "oracle" in result.scores["blur_noise"]  # equal blend of blur and noise
    assert "oracle" not in result.scores["clean"]
    assert result.scores["clean"]["input"]["psnr"] == PSNR_CAP


def test_rows_average_to_scores_and_oracle_is_the_equal_blend(result, tiny_model):
    rows = [r for r in result.rows if r["task"] == "blur_noise" and r["method"] == "oracle"]
    assert len(rows) == 2
    assert result.scores["blur_noise"]["oracle"]["psnr"] == pytest.approx(np.mean([r["psnr"] for r in rows]))
    sample = result.samples["blur_noise"]
    x = torch.from_numpy(sample["input"]).permute(2, 0, 1)[None]
    expected = tiny_model.restore(x, "oracle", [0.5, 0.5])[0].permute(1, 2, 0).numpy()
    assert np.abs(sample["oracle"] - expected).max() <= 0.5 / 255 + 1e-6  # 8-bit quantised


def test_sample_scores_recompute(result):
    sample = result.samples["noise_s25"]
    first = next(r for r in result.rows if r["task"] == "noise_s25" and r["method"] == "sw")
    assert first["psnr"] == pytest.approx(psnr(sample["sw"], sample["clean"]))
    assert first["ssim"] == pytest.approx(ssim(sample["sw"], sample["clean"]))


def test_confusion_matrix_counts_known_single_tasks_only(result, tiny_model):
    assert result.confusion_labels == ["noise", "blur"]  # blur_noise (mixed) and jpeg (unseen) are not counted
    assert [sum(r) for r in result.confusion] == [2, 2]
    x = torch.from_numpy(result.samples["noise_s25"]["input"]).permute(2, 0, 1)[None]
    predicted = tiny_model.class_names[int(tiny_model.estimator.predict_proba(x)[0].argmax())]
    assert result.confusion[0][tiny_model.class_names.index(predicted)] >= 1
    hits = result.confusion[0][1] + result.confusion[1][2]
    assert result.accuracy == pytest.approx(hits / 4)


def test_reproducible_and_baselines(tiny_model, photos, result):
    again = evaluate_suite(tiny_model, SUITE, photos, baselines={"all_in_one": tiny_model.backbone},
                           keep_samples=False)
    assert again.scores["noise_s25"]["sw"] == result.scores["noise_s25"]["sw"]
    # the adapter-free backbone as a baseline equals the "backbone" method
    assert again.scores["noise_s25"]["all_in_one"]["psnr"] == pytest.approx(result.scores["noise_s25"]["backbone"]["psnr"])
    assert again.methods == ["input", "backbone", "all_in_one", "oh", "sw", "oracle"]
    with pytest.raises(ValueError, match="clash"):
        evaluate_suite(tiny_model, SUITE, photos, baselines={"sw": tiny_model.backbone})


def test_metric_keys_and_headline(result):
    scores = result.to_dict()
    metrics = metric_dict(scores)
    assert metrics["eval/unit/noise_s25/sw/psnr"] == scores["scores"]["noise_s25"]["sw"]["psnr"]
    assert "eval/unit/jpeg_q20/oracle/psnr" not in metrics
    assert all("=" not in k for k in metrics)
    assert metrics["eval/unit/avg_known/sw/psnr"] == pytest.approx(
        (scores["scores"]["noise_s25"]["sw"]["psnr"] + scores["scores"]["blur"]["sw"]["psnr"]) / 2)
    head = headline_metrics(scores)
    assert set(head) >= {"unit.sw.psnr.known", "unit.sw.psnr.all", "unit.estimator.accuracy"}
    assert all(math.isfinite(v) for v in head.values())


def test_score_images_caps_identical():
    a = np.random.default_rng(0).random((32, 32, 3)).astype(np.float32)
    assert score_images(a, a)["psnr"] == PSNR_CAP and score_images(a, a)["ssim"] == pytest.approx(1.0)


def test_save_samples(result, tmp_path):
    paths = save_samples(result, tmp_path)
    assert (tmp_path / "noise_s25" / "clean.png").is_file() and (tmp_path / "blur_noise" / "oracle.png").is_file()
    assert len(paths) == sum(len(v) for v in result.samples.values())
