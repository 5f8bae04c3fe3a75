"""Planning: what is current, what is redone, what is refused, and the work manifest."""

from __future__ import annotations

import pyarrow as pa
import pytest

from abair_core.config import ConfigError, validate_config
from abair_core.io.storage import FileInfo
from abair_core.restore.manifest import RESULT_SCHEMA, make_row
from abair_core.restore.plan import (
    RestoreSettings,
    fingerprint,
    new_run_id,
    plan_from_listing,
    plan_work,
    read_work_manifest,
    settings_hash,
)

SETTINGS = RestoreSettings(chunk_size=2)
HASH = settings_hash(SETTINGS)


def info(key: str, size: int = 100, etag: str = "e1") -> FileInfo:
    return FileInfo(key=key, uri=f"memory://src/{key}", size=size, etag_or_mtime=etag)


def manifest(*rows: dict) -> pa.Table:
    return pa.Table.from_pylist(list(rows), schema=RESULT_SCHEMA)


def ok_row(key: str, fp: str = "100:e1", model: str = "1", shash: str = HASH, out: int = 50) -> dict:
    return make_row(key, "ok", action="restored", fingerprint=fp, model_version=model, settings_hash=shash,
                    output_bytes=out)


def test_settings_validate_ranges_and_unknown_keys():
    assert RestoreSettings().jpeg_quality == 95 and RestoreSettings().max_failure_rate == 0.05
    assert RestoreSettings().reprocess_on_new_model is False and RestoreSettings().chunk_size == 16
    with pytest.raises(ConfigError, match="min_confidence"):
        validate_config({"min_confidence": 1.5}, RestoreSettings)
    with pytest.raises(ConfigError, match="jpeg_qualty"):
        validate_config({"jpeg_qualty": 90}, RestoreSettings)
    with pytest.raises(ConfigError, match="chunk_size"):
        validate_config({"chunk_size": 0}, RestoreSettings)


def test_settings_hash_covers_pixel_fields_only():
    base = settings_hash(RestoreSettings())
    for change in ({"mode": "oh"}, {"tile": 256}, {"overlap": 0}, {"jpeg_quality": 90}, {"min_confidence": 0.5},
                   {"estimator_crops": 9}, {"estimator_crops": None}, {"tone_check": True}):
        assert settings_hash(RestoreSettings(**change)) != base, change
    for change in ({"chunk_size": 3}, {"max_failure_rate": 0.5}, {"include": "*.png"},
                   {"reprocess_on_new_model": True}, {"max_pixels": 10}):
        assert settings_hash(RestoreSettings(**change)) == base, change
    assert len(base) == 64


def test_later_pixel_fields_enter_the_hash_only_away_from_their_legacy_value():
    """Settings that behave as before ``clean_weight`` and ``estimator_crops`` existed keep an archive's old hash
    (nothing redone); the shipped 16 estimator crops change outputs, so an archive restored before is redone once."""
    import hashlib
    import json

    legacy = RestoreSettings(estimator_crops=None)
    before = {name: getattr(legacy, name) for name in ("mode", "tile", "overlap", "jpeg_quality", "min_confidence")}
    assert settings_hash(legacy) == hashlib.sha256(json.dumps(before, sort_keys=True).encode()).hexdigest()
    assert settings_hash(RestoreSettings(clean_weight=3.0, estimator_crops=None)) != settings_hash(legacy)
    assert settings_hash(RestoreSettings(tone_check=False, estimator_crops=None)) == settings_hash(legacy)
    assert RestoreSettings().estimator_crops == 16 and settings_hash(RestoreSettings()) != settings_hash(legacy)
    with pytest.raises(ConfigError, match="estimator_crops"):
        validate_config({"estimator_crops": 0}, RestoreSettings)
    with pytest.raises(ConfigError, match="clean_weight"):
        validate_config({"clean_weight": 0}, RestoreSettings)


def test_chunks_cover_every_new_key_once_in_order():
    listing = [info(f"img{i:02d}.png") for i in (4, 0, 3, 1, 2)]
    plan = plan_from_listing(listing, SETTINGS, "1", None, "run-a")
    assert [c.id for c in plan.chunks] == ["c00000", "c00001", "c00002"]
    assert [len(c.items) for c in plan.chunks] == [2, 2, 1]
    assert [it.key for c in plan.chunks for it in c.items] == [f"img{i:02d}.png" for i in range(5)]
    assert plan.chunks[0].items[0].fingerprint == fingerprint(100, "e1") == "100:e1"
    assert plan.num_items == 5 and plan.skipped == [] and plan.refused == []


def test_unsafe_keys_refused_and_state_folder_ignored():
    listing = [info("../up.jpg"), info("/abs.jpg"), info("a/../../b.jpg"), info("_abair/manifest.parquet"),
               info("ok.jpg")]
    plan = plan_from_listing(listing, SETTINGS, "1", None, "run-a")
    assert sorted(k for k, _ in plan.refused) == sorted(["../up.jpg", "/abs.jpg", "a/../../b.jpg"])
    assert {r for _, r in plan.refused} == {"unsafe_key"}
    assert [it.key for c in plan.chunks for it in c.items] == ["ok.jpg"]


@pytest.mark.parametrize(
    ("row", "listed", "current"),
    [
        (ok_row("a.jpg"), info("a.jpg"), True),
        (ok_row("a.jpg"), info("a.jpg", etag="e2"), False),  # new ETag / mtime
        (ok_row("a.jpg"), info("a.jpg", size=101), False),  # new size
        (ok_row("a.jpg", shash="other"), info("a.jpg"), False),  # pixel settings changed
        (ok_row("a.jpg", model="0"), info("a.jpg"), True),  # new model alone: not redone by default
        (make_row("a.jpg", "failed", fingerprint="100:e1", settings_hash=HASH), info("a.jpg"), False),
        (make_row("a.jpg", "quarantined", fingerprint="100:e1", reason="corrupt"), info("a.jpg"), True),
        (make_row("a.jpg", "quarantined", fingerprint="100:e0", reason="corrupt"), info("a.jpg"), False),
        (ok_row("b.jpg"), info("a.jpg"), False),  # no row for this key
    ],
)
def test_current_decision(row, listed, current):
    plan = plan_from_listing([listed], SETTINGS, "1", manifest(row), "run-b")
    assert (plan.skipped == ["a.jpg"]) is current
    assert (plan.num_items == 1) is (not current)


def test_reprocess_on_new_model_redoes_other_versions():
    settings = RestoreSettings(chunk_size=2, reprocess_on_new_model=True)
    table = manifest(ok_row("old.jpg", model="1"), ok_row("new.jpg", model="2"))
    plan = plan_from_listing([info("old.jpg"), info("new.jpg")], settings, "2", table, "run-c")
    assert plan.skipped == ["new.jpg"] and [it.key for it in plan.chunks[0].items] == ["old.jpg"]


def test_missing_or_resized_output_is_redone():
    table = manifest(ok_row("a.jpg", out=50), ok_row("b.jpg", out=50), ok_row("c.jpg", out=50))
    listing = [info("a.jpg"), info("b.jpg"), info("c.jpg")]
    plan = plan_from_listing(listing, SETTINGS, "1", table, "run-d", outputs={"a.jpg": 50, "c.jpg": 7})
    assert plan.skipped == ["a.jpg"]
    assert [it.key for c in plan.chunks for it in c.items] == ["b.jpg", "c.jpg"]


def test_plan_work_lists_source_and_writes_work_manifest(archive):
    plan = plan_work(archive.src, archive.dst, SETTINGS, "1", None, run_id="run-e")
    keys = sorted([*archive.good_keys, *archive.bad_keys])
    assert [it.key for c in plan.chunks for it in c.items] == keys
    assert plan.work_manifest_uri.endswith("_abair/runs/run-e/work.parquet")
    assert read_work_manifest(plan.work_manifest_uri) == plan.chunks
    assert archive.dst_all() == ["_abair/runs/run-e/work.parquet"]
    # A glob narrows the listing.
    pngs = plan_work(archive.src, archive.dst, RestoreSettings(include="**/*.png"), "1", None)
    assert sorted(it.key for c in pngs.chunks for it in c.items) == ["deep16.png", "grey.png", "rgba.png",
                                                                     "sub/cat.png"]


def test_overlapping_prefixes_refused(archive):
    for src, dst in [(archive.src, archive.src), (archive.src, archive.src + "/out"),
                     (archive.src + "/sub", archive.src)]:
        with pytest.raises(ValueError, match="overlap"):
            plan_work(src, dst, SETTINGS, "1", None)


def test_run_ids_sort_by_time_and_are_unique():
    a, b = new_run_id(), new_run_id()
    assert a != b and len(a) == len("20261124T010203Z-1a2b3c4d")
