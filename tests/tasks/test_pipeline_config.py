"""The pipeline config: file choice, CWD-relative paths, the two shipped files and clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from abair_core.config import PROJECT_ROOT, ConfigError, load_config
from tasks.pipeline_config import (
    PIPELINE_ENV_VAR,
    PipelineConfig,
    load_pipeline_config,
    resolve_local_uri,
)

LOCAL = PROJECT_ROOT / "configs" / "pipeline" / "local.yaml"
STACK = PROJECT_ROOT / "configs" / "pipeline" / "stack.yaml"


@pytest.fixture
def in_tmp_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(PIPELINE_ENV_VAR, raising=False)
    return tmp_path


def test_local_yaml_equals_builtin_defaults():
    assert load_config(LOCAL, PipelineConfig) == PipelineConfig()


def test_default_resolves_under_the_working_directory(in_tmp_cwd: Path):
    config = load_pipeline_config()
    work = (in_tmp_cwd / "abair-work").resolve()
    assert config.storage.root == work.as_uri()
    assert config.mlflow.tracking_uri == f"sqlite:///{work / 'mlflow.db'}"
    assert config.mlflow.artifact_location == (work / "mlartifacts").as_uri()
    assert config.dask.scheduler_address is None and config.dask.n_workers == 2
    assert config.prefect.api_url is None and config.prefect.environment() == {}


def test_cwd_copy_of_default_file_wins(in_tmp_cwd: Path):
    target = in_tmp_cwd / "configs" / "pipeline" / "local.yaml"
    target.parent.mkdir(parents=True)
    target.write_text("storage: {root: file://./elsewhere}\n")
    assert load_pipeline_config().storage.root == (in_tmp_cwd / "elsewhere").resolve().as_uri()


def test_env_var_picks_stack_and_path_argument_beats_it(in_tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(PIPELINE_ENV_VAR, str(STACK))
    stack = load_pipeline_config()
    assert stack.storage.root == "s3://abair/work"
    assert stack.storage.storage_options == {"endpoint_url": "http://127.0.0.1:8333"}
    assert stack.mlflow.tracking_uri == "http://127.0.0.1:5000" and stack.mlflow.artifact_location is None
    assert stack.dask.scheduler_address == "tcp://127.0.0.1:8786"
    assert stack.prefect.environment() == {"PREFECT_API_URL": "http://127.0.0.1:4200/api"}
    assert load_pipeline_config(LOCAL).storage.root.startswith("file:///")


def test_relative_config_path_is_read_from_the_working_directory(in_tmp_cwd: Path):
    (in_tmp_cwd / "mine.yaml").write_text("dask: {n_workers: 3, threads_per_worker: 2}\n")
    config = load_pipeline_config("mine.yaml")
    assert (config.dask.n_workers, config.dask.threads_per_worker) == (3, 2)


def test_unknown_key_names_file_key_and_allowed_keys(in_tmp_cwd: Path):
    (in_tmp_cwd / "bad.yaml").write_text("mlflow: {tracking_url: http://x}\n")
    with pytest.raises(ConfigError) as info:
        load_pipeline_config("bad.yaml")
    message = str(info.value)
    assert "bad.yaml" in message and "mlflow.tracking_url" in message and "tracking_uri" in message


def test_credentials_in_storage_options_are_refused(in_tmp_cwd: Path):
    (in_tmp_cwd / "secret.yaml").write_text(
        "storage: {root: s3://b/p, storage_options: {client_kwargs: {aws_secret_access_key: x}, key: y}}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_pipeline_config("secret.yaml")
    message = str(info.value)
    assert "storage.storage_options" in message and "client_kwargs.aws_secret_access_key" in message
    assert "environment" in message


def test_worker_counts_must_be_positive():
    with pytest.raises(ValueError, match="n_workers"):
        PipelineConfig.model_validate({"dask": {"n_workers": 0}})


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("file://./w", "/base/w"),
        ("./w/x", "/base/w/x"),
        ("w", "/base/w"),
        ("file:///abs/w", "/abs/w"),
        ("/abs/w", "/abs/w"),
    ],
)
def test_resolve_local_uri(uri: str, expected: str):
    assert resolve_local_uri(uri, Path("/base")) == Path(expected).as_uri()


@pytest.mark.parametrize("uri", ["s3://bucket/p", "gs://b/p", "mlflow-artifacts:/x"])
def test_remote_uris_are_unchanged(uri: str):
    assert resolve_local_uri(uri, Path("/base")) == uri


def test_resolved_keeps_absolute_and_remote_mlflow_uris():
    config = PipelineConfig.model_validate(
        {"mlflow": {"tracking_uri": "sqlite:////abs/m.db", "registry_uri": "http://h:5000"}}
    ).resolved(Path("/base"))
    assert config.mlflow.tracking_uri == "sqlite:////abs/m.db"
    assert config.mlflow.registry_uri == "http://h:5000"
    relative = PipelineConfig().resolved(Path("/base"))
    assert relative.mlflow.tracking_uri == "sqlite:////base/abair-work/mlflow.db"
