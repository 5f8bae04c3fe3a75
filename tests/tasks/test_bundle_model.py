"""End to end: a tiny ABAIR saved as a bundle, registered, loaded by alias and asked to restore a photo."""

from __future__ import annotations

from pathlib import Path

import mlflow
import numpy as np
import pytest
import skimage.data

from abair_core.bundle import Restorer, load_bundle, save_bundle
from abair_core.models import AdapterConfig, EstimatorConfig, build_abair
from tasks.bundle_model import OVERLAP, TILE
from tasks.pipeline_config import PipelineConfig
from tasks.registry import register_bundle, resolve_model

ADAPTERS = ["rain", "haze"]
PINS = {"backbone": "1", "estimator": "1", "adapter.rain": "1", "adapter.haze": "1"}


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny tensors: one thread is as fast, and immune to OpenMP spin-waits on a busy shared CPU."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A freshly initialised tiny ABAIR written as a bundle directory."""
    import torch

    torch.manual_seed(0)
    estimator = EstimatorConfig(crop_size=32, num_crops=1, width=8, depth=2)
    model = build_abair("tiny", AdapterConfig(), estimator, ADAPTERS, ["clean", *ADAPTERS])
    directory = tmp_path_factory.mktemp("bundle") / "bundle"
    save_bundle(model, directory)
    return directory


@pytest.fixture(scope="module")
def loaded(mlflow_store: PipelineConfig, bundle_dir: Path):
    ref = register_bundle(bundle_dir, PINS, tags={"preset": "tiny"})
    assert ref.version == "1"
    return mlflow.pyfunc.load_model("models:/abair@challenger")


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    """A real photo, small and with sides that are not multiples of 8."""
    return np.ascontiguousarray(skimage.data.astronaut()[::8, ::8][:60, :52])


def test_predict_uint8_matches_the_core_restorer(loaded, bundle_dir: Path, photo: np.ndarray):
    restored = loaded.predict(photo, params={"mode": "oh"})
    assert restored.shape == photo.shape and restored.dtype == np.uint8
    restorer = Restorer(load_bundle(bundle_dir), mode="oh", tile=TILE, overlap=OVERLAP)
    expected = restorer.restore_array(photo.astype(np.float32) / 255.0).rgb
    np.testing.assert_array_equal(restored, np.rint(np.clip(expected, 0, 1) * 255).astype(np.uint8))


def test_predict_float_batch_and_adapter_mode(loaded, photo: np.ndarray):
    batch = np.stack([photo, photo[::-1]]).astype(np.float32) / 255.0
    restored = loaded.predict(batch, params={"mode": "rain"})
    assert restored.shape == batch.shape and restored.dtype == np.float32
    assert 0.0 <= restored.min() and restored.max() <= 1.0
    single = loaded.predict(batch[0], params={"mode": "rain"})
    np.testing.assert_allclose(restored[0], single, atol=1e-6)
    default = loaded.predict(batch[0])  # mode defaults to "sw"
    assert default.shape == batch[0].shape


def test_predict_refuses_unknown_mode_and_grey_input(loaded, photo: np.ndarray):
    with pytest.raises(ValueError, match="allowed: sw, oh, rain, haze"):
        loaded.predict(photo, params={"mode": "snow"})
    with pytest.raises(ValueError, match="RGB"):
        loaded.predict(photo[..., 0:1])


def test_resolved_bundle_loads_in_the_core(loaded, tmp_path: Path, photo: np.ndarray):
    resolved = resolve_model("models:/abair@champion", dst_dir=tmp_path)
    model = load_bundle(resolved.bundle_dir)
    assert list(model.adapter_names) == ADAPTERS
    local = mlflow.pyfunc.load_model(str(resolved.local_dir))
    assert local.predict(photo, params={"mode": "sw"}).shape == photo.shape
