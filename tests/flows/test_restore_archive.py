"""restore_archive end to end: real Prefect flow runs, real S3 over HTTP (moto), a real Dask cluster.

One moto server and one threaded Dask LocalCluster serve the module (threads, so a test can inject a
fault into a chunk task of the first run). The micro-bundle is the model, by path or by registry alias.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fsspec.config
import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image
from skimage import data

import tasks.restore as restore_tasks
from abair_core.bundle import Restorer
from flows.restore_archive import RestoreRunFailed, restore_archive

BUCKET = "archive"
GOOD = {  # key -> (format, mode, displayed size)
    "photo.jpg": ("JPEG", "RGB", (80, 64)),
    "sub/cat.png": ("PNG", "RGB", (72, 64)),
    "grey.png": ("PNG", "L", (64, 56)),
    "rgba.png": ("PNG", "RGBA", (64, 48)),
    "deep16.png": ("PNG", "I;16", (60, 48)),
    "rotated.jpg": ("JPEG", "RGB", (48, 96)),
}
BAD = {"truncated.jpg": "truncated", "empty.jpg": "empty", "notes.jpg": "not_an_image"}
FAST = {"chunk_size": 2, "tile": 64, "overlap": 8}


def _encode(image: Image.Image, fmt: str, **kwargs: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def mixed_archive() -> dict[str, bytes]:
    """Six good images (JPEG, PNG, grey, RGBA, 16-bit, EXIF-rotated) and three bad objects."""
    coffee = data.coffee()[100:148, 200:264]
    alpha = np.tile(np.linspace(40, 255, 64, dtype=np.uint8), (48, 1))
    deep = (data.camera()[300:348, 100:160].astype(np.uint16) * 257).astype(np.uint16)
    exif = Image.Exif()
    exif[0x0112] = 6  # stored 96x48, displayed 48x96 after rotation
    photo = _encode(Image.fromarray(data.astronaut()[100:164, 150:230]), "JPEG", quality=90)
    return {
        "photo.jpg": photo,
        "sub/cat.png": _encode(Image.fromarray(data.chelsea()[60:124, 100:172]), "PNG"),
        "grey.png": _encode(Image.fromarray(data.camera()[200:256, 200:264]), "PNG"),
        "rgba.png": _encode(Image.fromarray(np.dstack([coffee, alpha])), "PNG"),
        "deep16.png": _encode(Image.fromarray(deep), "PNG"),
        "rotated.jpg": _encode(Image.fromarray(data.astronaut()[0:48, 0:96]), "JPEG", exif=exif),
        "truncated.jpg": photo[: len(photo) // 2],
        "empty.jpg": b"",
        "notes.jpg": b"meeting notes, not a picture\n" * 4,
    }


@pytest.fixture(scope="module")
def s3() -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1 with one bucket; yields the storage options that reach it."""
    from moto.server import ThreadedMotoServer

    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    options = {"client_kwargs": {"endpoint_url": f"http://{host}:{port}"}}
    fs = _s3fs(options)
    fs.mkdir(BUCKET)
    saved_conf = dict(fsspec.config.conf)
    yield options
    fsspec.config.conf.clear()
    fsspec.config.conf.update(saved_conf)
    server.stop()
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _s3fs(options: dict[str, Any]) -> Any:
    """An s3fs client of the test's own, without listing caches (never the flow's cached instance)."""
    import s3fs

    return s3fs.S3FileSystem(skip_instance_cache=True, use_listings_cache=False, **options)


@pytest.fixture(scope="module")
def pipeline_file(s3: dict[str, Any], mlflow_store: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A pipeline config: S3 endpoint in storage_options, the module's MLflow store, a threaded LocalCluster."""
    config = {
        "storage": {"root": f"s3://{BUCKET}/work", "storage_options": s3},
        "mlflow": mlflow_store.mlflow.model_dump(),
        "dask": {"scheduler_address": None, "n_workers": 1, "threads_per_worker": 2, "processes": False},
    }
    path = tmp_path_factory.mktemp("pipeline") / "pipeline.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


@pytest.fixture(scope="module")
def fast_config(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("restore-config") / "restore.yaml"
    path.write_text(yaml.safe_dump(FAST))
    return str(path)


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """One threaded Dask cluster for the module (an 'existing cluster by address')."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as local:
        yield local.scheduler_address


def upload(s3: dict[str, Any], prefix: str) -> dict[str, bytes]:
    files = mixed_archive()
    fs = _s3fs(s3)
    for key, payload in files.items():
        fs.pipe_file(f"{BUCKET}/{prefix}/{key}", payload)
    return files


def output_keys(s3: dict[str, Any], prefix: str) -> list[str]:
    """Every object under ``prefix`` except the pipeline's state folder (temp objects included)."""
    fs = _s3fs(s3)
    root = f"{BUCKET}/{prefix}"
    return sorted(p[len(root) + 1 :] for p in fs.find(root) if not p[len(root) + 1 :].startswith("_abair/"))


def current_rows(s3: dict[str, Any], prefix: str) -> list[dict[str, Any]]:
    fs = _s3fs(s3)
    return pq.read_table(io.BytesIO(fs.cat_file(f"{BUCKET}/{prefix}/_abair/manifest.parquet"))).to_pylist()


@pytest.fixture
def counted_restorer(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, ...]]:
    """Shapes of the images the real restorer was called on in this test (model work)."""
    calls: list[tuple[int, ...]] = []
    original = Restorer.__call__

    def counting(self: Restorer, rgb: np.ndarray) -> Any:
        calls.append(tuple(rgb.shape))
        return original(self, rgb)

    monkeypatch.setattr(Restorer, "__call__", counting)
    return calls


def test_mixed_archive_on_s3_then_a_rerun_does_no_model_work(
    prefect_harness: None, s3, pipeline_file, fast_config, cluster, micro_bundle_dir: Path, counted_restorer
):
    upload(s3, "mixed/src")
    src, dst = f"s3://{BUCKET}/mixed/src", f"s3://{BUCKET}/mixed/dst"
    summary = restore_archive(src, dst, model=str(micro_bundle_dir), mode="noise", pipeline=pipeline_file,
                              restore_config=fast_config, dask_address=cluster)
    assert summary["by_status"] == {"ok": 6, "failed": 0, "quarantined": 3}
    assert summary["by_action"]["restored"] == 6 and summary["images"] == 9 and summary["skipped"] == 0
    assert summary["model_version"].startswith("local:") and summary["failure_rate"] == 0.0
    assert {q["key"]: q["reason"] for q in summary["quarantined"]} == BAD
    assert len(counted_restorer) == 6
    fs = _s3fs(s3)
    sources = mixed_archive()
    assert output_keys(s3, "mixed/dst") == sorted(GOOD)
    for key, (fmt, mode, size) in GOOD.items():
        out = Image.open(io.BytesIO(fs.cat_file(f"{BUCKET}/mixed/dst/{key}")))
        assert (out.format, out.mode, out.size) == (fmt, mode, size), key
        assert out.getexif().get(0x0112, 1) == 1, key  # orientation applied, tag reset
        assert fs.cat_file(f"{BUCKET}/mixed/dst/{key}") != sources[key]
    rows = {r["key"]: r for r in current_rows(s3, "mixed/dst")}
    assert set(rows) == set(GOOD) | set(BAD)
    assert {r["model_version"] for r in rows.values()} == {summary["model_version"]}
    assert all(rows[k]["status"] == "quarantined" and rows[k]["reason"] == reason for k, reason in BAD.items())
    assert all(set(json.loads(rows[k]["probabilities"])) == {"clean", "noise", "blur"} for k in GOOD)
    report = json.loads(fs.cat_file(f"{BUCKET}/mixed/dst/_abair/report.json"))
    assert report["run_id"] == summary["run_id"] and report["model_version"] == summary["model_version"]
    assert b"## Quarantined (bad input) (3)" in fs.cat_file(f"{BUCKET}/mixed/dst/_abair/report.md")
    assert set(summary["degradation_mix"]) == {"clean", "noise", "blur"}
    _assert_artifacts(summary["run_id"])

    loads = dict(restore_tasks.MODEL_LOADS)
    again = restore_archive(src, dst, model=str(micro_bundle_dir), mode="noise", pipeline=pipeline_file,
                            restore_config=fast_config, dask_address=cluster)
    assert again["images"] == 0 and again["skipped"] == 9 and again["model_version"] == summary["model_version"]
    assert len(counted_restorer) == 6 and dict(restore_tasks.MODEL_LOADS) == loads  # no model work at all
    assert output_keys(s3, "mixed/dst") == sorted(GOOD)


def _assert_artifacts(run_id: str) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    keys = ["abair-restore-report", "abair-restore-problems", "abair-restore-progress"]
    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=keys)))
    by_key: dict[str, list[Any]] = {}
    for artifact in found:
        by_key.setdefault(artifact.key, []).append(artifact)
    assert set(by_key) == set(keys)
    assert any(run_id in str(a.data) for a in by_key["abair-restore-report"])
    assert any(float(a.data) == 100.0 for a in by_key["abair-restore-progress"])


def test_killed_run_then_rerun_gives_one_output_per_good_image(
    prefect_harness: None, s3, pipeline_file, fast_config, cluster, micro_bundle_dir: Path, counted_restorer,
    monkeypatch: pytest.MonkeyPatch,
):
    upload(s3, "kill/src")
    src, dst = f"s3://{BUCKET}/kill/src", f"s3://{BUCKET}/kill/dst"
    # Chunk c00002 (photo.jpg, rgba.png) dies after writing its outputs, before its rows are saved.
    real_write = restore_tasks.write_run_manifest

    def dying_write(dst_uri: str, run_id: str, rows: Any, chunk_id: str | None = None) -> str:
        if chunk_id == "c00002":
            raise RuntimeError("worker killed")
        return real_write(dst_uri, run_id, rows, chunk_id=chunk_id)

    monkeypatch.setattr(restore_tasks, "write_run_manifest", dying_write)
    with pytest.raises(RestoreRunFailed, match="22.2% of 9 images failed"):
        restore_archive(src, dst, model=str(micro_bundle_dir), mode="noise", pipeline=pipeline_file,
                        restore_config=fast_config, dask_address=cluster)
    monkeypatch.setattr(restore_tasks, "write_run_manifest", real_write)
    assert output_keys(s3, "kill/dst") == sorted(GOOD)  # the dead chunk's outputs are there
    rows = {r["key"]: r for r in current_rows(s3, "kill/dst")}
    assert {k for k, r in rows.items() if r["status"] == "failed"} == {"photo.jpg", "rgba.png"}
    assert rows["photo.jpg"]["reason"] == "chunk_crashed" and "worker killed" in rows["photo.jpg"]["message"]
    # As if the process had died too: only the chunk files of the run survive.
    fs = _s3fs(s3)
    for name in fs.find(f"{BUCKET}/kill/dst/_abair"):
        if "/chunks/" not in name and not name.endswith("work.parquet"):
            fs.rm(name)
    calls_before = len(counted_restorer)

    summary = restore_archive(src, dst, model=str(micro_bundle_dir), mode="noise", pipeline=pipeline_file,
                              restore_config=fast_config, dask_address=cluster)
    assert summary["images"] == 2 and summary["skipped"] == 7 and summary["by_status"]["ok"] == 2
    assert sorted(counted_restorer[calls_before:]) == [(48, 64, 3), (64, 80, 3)]  # only the lost chunk
    assert output_keys(s3, "kill/dst") == sorted(GOOD)  # exactly one output per good image, no temp objects
    final = current_rows(s3, "kill/dst")
    assert sorted(r["key"] for r in final) == sorted(set(GOOD) | set(BAD))  # one current row per key
    assert {r["key"] for r in final if r["status"] == "ok"} == set(GOOD)


def test_model_by_registry_alias_records_the_concrete_version(
    prefect_harness: None, s3, pipeline_file, micro_bundle_dir: Path, tmp_path: Path, fast_config
):
    from tasks.registry import register_bundle

    pins = {"backbone": "1", "estimator": "1", "adapter.noise": "1", "adapter.blur": "1"}
    ref = register_bundle(micro_bundle_dir, pins)
    src = tmp_path / "src"
    src.mkdir()
    for key in ("photo.jpg", "grey.png", "empty.jpg"):
        (src / key).write_bytes(mixed_archive()[key])
    # local folders, the pipeline's own (threaded) LocalCluster, blind "sw" mode
    summary = restore_archive(str(src), str(tmp_path / "dst"), model="models:/abair@champion",
                              pipeline=pipeline_file, restore_config=fast_config)
    assert summary["model_version"] == ref.version and summary["model_uri"] == f"models:/abair/{ref.version}"
    rows = pq.read_table(tmp_path / "dst" / "_abair" / "manifest.parquet").to_pylist()
    assert {r["model_version"] for r in rows} == {ref.version}
    assert {r["key"]: r["status"] for r in rows} == {"photo.jpg": "ok", "grey.png": "ok", "empty.jpg": "quarantined"}
    assert {r["action"] for r in rows if r["status"] == "ok"} <= {"restored", "passed_through_clean"}


def test_overlapping_prefixes_are_refused(prefect_harness: None, tmp_path: Path, micro_bundle_dir: Path,
                                          pipeline_file):
    (tmp_path / "a").mkdir()
    with pytest.raises(ValueError, match="overlap"):
        restore_archive(str(tmp_path / "a"), str(tmp_path / "a" / "out"), model=str(micro_bundle_dir),
                        pipeline=pipeline_file)


def test_deployments_name_existing_flows_with_a_nightly_non_overlapping_restore():
    from prefect.cli.deploy._models import PrefectYamlModel

    root = Path(__file__).resolve().parents[2]
    spec = PrefectYamlModel.model_validate(yaml.safe_load((root / "infra" / "prefect.yaml").read_text()))
    by_name = {d.name: d for d in spec.deployments}
    nightly = by_name["nightly-restore"]
    # module paths, not file paths: a real Dask scheduler must unpickle the task graph by module name
    assert nightly.entrypoint == "flows.restore_archive:restore_archive"
    assert nightly.concurrency_limit.limit == 1 and nightly.concurrency_limit.collision_strategy == "CANCEL_NEW"
    assert nightly.schedules and nightly.schedules[0].cron
    assert {"src", "dst", "model"} <= set(nightly.parameters)
    assert nightly.parameters["model"] == "models:/abair@champion"
    for deployment in spec.deployments:  # every entrypoint is a function defined in an existing flow module
        module, name = deployment.entrypoint.split(":")
        path = root / (module.replace(".", "/") + ".py")
        assert f"def {name}(" in path.read_text(), deployment.entrypoint
