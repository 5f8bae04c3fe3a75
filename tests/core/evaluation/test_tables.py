"""Tables render one row per method with PSNR / SSIM cells, averages, N/A and the confusion matrix."""

from abair_core.evaluation import render_confusion, render_group_table, render_report

SCORES = {
    "suite": "t", "suite_hash": "abc", "methods": ["input", "sw", "oracle"],
    "method_labels": {"input": "Degraded input", "sw": "ABAIR SW", "oracle": "ABAIR oracle"},
    "groups": {"known": ["rain", "noise_s25"], "unseen": ["jpeg_q20"]},
    "scores": {
        "rain": {"input": {"psnr": 20.0, "ssim": 0.5, "psnr_y": 21.0, "ssim_y": 0.6},
                 "sw": {"psnr": 30.0, "ssim": 0.9, "psnr_y": 31.0, "ssim_y": 0.91},
                 "oracle": {"psnr": 31.0, "ssim": 0.92, "psnr_y": 32.0, "ssim_y": 0.93}},
        "noise_s25": {"input": {"psnr": 22.0, "ssim": 0.3, "psnr_y": 23.0, "ssim_y": 0.4},
                      "sw": {"psnr": 28.0, "ssim": 0.8, "psnr_y": 29.0, "ssim_y": 0.81},
                      "oracle": {"psnr": 29.0, "ssim": 0.82, "psnr_y": 30.0, "ssim_y": 0.83}},
        "jpeg_q20": {"input": {"psnr": 26.0, "ssim": 0.7, "psnr_y": 27.0, "ssim_y": 0.75},
                     "sw": {"psnr": 27.0, "ssim": 0.75, "psnr_y": 28.0, "ssim_y": 0.8}},
    },
    "estimator": {"classes": ["clean", "rain", "noise"], "labels": ["rain", "noise"],
                  "matrix": [[0, 3, 1], [1, 0, 3]], "accuracy": 0.75},
    "samples_per_task": {"rain": 4, "noise_s25": 4, "jpeg_q20": 4}, "images": ["a", "b"], "seconds": 1.0,
}


def test_known_table_rows_and_average():
    table = render_group_table(SCORES, "known").splitlines()
    assert table[0] == "| Method | rain | noise_s25 | Average |"
    assert table[2] == "| Degraded input | 20.00 / 0.500 | 22.00 / 0.300 | 21.00 / 0.400 |"
    assert table[3] == "| ABAIR SW | 30.00 / 0.900 | 28.00 / 0.800 | 29.00 / 0.850 |"
    assert table[4] == "| ABAIR oracle | 31.00 / 0.920 | 29.00 / 0.820 | 30.00 / 0.870 |"
    luma = render_group_table(SCORES, "known", luma=True).splitlines()
    assert luma[3] == "| ABAIR SW | 31.00 / 0.910 | 29.00 / 0.810 | 30.00 / 0.860 |"


def test_unseen_oracle_is_na():
    table = render_group_table(SCORES, "unseen").splitlines()
    assert table[-1] == "| ABAIR oracle | N/A | N/A |"


def test_confusion_counts_and_accuracy():
    text = render_confusion(SCORES)
    assert "| rain | 0 | 3 | 1 | 75.0% |" in text
    assert "| noise | 1 | 0 | 3 | 75.0% |" in text
    assert "**75.0%** (8 inputs)" in text


def test_report_has_every_group_and_the_note():
    report = render_report(SCORES, "model v1", note="demo-sized")
    assert "Known tasks (paper Table 1)" in report and "Unseen tasks (paper Table 4)" in report
    assert "demo-sized" in report and "hash `abc`" in report
