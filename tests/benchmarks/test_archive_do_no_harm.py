"""benchmarks/archive_do_no_harm.py: whole photos through the real ``abair restore``, scored against their references."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SUITE = {
    "name": "archive", "images": None, "max_images": 2, "crop": 48, "seeds": [0],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}}],
        "clean": [{"id": "clean"}],
        "mild": [{"id": "noise_s5", "degradation": {"type": "noise", "sigma": 5}, "label": "clean"}],
    },
}


def test_whole_photos_are_archived_restored_by_the_flow_and_scored(load_script, untrained_bundle: Path,
                                                                  suite_on_holdout, tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PREFECT_HOME", str(tmp_path / "prefect-home"))  # the flow's own process, kept out of ~
    script = load_script("archive_do_no_harm")
    suite_path = suite_on_holdout(SUITE)
    work = tmp_path / "work"
    args = script.parse_args(["--model", str(untrained_bundle), "--suite", str(suite_path), "--groups", "clean",
                              "mild", "--clean-weights", "1", "--work", str(work), "--no-write"])
    rows = script.measure(args, work)

    # whole photos (96 px, not the suite's 48 px crops), 8-bit PNGs, one per photo and task of the chosen groups
    archived = sorted(p.relative_to(work / "archive").as_posix() for p in (work / "archive").rglob("*.png"))
    assert archived == ["clean/astronaut.png", "clean/chelsea.png", "noise_s5/astronaut.png", "noise_s5/chelsea.png"]
    assert Image.open(work / "archive/clean/astronaut.png").size == (96, 96)
    assert len(rows) == 4 and all(r["status"] == "ok" and r["action"] in script.ACTIONS for r in rows)
    for r in rows:
        if r["action"] == "passed_through_clean":  # a byte-exact copy scores exactly the input's PSNR
            assert r["output"] == r["input"]
            source = np.asarray(Image.open(work / "archive" / r["key"]))
            assert np.array_equal(np.asarray(Image.open(work / "restored-w1" / r["key"])), source)
        else:
            assert np.isfinite(r["output"]) and r["output"] <= 100.0
    assert all(r["input"] == 100.0 for r in rows if r["task"] == "clean")  # the untouched photo
    assert all(30.0 < r["input"] < 38.0 for r in rows if r["task"] == "noise_s5")  # sigma 5 on 8 bits: about 34 dB

    table = script.task_table(rows).splitlines()
    assert [line.split("|")[3].strip() for line in table[2:]] == ["clean", "noise_s5"]
    assert all(line.split("|")[4].strip() == "2" for line in table[2:])
    verdicts = script.acceptance(rows, margin=0.05)
    assert len(verdicts) == 2 and verdicts[0].startswith("- clean weight 1: clean photos ")
    assert "noise_s5" in verdicts[1] and (" met:" in verdicts[1] or " not met:" in verdicts[1])


def test_acceptance_reads_the_issue_targets(load_script) -> None:
    script = load_script("archive_do_no_harm")
    rows = [{"weight": 1.0, "group": "clean", "task": "clean", "input": 100.0, "output": o, "status": "ok"}
            for o in (100.0, 36.0)]
    rows += [{"weight": 1.0, "group": "mild", "task": "blur_s05", "input": 40.0, "output": o, "status": "ok"}
             for o in (40.0, 39.0)]
    clean, blur = script.acceptance(rows, margin=0.05)
    assert "clean photos met: mean 68.00 dB" in clean and "worst 36.00 dB" in clean
    assert "blur_s05 not met: output - input -0.50 dB" in blur
    rows[1]["output"] = 34.0  # one photo under the 35 dB floor fails the clean target whatever the mean
    assert "clean photos not met" in script.acceptance(rows, margin=0.05)[0]


def test_a_known_only_run_reports_no_acceptance_heading(load_script) -> None:
    """The targets are the clean and mild rows: a known-only run's section ends with its table, not an empty list."""
    script = load_script("archive_do_no_harm")
    known = [{"weight": 1.0, "group": "known", "task": "rain", "key": f"rain/{i}.png", "input": 24.0, "output": 35.0,
              "status": "ok", "action": "restored", "top": "rain"} for i in range(2)]
    body = script.report_body(known, margin=0.05)
    assert "| 1 | known | rain | 2 | 24.00 | 35.00 | +11.00 |" in body and "Acceptance" not in body
    clean = [{**known[0], "group": "clean", "task": "clean", "input": 100.0, "output": 100.0,
              "action": "passed_through_clean", "top": "clean"}]
    assert "Acceptance (docs/DO_NO_HARM.md):\n\n- clean weight 1: clean photos met" in script.report_body(
        known + clean, margin=0.05)
