"""benchmarks/model_comparison.py: two scores.json side by side, changes computed per task and method."""

from __future__ import annotations

import json
from pathlib import Path


def _scores(oh: float, sw: float, accuracy: float, with_new_task: bool) -> dict:
    tasks = {"rain": {"input": {"psnr": 24.0}, "oh": {"psnr": oh}, "sw": {"psnr": sw}, "oracle": {"psnr": oh + 1}}}
    groups = {"known": ["rain"]}
    if with_new_task:
        tasks["snow"] = {"input": {"psnr": 21.0}, "oh": {"psnr": 26.0}, "sw": {"psnr": 25.0}, "oracle": {"psnr": 27.0}}
        groups["unseen"] = ["snow"]
    return {"scores": tasks, "groups": groups, "estimator": {"accuracy": accuracy, "classes": ["clean", "rain"]}}


def _report(tmp_path: Path, name: str, scores: dict, clean_sw: float) -> str:
    """A report folder holding ``scores`` with a clean row of ``clean_sw`` dB."""
    scores["groups"]["clean"] = ["clean"]
    scores["scores"]["clean"] = {"sw": {"psnr": clean_sw}}
    (tmp_path / name).mkdir()
    (tmp_path / name / "scores.json").write_text(json.dumps(scores))
    return str(tmp_path / name)


def test_changes_per_task_and_a_task_only_the_second_model_has(load_script, tmp_path: Path, capsys) -> None:
    script = load_script("model_comparison")
    for name, scores in (("a", _scores(30.0, 29.0, 0.8, False)), ("b", _scores(30.5, 28.75, 0.9, True))):
        (tmp_path / name).mkdir()
        (tmp_path / name / "scores.json").write_text(json.dumps(scores))
    doc = tmp_path / "BENCH.md"
    assert script.main([str(tmp_path / "a"), str(tmp_path / "b"), "--names", "v1", "v4", "--section", "Cmp",
                        "--doc", str(doc)]) == 0
    text = doc.read_text()
    assert "| rain | known | 24.00 | 30.00 / 29.00 | 30.50 / 28.75 | 31.50 | +0.50 | -0.25 |" in text
    assert "| snow | unseen | 21.00 | N/A / N/A | 26.00 / 25.00 | 27.00 | N/A | N/A |" in text
    assert "- v4: known average OH 30.50 / SW 28.75 dB; estimator accuracy 90.0% over 2 classes." in text
    assert text.startswith("# Benchmarks") and "## Cmp" in capsys.readouterr().out + text


def test_summary_has_one_row_per_evaluation(load_script, tmp_path: Path, capsys) -> None:
    script = load_script("model_comparison")
    folders = [_report(tmp_path, name, scores, 90.0) for name, scores in
               (("a", _scores(30.0, 29.0, 0.8, True)), ("b", _scores(30.5, 28.75, 0.9, True)))]
    assert script.main([*folders, "--summary", "--names", "v1", "v2", "--section", "S", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| model | known OH / SW | clean SW | mild SW - input | snow OH | estimator |" in out
    assert "| v2 | 30.50 / 28.75 | 90.00 | N/A | 26.00 | 90.0% (2 classes) |" in out


def test_steps_give_each_known_tasks_oh_change_and_a_verdict(load_script, tmp_path: Path, capsys) -> None:
    script = load_script("model_comparison")
    folders = [_report(tmp_path, name, _scores(oh, 29.0, 0.8, True), 80.0 if name.startswith("base") else 85.0)
               for name, oh in (("base1", 30.0), ("after1", 29.9), ("base2", 30.0), ("after2", 29.5))]
    assert script.main([*folders, "--steps", "--names", "w1", "w0", "--section", "S", "--no-write"]) == 0
    out = capsys.readouterr().out
    assert "| step | rain | worst known OH | clean SW | snow OH |" in out
    assert "| w1 | -0.10 | -0.10 (within) | +5.00 | +0.00 |" in out
    assert "| w0 | -0.50 | -0.50 (over) | +5.00 | +0.00 |" in out
    try:
        script.main([*folders[:3], "--steps", "--names", "x", "--section", "S", "--no-write"])
    except SystemExit as refused:
        assert refused.code == 2  # an odd number of folders is refused by the parser
    else:
        raise AssertionError("an odd number of folders was accepted")
