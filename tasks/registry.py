"""MLflow model registry operations for ABAIR components and bundles, as plain functions.

Each trained component (backbone, one adapter per degradation, estimator) is one ``.safetensors``
file registered as a version of ``abair-backbone``, ``abair-adapter-<id>`` or ``abair-estimator``.
The restorable model ``abair`` is an MLflow pyfunc "from code" (``tasks/bundle_model.py``) whose only
artifact is the bundle directory, with tags pinning every component version. Aliases ``challenger``
and ``champion`` move between versions; a ``champion.previous`` version tag remembers the champion
each one replaced, so rollback walks back the chain. Prefect tasks wrap these functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import time
import warnings
from contextlib import nullcontext
from dataclasses import dataclass
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any, Literal

import mlflow
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.types.schema import ParamSchema, ParamSpec

from tasks.pipeline_config import PipelineConfig

__all__ = [
    "BACKBONE_MODEL_NAME",
    "BUNDLE_MODEL_FILE",
    "BUNDLE_MODEL_NAME",
    "ESTIMATOR_MODEL_NAME",
    "ModelVersionRef",
    "ResolvedModel",
    "adapter_model_name",
    "bundle_signature",
    "component_file_name",
    "component_model_name",
    "configure_mlflow",
    "download_component",
    "get_alias_version",
    "list_registered_models",
    "model_cache_dir",
    "previous_champion",
    "register_bundle",
    "register_component",
    "resolve_model",
    "rollback_champion",
    "set_alias",
    "set_headline_metrics",
]

BUNDLE_MODEL_NAME = "abair"
BACKBONE_MODEL_NAME = "abair-backbone"
ESTIMATOR_MODEL_NAME = "abair-estimator"
ADAPTER_MODEL_PREFIX = "abair-adapter-"
BUNDLE_MODEL_FILE = Path(__file__).resolve().parent / "bundle_model.py"
BUNDLE_JSON = "bundle.json"
CHAMPION, CHALLENGER = "champion", "challenger"
PREVIOUS_CHAMPION_TAG = "champion.previous"
HEADLINE_TAG_PREFIX = "metric."
PICKLE_SUFFIXES = frozenset({".pkl", ".pickle", ".pt", ".pth", ".ckpt", ".bin", ".joblib"})
BUNDLE_REQUIREMENTS = ("mlflow", "torch", "numpy", "safetensors", "pydantic", "pyyaml", "pillow")
ComponentKind = Literal["backbone", "adapter", "estimator"]
_ADAPTER_ID = re.compile(r"^[a-z][a-z0-9_]*$")
MODEL_CACHE_ENV_VAR = "ABAIR_MODEL_CACHE"
DEFAULT_MODEL_CACHE = "~/.cache/abair/models"
_CACHE_COMPLETE = ".complete"


@dataclass(frozen=True)
class ModelVersionRef:
    """One registered model version: ``uri`` is the concrete ``models:/<name>/<version>``."""

    name: str
    version: str
    uri: str


@dataclass(frozen=True)
class ResolvedModel:
    """A bundle pinned to one version and present on local disk."""

    name: str
    version: str
    local_dir: Path
    uri: str
    bundle_dir: Path


def configure_mlflow(config: PipelineConfig) -> str:
    """Point MLflow at the config's tracking/registry stores and experiment; return the experiment id."""
    tracking_uri = config.mlflow.tracking_uri
    registry_uri = config.mlflow.registry_uri or tracking_uri
    for uri in (tracking_uri, registry_uri):
        _ensure_sqlite_parent(uri)
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    client = MlflowClient()
    experiment = client.get_experiment_by_name(config.mlflow.experiment_name)
    if experiment is None:
        experiment_id = client.create_experiment(
            config.mlflow.experiment_name, artifact_location=config.mlflow.artifact_location
        )
    else:
        experiment_id = experiment.experiment_id
    mlflow.set_experiment(experiment_id=experiment_id)
    return experiment_id


def adapter_model_name(adapter_id: str) -> str:
    """``abair-adapter-<id>``; the id is the degradation id verbatim (snake_case)."""
    if not _ADAPTER_ID.match(adapter_id):
        raise ValueError(f"adapter id {adapter_id!r} must be snake_case (e.g. 'rain', 'low_light')")
    return ADAPTER_MODEL_PREFIX + adapter_id


def component_model_name(kind: ComponentKind, adapter_id: str | None = None) -> str:
    """The registered model name of a component kind."""
    _check_kind(kind, adapter_id)
    if kind == "adapter":
        return adapter_model_name(adapter_id or "")
    return BACKBONE_MODEL_NAME if kind == "backbone" else ESTIMATOR_MODEL_NAME


def component_file_name(kind: ComponentKind, adapter_id: str | None = None) -> str:
    """The component's file name inside a bundle directory."""
    _check_kind(kind, adapter_id)
    if kind == "adapter":
        adapter_model_name(adapter_id or "")
        return f"adapter-{adapter_id}.safetensors"
    return f"{kind}.safetensors"


def register_component(
    kind: ComponentKind,
    file_path: str | Path,
    tags: dict[str, Any] | None = None,
    adapter_id: str | None = None,
    run_id: str | None = None,
) -> ModelVersionRef:
    """Log one component's safetensors file to a run and register it as a new model version.

    The file is stored under its bundle name (``backbone.safetensors``, ``adapter-<id>.safetensors``,
    ``estimator.safetensors``) so downloaded components assemble into a bundle directory as is.
    """
    path = Path(file_path)
    name = component_model_name(kind, adapter_id)
    file_name = component_file_name(kind, adapter_id)
    _check_safetensors(path)
    digest = _sha256(path)
    artifact_dir = f"registry/{name}/{digest[:16]}"
    client = MlflowClient()
    with tempfile.TemporaryDirectory(prefix="abair-component-") as staging:
        staged = Path(staging) / file_name
        _link_or_copy(str(path), str(staged))
        if run_id is None:
            with mlflow.start_run(run_name=f"register-{name}", nested=mlflow.active_run() is not None) as run:
                mlflow.log_artifact(str(staged), artifact_dir)
                run_id = run.info.run_id
        else:
            client.log_artifact(run_id, str(staged), artifact_dir)
    source = f"{client.get_run(run_id).info.artifact_uri.rstrip('/')}/{artifact_dir}"
    version_tags = {**_stringify(tags), "component.kind": kind, "component.file": file_name, "sha256": digest}
    if adapter_id is not None:
        version_tags["component.adapter_id"] = adapter_id
    _ensure_registered_model(client, name)
    version = client.create_model_version(name, source=source, run_id=run_id, tags=version_tags)
    return _ref(name, version.version)


def download_component(name: str, version: str | int, dst_dir: str | Path) -> Path:
    """Download a registered component into ``dst_dir``; return the path of its safetensors file."""
    client = MlflowClient()
    model_version = client.get_model_version(name, str(version))
    file_name = model_version.tags.get("component.file")
    if file_name is None:
        raise ValueError(f"{name} version {version} is not an ABAIR component (no 'component.file' tag)")
    dst = Path(dst_dir)
    dst.mkdir(parents=True, exist_ok=True)
    local = Path(
        mlflow.artifacts.download_artifacts(artifact_uri=f"models:/{name}/{version}", dst_path=str(dst))
    )
    found = local / file_name if local.is_dir() else local
    if not found.is_file():
        raise FileNotFoundError(f"{name} version {version}: {file_name} missing from its artifacts ({local})")
    return found


def bundle_signature() -> ModelSignature:
    """The bundle's signature: free-shape image arrays in, one ``mode`` inference parameter."""
    return ModelSignature(params=ParamSchema([ParamSpec("mode", "string", "sw")]))


def register_bundle(
    bundle_dir: str | Path,
    component_versions: dict[str, str | int],
    tags: dict[str, Any] | None = None,
    set_champion_if_first: bool = True,
    run_id: str | None = None,
) -> ModelVersionRef:
    """Log ``bundle_dir`` as the pyfunc-from-code model ``abair``, register it and set ``challenger``.

    ``component_versions`` pins every component: keys ``backbone``, ``estimator`` and
    ``adapter.<id>`` for each adapter listed in ``bundle.json``; they become version tags
    ``component.<key>``. The first bundle of an empty registry also becomes ``champion``.
    A given ``run_id`` is resumed (and ended, unless it is the active run).
    """
    directory = Path(bundle_dir)
    manifest = _read_bundle_json(directory)
    pins = _component_tags(component_versions, manifest.get("adapters", []))
    refused = sorted(
        str(p.relative_to(directory)) for p in directory.rglob("*") if p.suffix in PICKLE_SUFFIXES
    )
    if refused:
        raise ValueError(
            f"{directory}: pickle-capable files are not allowed in a bundle: {', '.join(refused)}"
        )
    version_tags = {**_stringify(tags), **pins, "bundle.sha256": _sha256(directory / BUNDLE_JSON)}
    client = MlflowClient()
    with _run_context(run_id) as run, tempfile.TemporaryDirectory(prefix="abair-bundle-") as staging:
        staged = Path(staging) / "bundle"  # MLflow names the artifact folder after the source folder
        shutil.copytree(directory, staged, copy_function=_link_or_copy)
        mlflow.set_tags(pins)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*input example was not provided.*")
            info = mlflow.pyfunc.log_model(
                name=BUNDLE_MODEL_NAME,
                python_model=str(BUNDLE_MODEL_FILE),
                artifacts={"bundle": str(staged)},
                signature=bundle_signature(),
                pip_requirements=_bundle_requirements(),
                metadata={"abair_components": pins},
            )
        run_id = run.info.run_id
    location = mlflow.get_logged_model(info.model_id).artifact_location
    pickles = [p for p in _list_artifacts(location) if Path(p).suffix in PICKLE_SUFFIXES]
    if pickles:
        raise RuntimeError(f"logged bundle {info.model_uri} contains pickles: {pickles}")
    _ensure_registered_model(client, BUNDLE_MODEL_NAME)
    version = client.create_model_version(
        BUNDLE_MODEL_NAME, source=info.model_uri, run_id=run_id, tags=version_tags, model_id=info.model_id
    ).version
    set_alias(BUNDLE_MODEL_NAME, CHALLENGER, version)
    if set_champion_if_first and get_alias_version(BUNDLE_MODEL_NAME, CHAMPION) is None:
        set_alias(BUNDLE_MODEL_NAME, CHAMPION, version)
    return _ref(BUNDLE_MODEL_NAME, version)


def model_cache_dir(configured: str | Path | None = None) -> Path:
    """Where registry versions are kept: ``configured``, else ``$ABAIR_MODEL_CACHE``, else ~/.cache/abair/models."""
    return Path(configured or os.environ.get(MODEL_CACHE_ENV_VAR) or DEFAULT_MODEL_CACHE).expanduser()


def resolve_model(uri_or_path: str | Path, dst_dir: str | Path | None = None,
                  cache_dir: str | Path | None = None) -> ResolvedModel:
    """Pin a bundle to one version and make it local, once (e.g. at flow start).

    Accepts ``models:/<name>@<alias>``, ``models:/<name>/<version>``, ``models:/<name>/latest``, a
    local MLflow model directory or a plain bundle directory (version ``local:<sha of bundle.json>``).
    Registry models download to ``dst_dir`` when given, else into the model cache (``model_cache_dir``):
    a registered version never changes, so a nightly run reuses the copy of the night before instead of
    downloading it again or leaving one more copy in the temporary folder.
    """
    text = str(uri_or_path)
    if not text.startswith("models:/"):
        return _resolve_local(Path(text))
    name, version = _parse_models_uri(text)
    uri = f"models:/{name}/{version}"
    if dst_dir is None:
        local_dir = _cached_download(uri, name, version, model_cache_dir(cache_dir))
    else:
        dst = Path(dst_dir)
        dst.mkdir(parents=True, exist_ok=True)
        local_dir = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(dst)))
    bundle_dir = _bundle_dir_of_model(local_dir)
    if bundle_dir is None:
        raise ValueError(f"{uri} is not an ABAIR bundle (no 'bundle' artifact with {BUNDLE_JSON})")
    return ResolvedModel(name=name, version=version, local_dir=local_dir, uri=uri, bundle_dir=bundle_dir)


def _cached_download(uri: str, name: str, version: str, cache_root: Path) -> Path:
    """The local copy of registry version ``uri`` under ``cache_root``, downloaded if not there yet.

    The entry's name carries a hash of the registry and the version's source, so two stores that both
    hold ``abair/1`` never share an entry. A download lands in a staging folder that is renamed into
    place only when complete (a crash leaves no half entry; of two workers racing, one rename wins).
    """
    source = MlflowClient().get_model_version(name, version).source
    key = hashlib.sha256(f"{mlflow.get_registry_uri()}\n{source}".encode()).hexdigest()[:16]
    entry = cache_root / f"{name}-v{version}-{key}"
    marker = entry / _CACHE_COMPLETE
    if not marker.is_file():
        cache_root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".partial-{name}-v{version}-", dir=cache_root))
        try:
            local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=str(staging)))
            (staging / _CACHE_COMPLETE).write_text(str(local.resolve().relative_to(staging.resolve())))
            try:
                os.rename(staging, entry)
            except OSError:
                if not marker.is_file():  # not a lost race: a real error
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return entry / marker.read_text()


def set_alias(name: str, alias: str, version: str | int, record_previous: bool = True) -> None:
    """Point ``alias`` at ``version``; a new champion records the one it replaces in ``champion.previous``."""
    client = MlflowClient()
    version = str(version)
    client.get_model_version(name, version)  # fails clearly for an unknown version
    if alias == CHAMPION and record_previous:
        current = get_alias_version(name, CHAMPION)
        if current is not None and current != version:
            client.set_model_version_tag(name, version, PREVIOUS_CHAMPION_TAG, current)
        client.set_model_version_tag(
            name, version, "champion.since", time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        )
    client.set_registered_model_alias(name, alias, version)


def get_alias_version(name: str, alias: str) -> str | None:
    """The version ``alias`` points at, or None (also when the model does not exist)."""
    try:
        aliases = MlflowClient().get_registered_model(name).aliases
    except MlflowException as exc:
        if exc.error_code == "RESOURCE_DOES_NOT_EXIST":
            return None
        raise
    version = aliases.get(alias)
    return None if version is None else str(version)


def previous_champion(name: str) -> str | None:
    """The champion the current champion replaced (its ``champion.previous`` tag), or None."""
    current = get_alias_version(name, CHAMPION)
    if current is None:
        return None
    return MlflowClient().get_model_version(name, current).tags.get(PREVIOUS_CHAMPION_TAG)


def rollback_champion(name: str) -> str:
    """Move ``champion`` back to the previous champion and return that version."""
    current = get_alias_version(name, CHAMPION)
    previous = previous_champion(name)
    if current is None or previous is None:
        raise LookupError(f"{name}: no previous champion to roll back to (champion: {current})")
    client = MlflowClient()
    client.set_model_version_tag(name, current, "champion.rolled_back", "true")
    set_alias(name, CHAMPION, previous, record_previous=False)
    return previous


def set_headline_metrics(name: str, version: str | int, metrics: dict[str, float]) -> None:
    """Record a version's headline numbers (e.g. average PSNR) as ``metric.<key>`` version tags."""
    client = MlflowClient()
    for key, value in metrics.items():
        client.set_model_version_tag(name, str(version), HEADLINE_TAG_PREFIX + key, repr(float(value)))


def list_registered_models(prefix: str = BUNDLE_MODEL_NAME) -> list[dict[str, Any]]:
    """One row per version of every registered model whose name starts with ``prefix``.

    Rows: name, version, aliases (sorted), tags, metrics (headline ``metric.*`` tags as floats),
    run_id and creation time in ms, ordered by name then version.
    """
    client = MlflowClient()
    rows = []
    for model in _search_all(client.search_registered_models, f"name LIKE '{prefix}%'"):
        aliases_by_version: dict[str, list[str]] = {}
        for alias, version in model.aliases.items():
            aliases_by_version.setdefault(str(version), []).append(alias)
        for mv in _search_all(client.search_model_versions, f"name = '{model.name}'"):
            tags = dict(mv.tags)
            metrics = {
                k[len(HEADLINE_TAG_PREFIX) :]: float(v)
                for k, v in tags.items()
                if k.startswith(HEADLINE_TAG_PREFIX)
            }
            rows.append(
                {
                    "name": mv.name,
                    "version": str(mv.version),
                    "aliases": sorted(aliases_by_version.get(str(mv.version), [])),
                    "tags": tags,
                    "metrics": metrics,
                    "run_id": mv.run_id,
                    "created_ms": mv.creation_timestamp,
                }
            )
    return sorted(rows, key=lambda row: (row["name"], int(row["version"])))


# --- helpers -------------------------------------------------------------------------------------


def _check_kind(kind: str, adapter_id: str | None) -> None:
    if kind not in ("backbone", "adapter", "estimator"):
        raise ValueError(f"unknown component kind {kind!r} (allowed: 'backbone', 'adapter', 'estimator')")
    if (kind == "adapter") != (adapter_id is not None):
        raise ValueError("adapter_id is required for kind 'adapter' and not allowed otherwise")


def _check_safetensors(path: Path) -> None:
    """Refuse anything that is not a readable safetensors file (reads only the header)."""
    from safetensors import safe_open

    if path.suffix != ".safetensors" or not path.is_file():
        raise ValueError(f"{path}: a component must be an existing .safetensors file")
    try:
        with safe_open(str(path), framework="numpy"):
            pass
    except Exception as exc:  # safetensors raises its own error types
        raise ValueError(f"{path}: not a valid safetensors file ({exc})") from exc


def _link_or_copy(src: str, dst: str) -> str:
    """Stage a file under a new name without copying its bytes when the filesystem allows."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)
    return dst


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _stringify(tags: dict[str, Any] | None) -> dict[str, str]:
    return {str(k): str(v) for k, v in (tags or {}).items()}


def _ref(name: str, version: str | int) -> ModelVersionRef:
    return ModelVersionRef(name=name, version=str(version), uri=f"models:/{name}/{version}")


def _ensure_sqlite_parent(uri: str) -> None:
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.endswith(":memory:"):
        Path(uri[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)


def _ensure_registered_model(client: MlflowClient, name: str) -> None:
    try:
        client.get_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
        try:
            client.create_registered_model(name)
        except MlflowException as create_exc:  # created concurrently by another worker
            if create_exc.error_code != "RESOURCE_ALREADY_EXISTS":
                raise


def _read_bundle_json(directory: Path) -> dict[str, Any]:
    path = directory / BUNDLE_JSON
    if not path.is_file():
        raise FileNotFoundError(f"{directory}: not a bundle directory (no {BUNDLE_JSON})")
    return json.loads(path.read_text(encoding="utf-8"))


def _component_tags(component_versions: dict[str, str | int], adapters: list[str]) -> dict[str, str]:
    """Validate the pins against the bundle's adapters and turn them into ``component.<key>`` tags."""
    expected = {"backbone", "estimator", *(f"adapter.{a}" for a in adapters)}
    given = set(component_versions)
    if given != expected:
        missing, extra = sorted(expected - given), sorted(given - expected)
        raise ValueError(
            f"component_versions must pin exactly {sorted(expected)} (missing: {missing}, unexpected: {extra})"
        )
    return {f"component.{key}": str(component_versions[key]) for key in sorted(expected)}


def _run_context(run_id: str | None) -> Any:
    active = mlflow.active_run()
    if run_id is not None and active is not None and active.info.run_id == run_id:
        return nullcontext(active)
    if run_id is not None:
        return mlflow.start_run(run_id=run_id, nested=active is not None)
    return mlflow.start_run(run_name="register-bundle", nested=active is not None)


def _bundle_requirements() -> list[str]:
    """Pinned requirements of the bundle's loader (given explicitly: inference would load the model)."""
    pins = []
    for package in BUNDLE_REQUIREMENTS:
        try:
            public = importlib_metadata.version(package).split("+")[0]  # drop local labels (+cpu)
            pins.append(f"{package}=={public}")
        except importlib_metadata.PackageNotFoundError:
            pins.append(package)
    return pins


def _list_artifacts(uri: str, path: str | None = None) -> list[str]:
    """Every file path under an artifact URI, recursively."""
    target = uri if path is None else f"{uri.rstrip('/')}/{path}"
    files = []
    for entry in mlflow.artifacts.list_artifacts(artifact_uri=target):
        relative = entry.path if path is None else f"{path}/{Path(entry.path).name}"
        if entry.is_dir:
            files.extend(_list_artifacts(uri, relative))
        else:
            files.append(relative)
    return files


def _search_all(search: Any, filter_string: str) -> list[Any]:
    """Exhaust a paged MLflow search."""
    items, token = [], None
    while True:
        page = search(filter_string=filter_string, page_token=token)
        items.extend(page)
        token = page.token
        if not token:
            return items


def _parse_models_uri(uri: str) -> tuple[str, str]:
    """``models:/name@alias`` | ``models:/name/<version|latest>`` -> (name, concrete version)."""
    body = uri[len("models:/") :].strip("/")
    client = MlflowClient()
    if "@" in body:
        name, alias = body.split("@", 1)
        version = get_alias_version(name, alias)
        if version is None:
            known = sorted(_aliases(client, name))
            raise LookupError(f"{uri}: no alias {alias!r} on model {name!r} (aliases: {known})")
        return name, version
    name, _, version = body.rpartition("/")
    if not name or not version:
        raise ValueError(f"{uri}: expected models:/<name>@<alias> or models:/<name>/<version>")
    if version == "latest":
        versions = [int(mv.version) for mv in _search_all(client.search_model_versions, f"name = '{name}'")]
        if not versions:
            raise LookupError(f"{uri}: model {name!r} has no versions")
        return name, str(max(versions))
    client.get_model_version(name, version)
    return name, version


def _aliases(client: MlflowClient, name: str) -> list[str]:
    try:
        return list(client.get_registered_model(name).aliases)
    except MlflowException:
        return []


def _resolve_local(path: Path) -> ResolvedModel:
    """A local MLflow model directory or plain bundle directory, versioned by its bundle.json hash."""
    if (path / "MLmodel").is_file():
        bundle_dir = _bundle_dir_of_model(path)
        if bundle_dir is None:
            raise FileNotFoundError(f"{path}: MLflow model without an ABAIR bundle ('bundle' artifact)")
    elif (path / BUNDLE_JSON).is_file():
        bundle_dir = path
    else:
        raise FileNotFoundError(
            f"{path}: neither an MLflow model directory (MLmodel) nor a bundle ({BUNDLE_JSON})"
        )
    local_dir = path.resolve()
    version = "local:" + _sha256(bundle_dir / BUNDLE_JSON)[:12]
    return ResolvedModel(
        name="local",
        version=version,
        local_dir=local_dir,
        uri=str(local_dir),
        bundle_dir=bundle_dir.resolve(),
    )


def _bundle_dir_of_model(model_dir: Path) -> Path | None:
    """The local folder of a pyfunc model's ``bundle`` artifact (as recorded in its MLmodel file)."""
    flavor = Model.load(str(model_dir)).flavors.get("python_function", {})
    relative = (flavor.get("artifacts") or {}).get("bundle", {}).get("path")
    if relative is None or not (model_dir / relative / BUNDLE_JSON).is_file():
        return None
    return model_dir / relative
