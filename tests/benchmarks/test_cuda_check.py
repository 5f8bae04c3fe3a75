"""benchmarks/cuda_check.py: runs its checks on any device (the CPU here) and renders a saved run."""

from __future__ import annotations

import json


def test_restorer_check_agrees_with_itself_on_the_cpu(load_script) -> None:
    script = load_script("cuda_check")
    assert script.check_restorer("tiny", "cpu") == 0.0


def test_render_a_saved_run(load_script, tmp_path) -> None:
    script = load_script("cuda_check")
    row = {"fp32_rel_err": 8e-5, "bf16_rel_err": 2e-3, "merged_max_diff": 2e-4, "adapter_effect": 1e-2,
           "save_load_max_diff": 0.0, "restorer_max_diff": 1e-4, "train_step_s": 0.07,
           "restore_256_b1_fp32_s": 0.03, "restore_256_b1_bf16_s": 0.04, "restore_256_b8_fp32_s": 0.09,
           "restore_256_b8_bf16_s": 0.08}
    saved = tmp_path / "run.json"
    saved.write_text(json.dumps({"info": {"device": "GPU X", "torch": "2.x"}, "rows": {"small": row}}))
    assert script.main(["--render", str(saved)]) == 0
    table = script.render({"device": "GPU X", "torch": "2.x"}, {"small": row})
    assert "| small | 8.0e-05 | 2.0e-03 | 2.0e-04 (1.0e-02) |" in table and "| 70.0 ms |" in table
    assert table.splitlines()[2].count("|") == table.splitlines()[3].count("|")
