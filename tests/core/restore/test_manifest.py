"""Run manifests, the merged current view and row helpers."""

from __future__ import annotations

import json

import pyarrow as pa
import pytest

from abair_core.restore.manifest import (
    RESULT_SCHEMA,
    latest_per_key,
    make_row,
    merge_manifests,
    probabilities_json,
    read_current_manifest,
    read_run_rows,
    refused_rows,
    run_manifest_uris,
    write_run_manifest,
)


def row(key: str, status: str = "ok", at: str = "2026-11-24T01:00:00.000000+00:00", run: str = "r1", **kw) -> dict:
    return make_row(key, status, finished_at=at, run_id=run, **kw)


def test_make_row_fills_every_column_and_checks_values():
    r = make_row("a.jpg", "ok", action="restored", width=3)
    assert set(r) == set(RESULT_SCHEMA.names)
    assert r["probabilities"] == "{}" and r["reason"] == "" and r["width"] == 3
    with pytest.raises(ValueError, match="status"):
        make_row("a.jpg", "done")
    with pytest.raises(ValueError, match="action"):
        make_row("a.jpg", "ok", action="sharpened")
    with pytest.raises(ValueError, match="unknown manifest columns"):
        make_row("a.jpg", "ok", colour="blue")


def test_probabilities_normalised_to_one_with_top_class():
    text, top = probabilities_json({"noise": 2.0, "clean": 1.0, "blur": 1.0})
    probs = json.loads(text)
    assert sum(probs.values()) == pytest.approx(1.0) and probs["noise"] == pytest.approx(0.5)
    assert top == "noise"
    assert probabilities_json({}) == ("{}", "")


def test_latest_row_per_key_wins():
    table = pa.Table.from_pylist(
        [
            row("b.jpg", "failed", at="2026-11-24T01:00:00.000000+00:00", run="r1"),
            row("a.jpg", at="2026-11-24T01:00:00.000000+00:00", run="r1"),
            row("b.jpg", at="2026-11-25T01:00:00.000000+00:00", run="r2"),
            row("a.jpg", "failed", at="2026-11-23T01:00:00.000000+00:00", run="r0"),
        ],
        schema=RESULT_SCHEMA,
    )
    merged = latest_per_key(table).to_pylist()
    assert [(r["key"], r["status"], r["run_id"]) for r in merged] == [("a.jpg", "ok", "r1"), ("b.jpg", "ok", "r2")]


def test_write_and_merge_runs_and_chunks(archive):
    assert read_current_manifest(archive.dst) is None
    assert merge_manifests(archive.dst).num_rows == 0
    write_run_manifest(archive.dst, "r1", [row("a.jpg", "failed"), row("b.jpg")])
    # A killed second run left only one chunk file behind: it still counts.
    write_run_manifest(archive.dst, "r2", [row("a.jpg", at="2026-11-25T00:00:00.000000+00:00", run="r2")],
                       chunk_id="c00000")
    assert [u.rsplit("_abair/runs/", 1)[1] for u in run_manifest_uris(archive.dst)] == [
        "r1/results.parquet", "r2/chunks/c00000.parquet"]
    merged = merge_manifests(archive.dst)
    assert [(r["key"], r["status"], r["run_id"]) for r in merged.to_pylist()] == [
        ("a.jpg", "ok", "r2"), ("b.jpg", "ok", "r1")]
    assert read_current_manifest(archive.dst).equals(merged)
    assert read_run_rows(archive.dst, "r2").num_rows == 1
    assert "_abair/manifest.parquet" in archive.dst_all()


def test_refused_rows_are_quarantine_rows():
    rows = refused_rows([("../x.jpg", "unsafe_key")], "r9", "4", "h")
    assert rows[0]["status"] == "quarantined" and rows[0]["reason"] == "unsafe_key"
    assert rows[0]["run_id"] == "r9" and rows[0]["model_version"] == "4" and "../x.jpg" in rows[0]["message"]
