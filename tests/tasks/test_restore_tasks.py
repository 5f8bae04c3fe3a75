"""The restore tasks through ``.fn``: settings, storage options, retry condition, the per-process model
cache, and plan -> chunk -> finish on a small local archive with a real (untrained) tiny bundle."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import fsspec.config
import numpy as np
import pytest
from PIL import Image
from prefect.states import Failed
from skimage import data

from abair_core.config import ConfigError
from abair_core.io.errors import CorruptImageError
from abair_core.restore.manifest import read_current_manifest, read_run_rows
from abair_core.restore.plan import RestoreSettings, read_work_manifest
from tasks.restore import (
    DEFAULT_RESTORE_CONFIG,
    MODEL_LOADS,
    apply_storage_options,
    cached_restorer,
    finish_run_task,
    is_transient_storage_error,
    load_restore_settings,
    plan_work_task,
    resolve_model_task,
    restore_chunk_task,
)


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny ABAIR bundle (adapters noise and blur), saved as a bundle directory."""
    import torch

    from abair_core.bundle import save_bundle
    from abair_core.config import load_config
    from abair_core.models.estimator import EstimatorConfig
    from abair_core.models.factory import build_abair
    from abair_core.models.lora import AdapterConfig

    torch.manual_seed(0)
    model = build_abair("tiny", load_config("configs/adapters/default.yaml", AdapterConfig),
                        load_config("configs/estimator/default.yaml", EstimatorConfig),
                        ["noise", "blur"], ["clean", "noise", "blur"])
    directory = tmp_path_factory.mktemp("tiny-bundle") / "bundle"
    save_bundle(model, directory)
    return directory


@pytest.fixture
def archive(tmp_path: Path) -> tuple[str, str]:
    """Three small photos (one in a sub-folder) and one text file posing as a JPEG."""
    src = tmp_path / "src"
    (src / "sub").mkdir(parents=True)
    photo = data.astronaut()
    for index, name in enumerate(("a.png", "b.png", "sub/c.png")):
        Image.fromarray(photo[index * 40 : index * 40 + 40, 100:148]).save(src / name)
    (src / "notes.jpg").write_bytes(b"not a picture\n")
    return str(src), str(tmp_path / "dst")


def test_settings_default_file_and_overrides(tmp_path: Path):
    assert load_restore_settings() == RestoreSettings()  # the YAML states the defaults
    assert DEFAULT_RESTORE_CONFIG.is_file()
    custom = tmp_path / "r.yaml"
    custom.write_text("chunk_size: 2\nmode: oh\nmin_confidence: 0.3\n")
    settings = load_restore_settings(custom, mode="blur", include="*.png", min_confidence=None)
    assert (settings.chunk_size, settings.mode, settings.include, settings.min_confidence) == (2, "blur", "*.png", 0.3)
    custom.write_text("chunk_sise: 2\n")
    with pytest.raises(ConfigError, match="chunk_sise"):
        load_restore_settings(custom)
    with pytest.raises(ValueError):
        load_restore_settings(None, min_confidence=1.5)


def test_storage_options_become_fsspec_defaults_for_remote_protocols(monkeypatch):
    monkeypatch.setattr(fsspec.config, "conf", {})
    apply_storage_options({"endpoint_url": "http://127.0.0.1:9"}, "s3://b/src", "/local/dst", "file:///x")
    assert fsspec.config.conf == {"s3": {"endpoint_url": "http://127.0.0.1:9"}}
    apply_storage_options({}, "gs://b/x")
    assert "gs" not in fsspec.config.conf


@pytest.mark.parametrize(
    ("exc", "retry"),
    [(ConnectionError("reset"), True), (TimeoutError("slow"), True), (OSError("503 slow down"), True),
     (FileNotFoundError("gone"), False), (PermissionError("denied"), False), (ValueError("bad config"), False),
     (CorruptImageError("truncated", "truncated"), False), (RuntimeError("bug"), False)],
)
def test_retry_only_transient_storage_errors(exc: BaseException, retry: bool):
    assert is_transient_storage_error(None, None, Failed(data=exc)) is retry


def test_resolve_local_bundle(tiny_bundle: Path):
    resolved = resolve_model_task.fn(str(tiny_bundle), None)
    assert resolved["version"].startswith("local:") and resolved["bundle_dir"] == str(tiny_bundle.resolve())


def test_model_loads_once_per_thread_and_settings(tiny_bundle: Path):
    model = resolve_model_task.fn(str(tiny_bundle), None)
    settings = RestoreSettings(mode="noise", tile=64, overlap=8)
    before = MODEL_LOADS[model["bundle_dir"]]
    first = cached_restorer(model, settings)
    assert cached_restorer(model, settings) is first
    assert cached_restorer(model, RestoreSettings(mode="noise", tile=64, overlap=8, chunk_size=3)) is first
    assert MODEL_LOADS[model["bundle_dir"]] == before + 1
    assert cached_restorer(model, RestoreSettings(mode="blur", tile=64, overlap=8)) is not first
    other: list = []
    thread = threading.Thread(target=lambda: other.append(cached_restorer(model, settings)))
    thread.start()
    thread.join()
    assert other[0] is not first  # a Restorer folds weights per image: never shared between threads
    assert MODEL_LOADS[model["bundle_dir"]] == before + 3


def test_plan_restore_finish_on_a_local_folder(tiny_bundle: Path, archive: tuple[str, str]):
    src, dst = archive
    model = resolve_model_task.fn(str(tiny_bundle), None)
    settings = RestoreSettings(chunk_size=3, mode="noise", tile=64, overlap=8)
    plan = plan_work_task.fn(src, dst, settings, model["version"], {})
    assert (plan["images"], plan["chunks"], plan["skipped"], plan["refused"]) == (4, 2, 0, [])
    chunks = read_work_manifest(plan["work_manifest_uri"])
    summaries = [restore_chunk_task.fn(c, dst, model, settings, plan["run_id"], {}) for c in chunks]
    assert sum(s["ok"] for s in summaries) == 3 and sum(s["quarantined"] for s in summaries) == 1
    assert read_run_rows(dst, plan["run_id"]).num_rows == 4  # chunk rows persisted by the task
    out = Image.open(io.BytesIO(Path(dst, "sub/c.png").read_bytes()))
    source = Image.open(Path(src, "sub/c.png"))
    assert out.size == source.size and out.mode == source.mode
    assert not np.array_equal(np.asarray(out), np.asarray(source))  # the model changed the pixels
    summary = finish_run_task.fn(dst, plan, settings, model, 1.5, {}, {"source": src}, {})
    assert summary["by_status"] == {"ok": 3, "failed": 0, "quarantined": 1}
    assert summary["model_version"] == model["version"] and summary["model_uri"] == model["uri"]
    assert summary["quarantined"][0]["key"] == "notes.jpg"
    current = read_current_manifest(dst)
    assert set(current.column("model_version").to_pylist()) == {model["version"]}
    again = plan_work_task.fn(src, dst, settings, model["version"], {})
    assert (again["images"], again["skipped"]) == (0, 4)
