"""benchmarks/estimator_step_time.py: times both estimator stems on real batches and writes its section."""

from __future__ import annotations

from pathlib import Path


def test_both_stems_are_timed_and_the_section_written(load_script, tmp_path: Path, capsys) -> None:
    script = load_script("estimator_step_time")
    doc = tmp_path / "BENCHMARKS.md"
    assert script.main(["--steps", "1", "--repeats", "1", "--doc", str(doc)]) == 0
    out = capsys.readouterr().out
    assert "| full | " in out and "| space_to_depth | " in out
    assert "## Estimator step time" in doc.read_text()
