"""Dataset planning, content-hashed shards and manifests on a local folder (real decode and synthesis)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from abair_core.config import ConfigError
from abair_core.data.dataset import (
    chunk_ranges,
    dataset_hash,
    finish_dataset,
    load_dataset_patches,
    plan_dataset,
    plan_sources,
    read_dataset_manifest,
    read_source_rows,
    shard_hash,
    synthesize_chunk,
    write_source_plan,
)
from abair_core.training.config import TrainConfig

SPECS = str(Path(__file__).resolve().parents[3] / "configs/degradations/train.yaml")


def _config(source: Path, **overrides) -> TrainConfig:
    data = {"name": "t", "degradations": ["noise", "blur"],
            "data": {"source": str(source), "degradation_specs": SPECS},
            "synthesis": {"patch_size": 24, "counts": {"composite": 1, "single": 1, "sequence": 1, "clean": 1}}}
    data.update(overrides)
    return TrainConfig.model_validate(data)


def _write_png(path: Path, seed: int) -> None:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray((rng.random((40, 50, 3)) * 255).astype(np.uint8)).save(buffer, format="PNG")
    path.write_bytes(buffer.getvalue())


def test_unknown_degradation_names_the_valid_ids(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"fog.*valid ids: .*low_light.*rain"):
        plan_dataset(_config(tmp_path, degradations=["noise", "fog"]), str(tmp_path / "work"))


def test_registered_degradation_without_a_training_range_is_refused(tmp_path: Path) -> None:
    specs = tmp_path / "specs.yaml"
    specs.write_text("degradations:\n  - {type: noise, sigma: [5, 50]}\n")
    config = _config(tmp_path, data={"source": str(tmp_path), "degradation_specs": str(specs)})
    with pytest.raises(ConfigError, match=r"no training range for degradation\(s\) \['blur'\].*noise"):
        plan_dataset(config, str(tmp_path / "work"))


def test_hashes_are_stable_and_content_sensitive(tmp_path: Path) -> None:
    a = plan_dataset(_config(tmp_path), str(tmp_path))
    b = plan_dataset(_config(tmp_path), str(tmp_path))
    c = plan_dataset(_config(tmp_path, synthesis={"patch_size": 32}), str(tmp_path))
    assert a.recipe_hash == b.recipe_hash != c.recipe_hash
    assert shard_hash("r", "k", 1, "e") == shard_hash("r", "k", 1, "e") != shard_hash("r", "k", 1, "f")
    assert dataset_hash("r", ["b", "a"]) == dataset_hash("r", ["a", "b"]) != dataset_hash("r", ["a"])
    assert chunk_ranges(5, 2) == [(0, 2), (2, 4), (4, 5)]
    with pytest.raises(ValueError):
        chunk_ranges(3, 0)


def test_plan_synthesize_finish_and_rerun(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    _write_png(photos / "a.png", 0)
    _write_png(photos / "b.png", 1)
    (photos / "bad.png").write_bytes(b"not an image at all")
    config = _config(photos)
    plan = plan_dataset(config, str(tmp_path / "work"))
    table = plan_sources(str(photos), "**/*", plan, exclude=())
    assert table.column("key").to_pylist() == ["a.png", "b.png", "bad.png"]
    uri, pending = write_source_plan(table, plan)
    assert pending == [0, 1, 2]
    rows = synthesize_chunk(read_source_rows(uri, pending), config, plan)
    assert [r["status"] for r in rows] == ["written", "written", "skipped"]
    assert rows[2]["reason"]
    summary = finish_dataset(uri, rows, plan)
    assert summary["shards_written"] == 2 and summary["skipped"][0]["key"] == "bad.png"
    per_photo = 1 + 2 * 1 + 1 + 1
    assert summary["patches"] == 2 * per_photo
    manifest, digest = read_dataset_manifest(summary["manifest_uri"])
    assert digest == summary["dataset_hash"] and manifest.num_rows == 2 * per_photo
    assert len(load_dataset_patches(summary["manifest_uri"])) == 2 * per_photo

    again = plan_sources(str(photos), "**/*", plan, exclude=())
    assert again.column("status").to_pylist() == ["existing", "existing", "pending"]
    _, pending = write_source_plan(again, plan)
    rerun = finish_dataset(write_source_plan(again, plan)[0],
                           synthesize_chunk(read_source_rows(uri, pending), config, plan), plan)
    assert rerun["dataset_hash"] == summary["dataset_hash"] and rerun["shards_written"] == 0


def test_no_usable_source_is_a_clear_error(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    (photos / "bad.png").write_bytes(b"junk")
    config = _config(photos)
    plan = plan_dataset(config, str(tmp_path / "work"))
    uri, pending = write_source_plan(plan_sources(str(photos), "**/*", plan, exclude=()), plan)
    rows = synthesize_chunk(read_source_rows(uri, pending), config, plan)
    with pytest.raises(ValueError, match="no usable source photos.*bad.png"):
        finish_dataset(uri, rows, plan)


def test_excluded_validation_photos_are_never_planned(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "val").mkdir(parents=True)
    for i, name in enumerate(["a.png", "b.png", "val/c.png"]):
        _write_png(photos / name, i)
    plan = plan_dataset(_config(photos), str(tmp_path / "work"))
    table = plan_sources(str(photos), "**/*", plan, exclude=["b.png", "val/*"])
    assert table.column("key").to_pylist() == ["a.png"]


def test_small_recipe_excludes_every_photo_of_the_small_benchmark() -> None:
    """The `small` benchmark scores listed validation photos: the `small` recipe must never train on them."""
    from abair_core.config import load_config
    from abair_core.evaluation.suite import load_suite

    root = Path(__file__).resolve().parents[3]
    recipe = load_config(root / "configs/train/small.yaml", TrainConfig)
    suite = load_suite(root / "configs/benchmark/small.yaml")
    assert suite.files and set(suite.files) <= set(recipe.data.exclude)


def test_recipe_hash_ignores_a_greyscale_share_of_zero_only(tmp_path) -> None:
    from abair_core.data.dataset import plan_dataset
    from abair_core.training.config import TrainConfig

    base = TrainConfig(name="g")
    same = base.model_copy(update={"synthesis": base.synthesis.model_copy(update={"greyscale_fraction": 0.0})})
    grey = base.model_copy(update={"synthesis": base.synthesis.model_copy(update={"greyscale_fraction": 0.2})})
    plans = [plan_dataset(c, str(tmp_path)).recipe_hash for c in (base, same, grey)]
    assert plans[0] == plans[1] != plans[2]
