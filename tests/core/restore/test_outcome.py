"""Closing a run: rows for images whose chunk died, the results manifest, merge and report."""

from __future__ import annotations

import json

import numpy as np

from abair_core.restore.chunk import RestoreOutput, restore_chunk
from abair_core.restore.manifest import read_current_manifest, read_run_rows, write_run_manifest
from abair_core.restore.outcome import CHUNK_CRASHED, finish_run, unreported_rows
from abair_core.restore.plan import Chunk, RestoreSettings, WorkItem, plan_work

SETTINGS = RestoreSettings(chunk_size=3)


def invert(rgb: np.ndarray) -> RestoreOutput:
    return RestoreOutput(rgb=1.0 - rgb, probabilities={"clean": 0.2, "noise": 0.8}, action="restored")


def test_unreported_rows_only_for_missing_keys():
    chunk = Chunk("c00000", (WorkItem("a", "memory://s/a", 1, "1:x"), WorkItem("b", "memory://s/b", 2, "2:y")))
    rows = unreported_rows([chunk], ["a"], "run1", "7", SETTINGS, {"c00000": "KilledWorker: gone"})
    assert [r["key"] for r in rows] == ["b"]
    row = rows[0]
    assert row["status"] == "failed" and row["reason"] == CHUNK_CRASHED and row["message"] == "KilledWorker: gone"
    assert row["model_version"] == "7" and row["fingerprint"] == "2:y" and row["chunk_id"] == "c00000"


def test_finish_run_accounts_for_a_dead_chunk(archive):
    plan = plan_work(archive.src, archive.dst, SETTINGS, "5", None)
    finished, dead = plan.chunks[0], plan.chunks[1]
    rows = restore_chunk(finished, archive.dst, invert, SETTINGS, "5", plan.run_id)
    write_run_manifest(archive.dst, plan.run_id, rows, chunk_id=finished.id)
    restore_chunk(dead, archive.dst, invert, SETTINGS, "5", plan.run_id)  # outputs written, rows lost
    summary = finish_run(
        archive.dst, plan.run_id, SETTINGS, "5", wall_seconds=2.0, skipped=0, refused=[("../x.jpg", "unsafe_key")],
        chunk_errors={dead.id: "KilledWorker: worker died"}, details={"source": archive.src},
    )
    total = sum(len(c.items) for c in plan.chunks)
    crashed = [f for f in summary["failures"] if f["reason"] == CHUNK_CRASHED]
    assert summary["images"] == total + 1  # + the refused key's quarantine row
    assert len(crashed) == len(dead.items) + sum(len(c.items) for c in plan.chunks[2:])
    assert summary["model_version"] == "5" and summary["run_id"] == plan.run_id
    assert summary["source"] == archive.src and summary["refused"] == 1
    assert {"unsafe_key"} <= {q["reason"] for q in summary["quarantined"]}
    run_rows = read_run_rows(archive.dst, plan.run_id)
    current = read_current_manifest(archive.dst)
    assert run_rows.num_rows == current.num_rows == total + 1
    report = json.loads(archive.read_dst("_abair/report.json"))
    assert report["run_id"] == plan.run_id and report["by_status"] == summary["by_status"]
    assert archive.read_dst(f"_abair/runs/{plan.run_id}/report.md").startswith(b"# Restoration report")
    # the next run redoes exactly the images without an ok row
    again = plan_work(archive.src, archive.dst, SETTINGS, "5", current)
    redo = {item.key for chunk in again.chunks for item in chunk.items}
    assert redo == {f["key"] for f in crashed}


def test_finish_run_of_an_empty_run_still_records_the_model(archive):
    plan = plan_work(archive.src, archive.dst, RestoreSettings(include="nothing/*"), "local:abc", None)
    summary = finish_run(archive.dst, plan.run_id, SETTINGS, "local:abc", wall_seconds=0.5, skipped=4)
    assert summary["images"] == 0 and summary["skipped"] == 4 and summary["model_version"] == "local:abc"
    assert summary["failure_rate"] == 0.0
