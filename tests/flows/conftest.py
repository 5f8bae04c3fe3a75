"""Flow-test fixtures: one micro-bundle (tiny model, a few real training steps) for the whole session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

MICRO_TRAIN = {
    "name": "micro",
    "model": "tiny",
    "degradations": ["noise", "blur"],
    "synthesis": {"patch_size": 48, "counts": {"composite": 4, "single": 4, "sequence": 2, "clean": 4}},
    "phase1": {"steps": 8, "batch_size": 4, "patch_size": 32, "warmup_steps": 2, "log_every": 4},
    "phase2": {"steps": 4, "batch_size": 4, "patch_size": 32, "warmup_steps": 1, "log_every": 2},
    "phase3": {"steps": 8, "batch_size": 8, "patch_size": 32, "warmup_steps": 1, "log_every": 4},
}


@pytest.fixture(scope="session")
def micro_train_config() -> dict:
    """A training recipe small enough for tests (seconds on 2 cores)."""
    return {k: (dict(v) if isinstance(v, dict) else v) for k, v in MICRO_TRAIN.items()}


@pytest.fixture(scope="session")
def micro_bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A bundle directory of a tiny ABAIR trained for a few steps on two bundled photos."""
    from skimage import data

    from abair_core.bundle import save_bundle
    from abair_core.degradations.specs import load_degradation_specs
    from abair_core.training.config import TrainConfig
    from abair_core.training.recipe import train_abair

    config = TrainConfig.model_validate(MICRO_TRAIN)
    photos = {"rocket": data.rocket().astype(np.float32) / 255,
              "hubble": data.hubble_deep_field()[:400, :400].astype(np.float32) / 255}
    model, _ = train_abair(config, photos, load_degradation_specs("configs/degradations/train.yaml"))
    directory = tmp_path_factory.mktemp("micro-bundle") / "bundle"
    save_bundle(model, directory)
    return directory
