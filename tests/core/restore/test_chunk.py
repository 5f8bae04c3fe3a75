"""restore_chunk on a mixed archive: formats kept, bad input quarantined, kills resumable, retries."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from PIL import Image, ImageOps

from abair_core.restore.chunk import RestoreOutput, call_with_retries, restore_chunk
from abair_core.restore.manifest import merge_manifests, read_current_manifest, write_run_manifest
from abair_core.restore.plan import Chunk, RestoreSettings, WorkItem, plan_work, settings_hash
from abair_core.restore.report import run_failed, summarize

SETTINGS = RestoreSettings(chunk_size=4)
PROBS = {"clean": 0.1, "noise": 0.6, "blur": 0.3}


def invert_restorer(rgb: np.ndarray) -> RestoreOutput:
    """A stand-in for the model: inverts the image and reports fixed probabilities."""
    return RestoreOutput(rgb=1.0 - rgb, probabilities=dict(PROBS), action="restored")


@dataclass
class CountingRestorer:
    """Counts calls (model work) and optionally dies like a killed worker after ``die_after`` images."""

    inner: Callable[[np.ndarray], RestoreOutput] = invert_restorer
    die_after: int | None = None
    calls: int = 0

    def __call__(self, rgb: np.ndarray) -> RestoreOutput:
        if self.die_after is not None and self.calls >= self.die_after:
            raise KeyboardInterrupt("worker killed")
        self.calls += 1
        return self.inner(rgb)




def run_all(archive, restorer, settings=SETTINGS, model_version="3", run_id=None):
    """Plan, restore every chunk, persist and merge: the whole nightly job without orchestration.

    The run starts by merging every run manifest, so chunks a killed run finished count as done.
    """
    current = merge_manifests(archive.dst)
    plan = plan_work(archive.src, archive.dst, settings, model_version, current, run_id=run_id)
    rows = []
    for chunk in plan.chunks:
        chunk_rows = restore_chunk(chunk, archive.dst, restorer, settings, model_version, plan.run_id)
        write_run_manifest(archive.dst, plan.run_id, chunk_rows, chunk_id=chunk.id)
        rows += chunk_rows
    write_run_manifest(archive.dst, plan.run_id, rows)
    merge_manifests(archive.dst)
    return plan, rows


def _open(payload: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(payload))
    image.load()
    return image


def test_mixed_archive_restored_in_own_format_and_bad_input_quarantined(archive):
    restorer = CountingRestorer()
    plan, rows = run_all(archive, restorer)
    by_key = {r["key"]: r for r in rows}
    assert sorted(by_key) == sorted([*archive.good_keys, *archive.bad_keys])
    assert restorer.calls == len(archive.good_keys)
    for key in archive.good_keys:
        row = by_key[key]
        assert (row["status"], row["action"], row["reason"]) == ("ok", "restored", ""), row
        assert row["model_version"] == "3" and row["run_id"] == plan.run_id
        assert row["settings_hash"] == settings_hash(SETTINGS)
        assert json.loads(row["probabilities"]) == pytest.approx(PROBS)
        assert row["top_class"] == "noise"
        assert row["input_bytes"] == len(archive.files[key]) and row["output_bytes"] > 0
        assert row["seconds"] >= 0 and row["finished_at"]
    for key, reason in archive.bad_keys.items():
        row = by_key[key]
        assert (row["status"], row["action"], row["reason"]) == ("quarantined", "none", reason), row
        assert reason in row["message"]
    summary = summarize(rows, wall_seconds=1.0)
    assert summary["by_status"] == {"ok": 6, "failed": 0, "quarantined": 3} and not run_failed(summary, 0.05)
    assert summary["degradation_mix"] == pytest.approx(PROBS)
    # Exactly one output per good image, nothing for bad input, no temp files visible.
    assert archive.dst_keys() == sorted(archive.good_keys)
    assert all(k.endswith(".parquet") for k in archive.dst_all() if k.startswith("_abair/"))
    # Originals untouched.
    for key, payload in archive.files.items():
        assert archive.fs.cat_file(f"{archive.fs._strip_protocol(archive.src)}/{key}") == payload


def test_outputs_keep_format_mode_depth_and_orientation(archive):
    run_all(archive, CountingRestorer())
    src = {k: _open(archive.files[k]) for k in archive.good_keys}
    out = {k: _open(archive.read_dst(k)) for k in archive.good_keys}
    expected_modes = {"photo.jpg": "RGB", "sub/cat.png": "RGB", "grey.png": "L", "rgba.png": "RGBA",
                      "deep16.png": "I;16", "rotated.jpg": "RGB"}
    for key in archive.good_keys:
        assert out[key].format == src[key].format, key
        assert out[key].mode == expected_modes[key], key
    # EXIF-rotated: output is upright (display size) and says so.
    assert src["rotated.jpg"].size == (96, 48) and out["rotated.jpg"].size == (48, 96)
    assert out["rotated.jpg"].getexif().get(0x0112, 1) == 1
    # Pixels really went through the restorer (inversion), in each bit depth; alpha kept.
    upright = np.asarray(ImageOps.exif_transpose(src["rotated.jpg"]), dtype=np.float32) / 255
    got = np.asarray(out["rotated.jpg"], dtype=np.float32) / 255
    assert np.abs(got - (1 - upright)).mean() < 0.03
    grey_in = np.asarray(src["grey.png"], dtype=np.float32) / 255
    assert np.abs(np.asarray(out["grey.png"], dtype=np.float32) / 255 - (1 - grey_in)).max() < 1.5 / 255
    deep_in = np.asarray(src["deep16.png"], dtype=np.int64)
    assert len(np.unique(deep_in % 257)) > 100  # genuinely 16-bit input
    assert np.abs(np.asarray(out["deep16.png"], dtype=np.int64) - (65535 - deep_in)).max() <= 1
    np.testing.assert_array_equal(np.asarray(out["rgba.png"])[..., 3], np.asarray(src["rgba.png"])[..., 3])


def test_rerun_skips_everything_and_changed_source_is_replanned(archive):
    run_all(archive, CountingRestorer())
    again = CountingRestorer()
    plan, rows = run_all(archive, again)
    assert plan.chunks == [] and rows == [] and again.calls == 0
    assert sorted(plan.skipped) == sorted([*archive.good_keys, *archive.bad_keys])
    # New bytes for one source (and a fixed version of a bad one): only those are redone.
    new_cat = Image.fromarray(np.full((40, 30, 3), 90, dtype=np.uint8))
    buf = io.BytesIO()
    new_cat.save(buf, format="PNG")
    archive.put("sub/cat.png", buf.getvalue())
    archive.put("empty.jpg", archive.files["photo.jpg"])
    third = CountingRestorer()
    plan, rows = run_all(archive, third)
    assert sorted(r["key"] for r in rows) == ["empty.jpg", "sub/cat.png"]
    assert third.calls == 2 and all(r["status"] == "ok" for r in rows)
    assert _open(archive.read_dst("sub/cat.png")).size == (30, 40)
    current = {r["key"]: r for r in read_current_manifest(archive.dst).to_pylist()}
    assert current["empty.jpg"]["status"] == "ok" and len(current) == len(archive.good_keys) + len(archive.bad_keys)


def test_killed_mid_chunk_then_rerun_gives_one_output_per_good_image(archive):
    settings = RestoreSettings(chunk_size=3)
    plan = plan_work(archive.src, archive.dst, settings, "3", None)
    # Sorted keys: chunk 0 = deep16, empty, grey; 1 = notes, photo, rgba; 2 = rotated, sub/cat, truncated.
    killer = CountingRestorer(die_after=3)  # dies on rgba.png, after photo.jpg was written in chunk 1
    done = []
    with pytest.raises(KeyboardInterrupt):
        for chunk in plan.chunks:
            rows = restore_chunk(chunk, archive.dst, killer, settings, "3", plan.run_id)
            write_run_manifest(archive.dst, plan.run_id, rows, chunk_id=chunk.id)
            done += rows
    assert sorted(r["key"] for r in done) == ["deep16.png", "empty.jpg", "grey.png"]
    assert archive.dst_keys() == ["deep16.png", "grey.png", "photo.jpg"]  # photo.jpg has no row yet
    resumed = CountingRestorer()
    _, rows2 = run_all(archive, resumed, settings=settings)
    assert sorted(r["key"] for r in rows2) == [
        "notes.jpg", "photo.jpg", "rgba.png", "rotated.jpg", "sub/cat.png", "truncated.jpg"]
    assert resumed.calls == 4
    assert archive.dst_keys() == sorted(archive.good_keys)
    current = read_current_manifest(archive.dst).to_pylist()
    assert sorted(r["key"] for r in current) == sorted([*archive.good_keys, *archive.bad_keys])
    assert {r["status"] for r in current if r["key"] in archive.good_keys} == {"ok"}
    assert not [k for k in archive.dst_all() if ".tmp-" in k]


def test_pass_through_and_low_confidence_copy_source_bytes_exactly(archive):
    clean = CountingRestorer(inner=lambda rgb: RestoreOutput(rgb * 0.5, {"clean": 0.9, "noise": 0.1},
                                                             "passed_through_clean"))
    plan, rows = run_all(archive, clean)
    for key in archive.good_keys:
        assert archive.read_dst(key) == archive.files[key]
    assert {r["action"] for r in rows if r["status"] == "ok"} == {"passed_through_clean"}
    # min_confidence demotes an unsure "restored" to a byte-exact low_confidence copy.
    photo = next(item for chunk in plan.chunks for item in chunk.items if item.key == "photo.jpg")
    for bar, action in ((0.7, "low_confidence"), (0.5, "restored")):  # the top probability is 0.6
        out = f"{archive.dst}/bar{bar}"
        rows = restore_chunk(Chunk("c-low", (photo,)), out, invert_restorer, RestoreSettings(min_confidence=bar),
                             "3", "r-low")
        assert (rows[0]["status"], rows[0]["action"]) == ("ok", action)
        assert (archive.read_dst(f"bar{bar}/photo.jpg") == archive.files["photo.jpg"]) is (action != "restored")


def test_one_failing_image_does_not_stop_the_chunk(archive):
    def picky(rgb: np.ndarray) -> RestoreOutput:
        if rgb.shape[0] == 56:  # the grey camera crop
            raise RuntimeError("model exploded")
        return invert_restorer(rgb)

    _, rows = run_all(archive, picky)
    by_key = {r["key"]: r for r in rows}
    assert by_key["grey.png"]["status"] == "failed"
    assert by_key["grey.png"]["reason"] == "RuntimeError" and "model exploded" in by_key["grey.png"]["message"]
    assert sum(r["status"] == "ok" for r in rows) == len(archive.good_keys) - 1
    # A failed image is redone on the next run, and only it.
    again = CountingRestorer()
    _, rows2 = run_all(archive, again)
    assert [r["key"] for r in rows2] == ["grey.png"] and rows2[0]["status"] == "ok"


def test_wrong_shape_or_action_from_restorer_fails_that_image(archive):
    run_all(archive, CountingRestorer(inner=lambda rgb: RestoreOutput(rgb[:-1], dict(PROBS))),
                      run_id="bad-shape")
    rows = [r for r in read_current_manifest(archive.dst).to_pylist() if r["key"] in archive.good_keys]
    assert {r["status"] for r in rows} == {"failed"} and "shape" in rows[0]["message"]
    _, rows = run_all(archive, lambda rgb: RestoreOutput(rgb, {}, "sharpened"))
    assert {r["status"] for r in rows if r["key"] in archive.good_keys} == {"failed"}


def test_source_inside_destination_is_refused(archive):
    item = WorkItem(key="photo.jpg", uri=f"{archive.dst}/photo.jpg", size=1, fingerprint="1:x")
    with pytest.raises(ValueError, match="inside destination"):
        restore_chunk(Chunk("c0", (item,)), archive.dst, invert_restorer, SETTINGS, "3", "r")


def test_unsafe_key_in_a_chunk_is_quarantined_not_written(archive):
    item = WorkItem(key="../escape.jpg", uri=f"{archive.src}/photo.jpg", size=1, fingerprint="1:x")
    rows = restore_chunk(Chunk("c0", (item,)), archive.dst, invert_restorer, SETTINGS, "3", "r")
    assert (rows[0]["status"], rows[0]["reason"]) == ("quarantined", "unsafe_key")
    assert archive.dst_all() == []


def test_missing_source_fails_without_retrying(archive):
    item = WorkItem(key="gone.jpg", uri=f"{archive.src}/gone.jpg", size=1, fingerprint="1:x")
    waits: list[float] = []
    rows = restore_chunk(Chunk("c0", (item,)), archive.dst, invert_restorer, SETTINGS, "3", "r", sleep=waits.append)
    assert rows[0]["status"] == "failed" and rows[0]["reason"] == "FileNotFoundError" and waits == []


def test_call_with_retries_backs_off_on_transient_errors_only():
    waits: list[float] = []
    attempts = {"n": 0}

    def flaky(x: int) -> int:
        attempts["n"] += 1
        if attempts["n"] < 3:
            raise ConnectionError("reset by peer")
        return x * 2

    assert call_with_retries(flaky, 21, sleep=waits.append) == 42
    assert waits == [0.2, 0.4]

    def always_down() -> None:
        raise TimeoutError("slow store")

    waits.clear()
    with pytest.raises(TimeoutError):
        call_with_retries(always_down, sleep=waits.append)
    assert waits == [0.2, 0.4]

    def bad() -> None:
        raise ValueError("not transient")

    waits.clear()
    with pytest.raises(ValueError):
        call_with_retries(bad, sleep=waits.append)
    assert waits == []
