"""Progress of a restoration run as chunks finish: small chunk summaries and a rate/ETA meter.

A worker hands back :func:`chunk_summary` (a few numbers, never the rows); the process that drives
the run feeds each one to a :class:`ProgressMeter`, which renders the terminal progress line and the
percentage a progress artifact shows. No I/O here: the caller decides where the line goes.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from abair_core.restore.manifest import STATUSES

__all__ = ["ProgressMeter", "chunk_summary", "crashed_chunk_summary", "format_duration"]


def chunk_summary(chunk_id: str, rows: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """What one finished chunk reports: image counts by status, restored count, megapixels, seconds."""
    rows = list(rows)
    counts = {status: sum(r.get("status") == status for r in rows) for status in STATUSES}
    ok = [r for r in rows if r.get("status") == "ok"]
    return {
        "chunk_id": chunk_id,
        "images": len(rows),
        **counts,
        "restored": sum(r.get("action") == "restored" for r in ok),
        "megapixels": sum((r.get("width") or 0) * (r.get("height") or 0) for r in ok) / 1e6,
        "seconds": float(sum(r.get("seconds") or 0.0 for r in rows)),
        "error": "",
    }


def crashed_chunk_summary(chunk_id: str, images: int, error: str) -> dict[str, Any]:
    """The summary of a chunk whose task died: every image counts as failed, ``error`` says why."""
    return {
        "chunk_id": chunk_id, "images": int(images), "ok": 0, "failed": int(images), "quarantined": 0,
        "restored": 0, "megapixels": 0.0, "seconds": 0.0, "error": str(error),
    }


def format_duration(seconds: float | None) -> str:
    """``None`` -> ``?``; 9 -> ``9s``; 185 -> ``3m05s``; 3725 -> ``1h02m``."""
    if seconds is None:
        return "?"
    seconds = max(0, round(float(seconds)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{(seconds % 3600) // 60:02d}m"


@dataclass
class ProgressMeter:
    """Counts finished images and chunks of one run and estimates the rate and the time left.

    The rate is images per second of wall time since the meter started (so it includes whatever
    overhead the run has); the ETA assumes the remaining images go at that rate.
    """

    total_images: int
    total_chunks: int
    clock: Callable[[], float] = time.monotonic
    started: float = field(default=-1.0)
    done_images: int = 0
    done_chunks: int = 0
    megapixels: float = 0.0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))

    def __post_init__(self) -> None:
        if self.started < 0:
            self.started = self.clock()

    def update(self, summary: Mapping[str, Any]) -> None:
        """Add one chunk's :func:`chunk_summary` (or :func:`crashed_chunk_summary`)."""
        self.done_chunks += 1
        self.done_images += int(summary.get("images", 0))
        self.megapixels += float(summary.get("megapixels", 0.0))
        for status in STATUSES:
            self.counts[status] += int(summary.get(status, 0))

    @property
    def elapsed(self) -> float:
        """Seconds since the meter started."""
        return max(self.clock() - self.started, 0.0)

    @property
    def percent(self) -> float:
        """Share of images done, 0-100 (100 for an empty run)."""
        if self.total_images <= 0:
            return 100.0
        return min(100.0, 100.0 * self.done_images / self.total_images)

    @property
    def images_per_second(self) -> float:
        """Images finished per second of wall time so far."""
        return self.done_images / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta_seconds(self) -> float | None:
        """Seconds left at the current rate (``None`` before the first image finished)."""
        remaining = max(self.total_images - self.done_images, 0)
        if remaining == 0:
            return 0.0
        rate = self.images_per_second
        return remaining / rate if rate > 0 else None

    def line(self) -> str:
        """One terminal line: images and chunks done, rate, statuses and ETA."""
        mp_rate = self.megapixels / self.elapsed if self.elapsed > 0 else 0.0
        statuses = ", ".join(f"{s} {self.counts[s]}" for s in STATUSES)
        return (
            f"restore {self.done_images}/{self.total_images} images ({self.percent:.0f}%), "
            f"chunks {self.done_chunks}/{self.total_chunks} | {self.images_per_second:.2f} img/s, "
            f"{mp_rate:.3f} MP/s | {statuses} | elapsed {format_duration(self.elapsed)}, "
            f"ETA {format_duration(self.eta_seconds)}"
        )
