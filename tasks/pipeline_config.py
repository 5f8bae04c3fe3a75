"""Where the pipeline keeps things: storage root, MLflow, Dask and Prefect endpoints.

One YAML file (``configs/pipeline/local.yaml`` by default, ``stack.yaml`` for the loopback stack)
says where data, tracking and compute live, so the same flows run on a laptop folder or against S3,
an MLflow server and a Dask cluster. Secrets never live here: s3fs/botocore and MLflow read them from
the environment (``AWS_ACCESS_KEY_ID`` …), and a credential key in ``storage_options`` is refused.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, field_validator

from abair_core.config import PROJECT_ROOT, StrictConfig, load_config

__all__ = [
    "DEFAULT_PIPELINE_CONFIG",
    "PIPELINE_ENV_VAR",
    "DaskConfig",
    "MlflowConfig",
    "PipelineConfig",
    "PrefectConfig",
    "StorageConfig",
    "load_pipeline_config",
    "resolve_local_uri",
]

PIPELINE_ENV_VAR = "ABAIR_PIPELINE"
DEFAULT_PIPELINE_CONFIG = Path("configs/pipeline/local.yaml")

# Keys that would put a secret into a YAML file; the environment carries these instead.
CREDENTIAL_KEYS = frozenset(
    {
        "key",
        "secret",
        "token",
        "password",
        "session_token",
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
    }
)


class StorageConfig(StrictConfig):
    """The object store every artifact path is relative to (an fsspec URI)."""

    root: str = Field(
        "file://./abair-work", description="fsspec URI prefix; file://./x is a folder in the CWD"
    )
    storage_options: dict[str, Any] = Field(
        default_factory=dict, description="fsspec filesystem options (endpoint_url, …); no credentials"
    )

    @field_validator("storage_options")
    @classmethod
    def _no_credentials(cls, value: dict[str, Any]) -> dict[str, Any]:
        found = sorted(_credential_keys(value))
        if found:
            raise ValueError(
                f"credentials are not allowed in the pipeline config ({', '.join(found)}); "
                "set them in the environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, …)"
            )
        return value


class MlflowConfig(StrictConfig):
    """Tracking and registry stores; a relative sqlite path is resolved against the CWD."""

    tracking_uri: str = "sqlite:///abair-work/mlflow.db"
    registry_uri: str | None = Field(None, description="None: the tracking URI")
    artifact_location: str | None = Field(
        "./abair-work/mlartifacts", description="experiment artifact root; None lets the server decide"
    )
    experiment_name: str = Field("abair", min_length=1)
    model_cache: str | None = Field(
        None, description="folder registry versions are downloaded to, once per machine; "
        "None: $ABAIR_MODEL_CACHE, else ~/.cache/abair/models"
    )


class DaskConfig(StrictConfig):
    """An existing scheduler by address, or a LocalCluster of this shape when the address is None."""

    scheduler_address: str | None = None
    n_workers: int = Field(2, ge=1)
    threads_per_worker: int = Field(1, ge=1)
    processes: bool = True


class PrefectConfig(StrictConfig):
    """A Prefect server API, or None for Prefect's ephemeral local API."""

    api_url: str | None = None

    def environment(self) -> dict[str, str]:
        """Environment variables that point Prefect at this API (empty for the ephemeral one)."""
        return {} if self.api_url is None else {"PREFECT_API_URL": self.api_url}


class PipelineConfig(StrictConfig):
    """The whole pipeline's placement: storage, MLflow, Dask and Prefect."""

    storage: StorageConfig = Field(default_factory=StorageConfig)
    mlflow: MlflowConfig = Field(default_factory=MlflowConfig)
    dask: DaskConfig = Field(default_factory=DaskConfig)
    prefect: PrefectConfig = Field(default_factory=PrefectConfig)

    def resolved(self, base: str | Path | None = None) -> PipelineConfig:
        """A copy with relative local paths made absolute against ``base`` (default: the CWD)."""
        base_dir = Path.cwd() if base is None else Path(base)
        data = self.model_dump()
        data["storage"]["root"] = resolve_local_uri(self.storage.root, base_dir)
        data["mlflow"]["tracking_uri"] = _resolve_sqlite_uri(self.mlflow.tracking_uri, base_dir)
        if self.mlflow.registry_uri is not None:
            data["mlflow"]["registry_uri"] = _resolve_sqlite_uri(self.mlflow.registry_uri, base_dir)
        if self.mlflow.artifact_location is not None:
            data["mlflow"]["artifact_location"] = resolve_local_uri(self.mlflow.artifact_location, base_dir)
        return PipelineConfig.model_validate(data)


def load_pipeline_config(path: str | Path | None = None) -> PipelineConfig:
    """Load the pipeline config: ``path`` > ``$ABAIR_PIPELINE`` > ``configs/pipeline/local.yaml``.

    Relative config paths and relative local storage/sqlite paths resolve against the working
    directory. When the default file is absent from the CWD the project's copy is used, and without
    either the built-in defaults (identical to ``local.yaml``) apply.
    """
    chosen = path if path is not None else os.environ.get(PIPELINE_ENV_VAR) or None
    if chosen is not None:
        return load_config(Path(chosen), PipelineConfig).resolved()
    for candidate in (DEFAULT_PIPELINE_CONFIG, PROJECT_ROOT / DEFAULT_PIPELINE_CONFIG):
        if candidate.is_file():
            return load_config(candidate, PipelineConfig).resolved()
    return PipelineConfig().resolved()


def resolve_local_uri(uri: str, base: Path) -> str:
    """``file://./x``, ``file://x`` or a plain relative path -> an absolute ``file://`` URI; others unchanged."""
    parts = urlsplit(uri)
    if parts.scheme and parts.scheme != "file" and len(parts.scheme) > 1:  # s3://, gs://, mlflow-artifacts:
        return uri
    if parts.scheme == "file":
        local = uri[len("file://") :]
    else:
        local = uri
    path = Path(local).expanduser()
    if not path.is_absolute():
        path = base / path
    return path.resolve().as_uri()


def _resolve_sqlite_uri(uri: str, base: Path) -> str:
    """``sqlite:///rel.db`` -> ``sqlite:////abs/rel.db``; other URIs (http, absolute sqlite) unchanged."""
    prefix = "sqlite:///"
    if not uri.startswith(prefix) or uri.startswith(prefix + "/") or uri == prefix + ":memory:":
        return uri
    return prefix + str((base / uri[len(prefix) :]).resolve())


def _credential_keys(options: Any, prefix: str = "") -> list[str]:
    """Dotted names of every credential-looking key in a (nested) options mapping."""
    found: list[str] = []
    if isinstance(options, dict):
        for key, value in options.items():
            name = f"{prefix}{key}"
            if str(key).lower() in CREDENTIAL_KEYS:
                found.append(name)
            found.extend(_credential_keys(value, name + "."))
    return found
