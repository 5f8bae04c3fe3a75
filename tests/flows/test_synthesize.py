"""The synthesize flow against a real S3 endpoint (moto over HTTP) with a real Dask LocalCluster."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import yaml
from PIL import Image

from abair_core.config import ConfigError

SPECS = str(Path(__file__).resolve().parents[2] / "configs/degradations/train.yaml")
RECIPE = {
    "name": "s3-micro",
    "model": "tiny",
    "degradations": ["noise", "blur"],
    "data": {"source": "s3://abair-test/photos", "degradation_specs": SPECS},
    "synthesis": {"patch_size": 32, "counts": {"composite": 2, "single": 2, "sequence": 1, "clean": 1}},
}


def _png(seed: int, size: int = 72) -> bytes:
    rng = np.random.default_rng(seed)
    image = (rng.random((size, size, 3)) * 255).astype(np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory):
    """A moto S3 server on loopback with bucket ``abair-test``; yields (s3fs filesystem, pipeline YAML path)."""
    from moto.server import ThreadedMotoServer

    env = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
    patch = pytest.MonkeyPatch()
    for key, value in env.items():
        patch.setenv(key, value)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    import s3fs

    options = {"client_kwargs": {"endpoint_url": endpoint}}
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    fs.mkdir("abair-test")
    for seed in range(3):
        fs.pipe(f"abair-test/photos/photo-{seed}.png", _png(seed))
    fs.pipe("abair-test/photos/broken.png", b"\x89PNG\r\n\x1a\n not really a png")
    root = tmp_path_factory.mktemp("s3-pipeline")
    pipeline = {
        "storage": {"root": "s3://abair-test/work", "storage_options": options},
        "mlflow": {"tracking_uri": f"sqlite:///{root / 'mlflow.db'}", "artifact_location": str(root / "art")},
        "dask": {"n_workers": 1, "threads_per_worker": 1, "processes": True},
    }
    path = root / "pipeline.yaml"
    path.write_text(yaml.safe_dump(pipeline))
    yield fs, str(path)
    server.stop()
    patch.undo()


def _shards(fs) -> list[str]:
    fs.invalidate_cache()
    return sorted(fs.glob("abair-test/work/datasets/*/shards/*.safetensors"))


def test_synthesize_on_s3_is_idempotent_and_incremental(s3, prefect_harness) -> None:
    from flows.synthesize import synthesize

    fs, pipeline = s3
    first = synthesize(RECIPE, pipeline)
    assert first["shards_written"] == 3 and first["shards_existing"] == 0
    assert [s["key"] for s in first["skipped"]] == ["broken.png"]
    assert "corrupt" in first["skipped"][0]["reason"] or "not_an_image" in first["skipped"][0]["reason"]
    shards = _shards(fs)
    assert len(shards) == 3
    assert first["manifest_uri"].startswith("s3://abair-test/work/datasets/")

    from abair_core.data.dataset import read_dataset_manifest
    from abair_core.io.storage import read_parquet

    options = {"client_kwargs": {"endpoint_url": fs.client_kwargs["endpoint_url"]}}
    table, digest = read_dataset_manifest(first["manifest_uri"], options)
    assert digest == first["dataset_hash"]
    per_photo = 2 + 2 * 2 + 1 + 1
    assert table.num_rows == first["patches"] == 3 * per_photo
    row = table.slice(0, 1).to_pylist()[0]
    assert row["source_key"].startswith("photo-") and row["shard_uri"].startswith("s3://")
    assert set(table.column("kind").to_pylist()) == {"composite", "single", "sequence", "clean"}
    sources = read_parquet(first["sources_uri"], options).to_pylist()
    broken = next(r for r in sources if r["key"] == "broken.png")
    assert broken["status"] == "skipped" and broken["reason"]

    second = synthesize(RECIPE, pipeline)
    assert second["shards_written"] == 0 and second["shards_existing"] == 3
    assert second["dataset_hash"] == first["dataset_hash"]
    assert _shards(fs) == shards

    fs.pipe("abair-test/photos/photo-new.png", _png(99))
    third = synthesize(RECIPE, pipeline)
    assert third["shards_written"] == 1 and third["shards_existing"] == 3
    assert len(_shards(fs)) == 4
    assert third["dataset_hash"] != first["dataset_hash"]


def test_unknown_degradation_fails_before_any_work(s3, prefect_harness) -> None:
    from flows.synthesize import synthesize

    fs, pipeline = s3
    fs.invalidate_cache()
    before = sorted(fs.find("abair-test/work"))
    bad = {**RECIPE, "degradations": ["noise", "fog"]}
    with pytest.raises(ConfigError) as info:
        synthesize(bad, pipeline)
    message = str(info.value)
    assert "fog" in message and "valid ids" in message and "rain" in message and "low_light" in message
    fs.invalidate_cache()
    assert sorted(fs.find("abair-test/work")) == before
