"""Session-wide test settings: quiet, isolated Prefect and MLflow.

The environment is set at import, before any test module imports prefect or mlflow. MLflow tracks
to a throw-away sqlite store for the whole session; ``mlflow_store`` gives each test module its own
fresh store. ``prefect_harness`` starts Prefect's test server once per session, only for the flow
tests that request it (it takes about 10 s). Orchestration packages are imported inside fixtures so
core-only test runs never load them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DO_NOT_TRACK", "true")


@pytest.fixture(scope="session", autouse=True)
def session_mlflow_tracking(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Send any MLflow call not under ``mlflow_store`` to a session sqlite store, never ./mlruns."""
    root = tmp_path_factory.mktemp("mlflow-session")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    saved = {key: os.environ.get(key) for key in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    os.environ["MLFLOW_TRACKING_URI"] = uri
    os.environ["MLFLOW_REGISTRY_URI"] = uri
    yield uri
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(scope="session", autouse=True)
def session_model_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Registry downloads go to a session folder, never the user's ~/.cache/abair/models."""
    root = tmp_path_factory.mktemp("model-cache")
    saved = os.environ.get("ABAIR_MODEL_CACHE")
    os.environ["ABAIR_MODEL_CACHE"] = str(root)
    yield root
    if saved is None:
        os.environ.pop("ABAIR_MODEL_CACHE", None)
    else:
        os.environ["ABAIR_MODEL_CACHE"] = saved


@pytest.fixture(scope="session")
def mlflow_template_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An empty, fully migrated MLflow sqlite database, made once (migrating takes 2-6 s)."""
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    uri = f"sqlite:///{path}"
    MlflowClient(tracking_uri=uri, registry_uri=uri).search_registered_models()
    return path


@pytest.fixture(scope="module")
def mlflow_store(tmp_path_factory: pytest.TempPathFactory, mlflow_template_db: Path) -> Iterator[Any]:
    """A fresh sqlite MLflow store for one test module, configured as the current one.

    Yields the module's ``PipelineConfig`` (storage, tracking and artifacts under one tmp folder).
    """
    import mlflow

    from tasks.pipeline_config import PipelineConfig
    from tasks.registry import configure_mlflow

    root: Path = tmp_path_factory.mktemp("mlflow-module")
    shutil.copyfile(mlflow_template_db, root / "mlflow.db")
    config = PipelineConfig.model_validate(
        {
            "storage": {"root": (root / "storage").as_uri()},
            "mlflow": {
                "tracking_uri": f"sqlite:///{root / 'mlflow.db'}",
                "artifact_location": (root / "mlartifacts").as_uri(),
            },
        }
    )
    configure_mlflow(config)
    yield config
    while mlflow.active_run() is not None:
        mlflow.end_run()
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])
    mlflow.set_registry_uri(os.environ["MLFLOW_REGISTRY_URI"])
    # set_experiment pinned this module's experiment id in MLflow's fluent state and the environment.
    mlflow.tracking.fluent._active_experiment_id = None
    os.environ.pop("MLFLOW_EXPERIMENT_ID", None)


@pytest.fixture(scope="session")
def prefect_harness() -> Iterator[None]:
    """One Prefect test server (temporary sqlite database) for every flow test of the session."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=None):
        yield
