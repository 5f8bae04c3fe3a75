"""Chunk summaries and the progress meter: counts, rate, ETA and the terminal line."""

from __future__ import annotations

from abair_core.restore.manifest import make_row
from abair_core.restore.progress import ProgressMeter, chunk_summary, crashed_chunk_summary, format_duration


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_chunk_summary_counts_statuses_and_megapixels():
    rows = [
        make_row("a.png", "ok", action="restored", width=1000, height=500, seconds=1.5),
        make_row("b.png", "ok", action="passed_through_clean", width=200, height=100, seconds=0.5),
        make_row("c.jpg", "quarantined", reason="truncated", seconds=0.1),
        make_row("d.jpg", "failed", reason="RuntimeError"),
    ]
    summary = chunk_summary("c00003", rows)
    assert summary == {
        "chunk_id": "c00003", "images": 4, "ok": 2, "failed": 1, "quarantined": 1, "restored": 1,
        "megapixels": 0.52, "seconds": 2.1, "error": "",
    }


def test_crashed_chunk_counts_every_image_as_failed():
    summary = crashed_chunk_summary("c00001", 3, "RuntimeError: worker lost")
    assert summary["failed"] == summary["images"] == 3 and summary["ok"] == 0
    assert summary["error"] == "RuntimeError: worker lost"


def test_format_duration():
    assert [format_duration(s) for s in (None, 0, 9.4, 185, 3725)] == ["?", "0s", "9s", "3m05s", "1h02m"]


def test_meter_rate_eta_and_line():
    clock = FakeClock()
    meter = ProgressMeter(total_images=40, total_chunks=4, clock=clock)
    assert meter.eta_seconds is None and meter.percent == 0.0
    clock.now += 5.0
    meter.update({"images": 10, "ok": 9, "quarantined": 1, "megapixels": 2.5})
    assert meter.percent == 25.0
    assert meter.images_per_second == 2.0
    assert meter.eta_seconds == 15.0
    line = meter.line()
    assert "10/40 images (25%)" in line and "chunks 1/4" in line and "2.00 img/s" in line
    assert "0.500 MP/s" in line and "ok 9, failed 0, quarantined 1" in line and "ETA 15s" in line
    clock.now += 15.0
    for _ in range(3):
        meter.update(crashed_chunk_summary("c", 10, "boom"))
    assert meter.percent == 100.0 and meter.eta_seconds == 0.0 and meter.counts["failed"] == 30


def test_empty_run_is_complete():
    meter = ProgressMeter(total_images=0, total_chunks=0)
    assert meter.percent == 100.0 and meter.eta_seconds == 0.0
