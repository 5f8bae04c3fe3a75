"""Run summaries, the Markdown report, report files and the failure gate."""

from __future__ import annotations

import json

import pytest

from abair_core.restore.manifest import make_row
from abair_core.restore.report import render_report_markdown, run_failed, summarize, write_report


def rows() -> list[dict]:
    probs_a = json.dumps({"clean": 0.2, "noise": 0.8})
    probs_b = json.dumps({"clean": 0.6, "noise": 0.4})
    common = {"run_id": "r7", "model_version": "12"}
    return [
        make_row("a.jpg", "ok", action="restored", probabilities=probs_a, width=1000, height=500,
                 input_bytes=100, output_bytes=120, **common),
        make_row("b.png", "ok", action="passed_through_clean", probabilities=probs_b, width=500, height=500,
                 input_bytes=50, output_bytes=50, **common),
        make_row("c.jpg", "quarantined", reason="truncated", message="truncated: image file is truncated",
                 input_bytes=10, **common),
        make_row("d|e.jpg", "failed", reason="RuntimeError", message="RuntimeError: out of memory", **common),
    ]


def test_summarize_counts_rates_and_mix():
    s = summarize(rows(), wall_seconds=2.0, skipped=5)
    assert s["run_id"] == "r7" and s["model_version"] == "12" and s["images"] == 4 and s["skipped"] == 5
    assert s["by_status"] == {"ok": 2, "failed": 1, "quarantined": 1}
    assert s["by_action"] == {"restored": 1, "passed_through_clean": 1, "low_confidence": 0}
    assert s["images_per_second"] == pytest.approx(2.0)
    assert s["megapixels"] == pytest.approx(0.75) and s["megapixels_per_second"] == pytest.approx(0.375)
    assert s["degradation_mix"] == pytest.approx({"noise": 0.6, "clean": 0.4})
    assert list(s["degradation_mix"]) == ["noise", "clean"]
    assert s["failure_rate"] == pytest.approx(0.25)  # 1 failed of 4; quarantine is not a failure
    assert s["failures"] == [{"key": "d|e.jpg", "reason": "RuntimeError", "message": "RuntimeError: out of memory"}]
    assert [q["reason"] for q in s["quarantined"]] == ["truncated"]
    assert s["input_bytes"] == 160 and s["output_bytes"] == 170
    json.dumps(s)  # serialisable as report.json


def test_empty_run_summary():
    s = summarize([], wall_seconds=0.0, skipped=9)
    assert s["images"] == 0 and s["failure_rate"] == 0.0 and s["degradation_mix"] == {}
    assert not run_failed(s, 0.05)
    assert "No image reached the estimator." in render_report_markdown(s)


def test_markdown_report_lists_counts_mix_and_failures():
    md = render_report_markdown(summarize(rows(), wall_seconds=2.0, skipped=5))
    assert md.startswith("# Restoration report: run r7")
    assert "- Model version: 12" in md and "skipped as current: 5" in md
    assert "| ok | 2 |" in md and "| quarantined | 1 |" in md and "| passed_through_clean | 1 |" in md
    assert "| noise | 0.600 |" in md and "| clean | 0.400 |" in md
    assert "## Failures (1)" in md and "| d\\|e.jpg | RuntimeError |" in md  # pipes escaped
    assert "## Quarantined (bad input) (1)" in md and "| c.jpg | truncated |" in md
    assert "25.00%" in md


def test_gate_summary_counts_vetoes_and_the_images_they_overruled():
    overruled = make_row("x.png", "ok", action="passed_through_clean",  # before the gate: noise 0.7 won
                         probabilities=json.dumps({"clean": 0.9, "noise": 0.0, "blur": 0.1}),
                         gated=json.dumps({"noise": 0.7}))
    nudged = make_row("y.png", "ok", action="restored",  # before the gate: blur 0.6 won anyway
                      probabilities=json.dumps({"clean": 0.4, "noise": 0.0, "blur": 0.6}),
                      gated=json.dumps({"noise": 0.2}))
    s = summarize([overruled, nudged, *rows()], wall_seconds=1.0)
    assert s["plausibility_gates"] == {"overruled": 1, "by_class": {"noise": 2}}
    md = render_report_markdown(s)
    assert "## Plausibility gates" in md and "was overruled: 1." in md and "| noise | 2 |" in md
    # an expert's vetoed claim went back to the classes it gated, not to clean: only the recorded top tells
    expert = make_row("z.png", "ok", action="restored", probabilities=json.dumps({"clean": 0.0, "noise": 1.0}),
                      gated=json.dumps({"jpeg": 0.6}), top_before_gates="jpeg")
    assert summarize([expert], 1.0)["plausibility_gates"] == {"overruled": 1, "by_class": {"jpeg": 1}}
    assert "## Plausibility gates" not in render_report_markdown(summarize(rows(), wall_seconds=1.0))


def test_run_failed_threshold_excludes_bad_input():
    failing = summarize(rows(), 1.0)  # 25 % failed
    assert run_failed(failing, 0.05) and not run_failed(failing, 0.25) and not run_failed(failing, 0.5)
    junk = [make_row(f"{i}.jpg", "quarantined", reason="not_an_image") for i in range(50)]
    assert not run_failed(summarize(junk, 1.0), 0.05)  # an archive of junk is not a failed run


def test_write_report_at_root_and_in_run_folder(archive):
    summary = summarize(rows(), wall_seconds=2.0)
    written = write_report(archive.dst, summary)
    assert sorted(written) == ["_abair/report.json", "_abair/report.md", "_abair/runs/r7/report.json",
                               "_abair/runs/r7/report.md"]
    assert sorted(archive.dst_all()) == sorted(written)
    assert json.loads(archive.read_dst("_abair/report.json")) == json.loads(json.dumps(summary))
    assert archive.read_dst("_abair/runs/r7/report.md").decode() == render_report_markdown(summary)
