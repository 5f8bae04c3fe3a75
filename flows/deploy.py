"""Apply ``infra/prefect.yaml`` to the configured Prefect server and trigger its deployments.

``deploy`` checks every deployment in the file against the flow it names (the entrypoint imports, the
parameters are the flow's own, required ones are given) and then runs Prefect's own ``prefect deploy
--all`` against the pipeline config's ``prefect.api_url``: what lands on the server is exactly what the
Prefect CLI would register (schedules, concurrency limits, work pool, pull steps). ``run_deployment``
starts one deployment by name (``restore_archive/nightly-restore`` or just ``nightly-restore``) and,
unless told not to, waits for its final state. Nothing here changes a flow: the worker runs the same
functions the CLI and the tests call in-process.
"""

from __future__ import annotations

import importlib
import inspect
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from abair_core.config import PROJECT_ROOT
from flows.runtime import pipeline_from

__all__ = [
    "DEFAULT_PREFECT_FILE",
    "DeploymentSpecError",
    "deploy",
    "deploy_command",
    "deployment_specs",
    "run_deployment",
    "validate_prefect_file",
]

DEFAULT_PREFECT_FILE = "infra/prefect.yaml"


class DeploymentSpecError(ValueError):
    """A deployment in the Prefect file does not match the flow it names."""


def deployment_specs(prefect_file: str | Path = DEFAULT_PREFECT_FILE) -> list[dict[str, Any]]:
    """The ``deployments`` entries of a Prefect YAML file (relative paths resolve against the project root)."""
    path = _project_path(prefect_file)
    data = yaml.safe_load(path.read_text()) or {}
    specs = data.get("deployments") or []
    if not isinstance(specs, list) or not specs:
        raise DeploymentSpecError(f"{path}: no deployments")
    return specs


def validate_prefect_file(prefect_file: str | Path = DEFAULT_PREFECT_FILE) -> dict[str, str]:
    """Check every deployment against its flow; return ``{"<flow name>/<deployment>": entrypoint}``.

    Refused: a missing name, entrypoint or work pool; a file-path entrypoint; an entrypoint that does not
    import or is not a Prefect flow; a parameter the flow does not take; a required flow argument without a value.
    """
    found: dict[str, str] = {}
    for spec in deployment_specs(prefect_file):
        name = spec.get("name")
        entrypoint = spec.get("entrypoint")
        if not name or not entrypoint:
            raise DeploymentSpecError(f"deployment {spec!r} needs a name and an entrypoint")
        if not (spec.get("work_pool") or {}).get("name"):
            raise DeploymentSpecError(f"deployment {name!r} names no work pool")
        flow_obj = _load_entrypoint(entrypoint)
        signature = inspect.signature(flow_obj.fn)
        parameters = spec.get("parameters") or {}
        unknown = sorted(set(parameters) - set(signature.parameters))
        if unknown:
            raise DeploymentSpecError(
                f"deployment {name!r}: {entrypoint} takes no parameter(s) {', '.join(unknown)} "
                f"(it takes {', '.join(signature.parameters)})")
        missing = [p for p, info in signature.parameters.items()
                   if info.default is inspect.Parameter.empty and p not in parameters]
        if missing:
            raise DeploymentSpecError(f"deployment {name!r}: required parameter(s) {', '.join(missing)} "
                                      f"of {entrypoint} have no value")
        found[f"{flow_obj.name}/{name}"] = entrypoint
    return found


def deploy_command(prefect_file: str | Path = DEFAULT_PREFECT_FILE, names: list[str] | None = None,
                   python: str | None = None) -> list[str]:
    """The ``prefect deploy`` invocation that registers the file's deployments (all, or ``names``)."""
    command = [python or sys.executable, "-m", "prefect", "--no-prompt", "deploy",
               "--prefect-file", str(_project_path(prefect_file))]
    if names:
        for name in names:
            command += ["--name", name]
    else:
        command.append("--all")
    return command


def deploy(pipeline: str | None = None, prefect_file: str = DEFAULT_PREFECT_FILE,
           names: list[str] | None = None) -> dict[str, Any]:
    """Register the deployments of ``prefect_file`` on the pipeline's Prefect server.

    The API URL is the pipeline config's ``prefect.api_url`` (``--pipeline`` > ``$ABAIR_PIPELINE`` >
    ``configs/pipeline/local.yaml``); the embedded default (no server) is refused, since a deployment
    needs a server and a worker. Returns ``api_url``, ``command`` (what ran), ``deployments``
    (``{"<flow>/<name>": deployment id}``) and ``output`` (Prefect's own report).
    """
    pipe = pipeline_from(pipeline)
    if not pipe.prefect.api_url:
        raise ValueError("the pipeline config names no Prefect server (prefect.api_url is null); deployments "
                         "need one: use e.g. --pipeline configs/pipeline/stack.yaml")
    expected = validate_prefect_file(prefect_file)
    if names:
        expected = {k: v for k, v in expected.items() if k.split("/", 1)[1] in names}
    command = deploy_command(prefect_file, names)
    env = {**os.environ, **pipe.prefect.environment()}
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, check=False)
    output = done.stdout + done.stderr
    if done.returncode != 0:
        raise RuntimeError(f"prefect deploy failed (exit {done.returncode}):\n{output[-4000:]}")
    ids = _deployment_ids(pipe.prefect.api_url, list(expected))
    return {"api_url": pipe.prefect.api_url, "command": command, "deployments": ids, "output": output}


def run_deployment(name: str, parameters: dict[str, Any] | None = None, pipeline: str | None = None,
                   wait: bool = True, timeout: float | None = None) -> dict[str, Any]:
    """Start deployment ``name`` (``<flow>/<deployment>`` or a unique ``<deployment>``) on the pipeline's server.

    ``parameters`` override the deployment's defaults. With ``wait`` the call returns when the run reaches a
    final state (or after ``timeout`` seconds); without it, as soon as the run is scheduled. Returns
    ``flow_run_id``, ``flow_run_name``, ``deployment`` (the full name), ``state`` (its type, e.g.
    ``COMPLETED``), ``state_name`` and ``api_url``.
    """
    from prefect.deployments import run_deployment as prefect_run_deployment
    from prefect.settings import PREFECT_API_URL, temporary_settings

    pipe = pipeline_from(pipeline)
    if not pipe.prefect.api_url:
        raise ValueError("the pipeline config names no Prefect server (prefect.api_url is null)")
    full_name = _full_deployment_name(name, pipe.prefect.api_url)
    with temporary_settings(updates={PREFECT_API_URL: pipe.prefect.api_url}):
        flow_run = prefect_run_deployment(full_name, parameters=parameters or {},
                                          timeout=(timeout if wait else 0), poll_interval=2)
    state = flow_run.state
    return {"flow_run_id": str(flow_run.id), "flow_run_name": flow_run.name, "deployment": full_name,
            "state": state.type.value if state else None, "state_name": state.name if state else None,
            "api_url": pipe.prefect.api_url}


def _project_path(path: str | Path) -> Path:
    path = Path(path)
    if path.is_absolute() or path.exists():
        return path.resolve()
    return PROJECT_ROOT / path


def _load_entrypoint(entrypoint: str) -> Any:
    """Import ``package.module:flow_function`` and check it is a flow.

    A file-path entrypoint (``flows/x.py:f``) is refused: Prefect would load that file as a top-level module
    ``x``, and a Dask scheduler or worker unpickling the flow's tasks cannot import ``x`` ("Error during
    deserialization of the task graph"); by module path every process imports the installed package.
    """
    from prefect import Flow

    module_name, _, attr = entrypoint.partition(":")
    if module_name.endswith(".py") or "/" in module_name:
        dotted = module_name.removesuffix(".py").replace("/", ".")
        raise DeploymentSpecError(f"entrypoint {entrypoint!r} is a file path; use the module path "
                                  f"'{dotted}:{attr}' so Dask workers can import the flow's module")
    if not attr or not module_name:
        raise DeploymentSpecError(f"entrypoint {entrypoint!r} is not 'package.module:flow_function'")
    try:
        obj = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise DeploymentSpecError(f"entrypoint {entrypoint!r} does not import: {exc}") from exc
    if not isinstance(obj, Flow):
        raise DeploymentSpecError(f"entrypoint {entrypoint!r} is not a Prefect flow")
    return obj


def _deployment_ids(api_url: str, full_names: list[str]) -> dict[str, str]:
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        return {name: str(client.read_deployment_by_name(name).id) for name in full_names}


def _full_deployment_name(name: str, api_url: str) -> str:
    """``<flow>/<deployment>`` as given, or the one deployment on the server called ``name``."""
    if "/" in name:
        return name
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
        found = client.read_deployments(deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[name])))
        flows = {f.id: f.name for f in client.read_flows()} if found else {}
    matches = sorted(f"{flows.get(d.flow_id, '?')}/{d.name}" for d in found)
    if len(matches) != 1:
        raise ValueError(f"deployment {name!r}: {'ambiguous: ' + ', '.join(matches) if matches else 'not found'}; "
                         "give it as <flow>/<deployment>")
    return matches[0]
