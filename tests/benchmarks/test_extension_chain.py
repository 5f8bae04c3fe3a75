"""benchmarks/extension_chain.py: one summary row per add-degradation report, numbers from report.json."""

from __future__ import annotations

import json
from pathlib import Path


def _report(name: str, base: str, new: str, before: float, after: float, worst_oh: float) -> dict:
    return {
        "degradation": name, "base": {"version": base}, "new": {"version": new}, "tolerance_db": 0.2,
        "comparison": {"new_task": {"id": f"{name}_task", "methods": {
            "input": {"before": 30.0, "after": 30.0, "gain": 0.0},
            "oh": {"before": before, "after": after, "gain": after - before},
            "sw": {"before": before, "after": after + 0.1, "gain": after + 0.1 - before},
            "oracle": {"before": None, "after": after + 0.3, "gain": None}}},
            "tasks": {"rain": {"group": "known", "methods": {"oh": {"change": 0.0}, "sw": {"change": -0.1}}},
                      "clean": {"group": "clean", "methods": {"oh": {"change": worst_oh}, "sw": {"change": -0.3}}}}},
        "old_tasks_worst_change_db": {"oh": worst_oh, "sw": -0.3},
        "old_tasks_within_tolerance": {"oh": worst_oh >= -0.2, "sw": False},
        "parameters": {"trainable_share": 0.25}, "wall_seconds": 600.0, "wall_share": 0.1,
    }


def test_chain_rows_and_section(tmp_path: Path, load_script) -> None:
    module = load_script("extension_chain")
    folders = []
    for i, report in enumerate([_report("jpeg", "4", "5", 30.0, 31.0, -0.05),
                                _report("snow", "5", "6", 20.0, 24.0, -0.5)]):
        folder = tmp_path / f"r{i}"
        folder.mkdir()
        (folder / "report.json").write_text(json.dumps(report))
        folders.append(str(folder))
    doc = tmp_path / "B.md"
    doc.write_text("# Benchmarks\n")
    assert module.main([*folders, "--section", "Chain", "--doc", str(doc), "--note", "base: small"]) == 0
    text = doc.read_text()
    assert "## Chain" in text and "base: small" in text
    assert ("| `jpeg` v4 -> v5 | jpeg_task | 30.00 | 30.00 / 30.00 | 31.00 / 31.10 | 31.30 | +1.10 | "
            "+0.00 (yes) / -0.10 (yes) | -0.05 (yes) | -0.30 (no) | 25.0% | 600 (10%) |") in text
    assert "| `snow` v5 -> v6 |" in text and "-0.50 (no)" in text
