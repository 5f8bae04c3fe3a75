"""`abair deploy` / `abair run-deployment`: the Prefect file matches the flows, the invocation is right.

The real registration against a Prefect server and a worker runs in tests/stack/test_stack.py (slow).
"""

from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

import pytest
import yaml

from abair_core.config import PROJECT_ROOT
from flows.deploy import DeploymentSpecError, deploy, deploy_command, deployment_specs, validate_prefect_file
from flows.deploy_cli import add_deploy_parsers, parse_params
from flows.restore_archive import restore_archive
from flows.train import train_all


def write_prefect_file(tmp_path: Path, **changes: object) -> Path:
    """infra/prefect.yaml with the nightly deployment's fields replaced by ``changes``."""
    data = yaml.safe_load((PROJECT_ROOT / "infra/prefect.yaml").read_text())
    nightly = next(d for d in data["deployments"] if d["name"] == "nightly-restore")
    for key, value in changes.items():
        if value is None:
            nightly.pop(key, None)
        else:
            nightly[key] = value
    path = tmp_path / "prefect.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_prefect_file_matches_the_flows() -> None:
    found = validate_prefect_file()
    assert found == {"restore_archive/nightly-restore": "flows.restore_archive:restore_archive",
                     "train_all/train-all": "flows.train:train_all"}
    specs = {d["name"]: d for d in deployment_specs()}
    nightly = specs["nightly-restore"]
    assert [s["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    assert nightly["concurrency_limit"]["limit"] == 1
    assert set(nightly["parameters"]) <= set(inspect.signature(restore_archive.fn).parameters)
    assert set(specs["train-all"]["parameters"]) <= set(inspect.signature(train_all.fn).parameters)
    assert {d["work_pool"]["name"] for d in specs.values()} == {"abair"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"parameters": {"src": "s3://a/in", "dst": "s3://a/out", "chunk_size": 4}}, "takes no parameter"),
        ({"parameters": {"src": "s3://a/in"}}, "required parameter(s) dst"),
        ({"entrypoint": "flows/restore_archive.py:restore_archive"}, "file path"),
        ({"entrypoint": "flows.restore_archive:no_such_flow"}, "does not import"),
        ({"entrypoint": "flows.restore_archive:RestoreRunFailed"}, "is not a Prefect flow"),
        ({"work_pool": None}, "names no work pool"),
    ],
)
def test_prefect_file_mismatches_are_refused(tmp_path: Path, changes: dict, message: str) -> None:
    with pytest.raises(DeploymentSpecError, match=message.replace("(", r"\(").replace(")", r"\)")):
        validate_prefect_file(write_prefect_file(tmp_path, **changes))


def test_deploy_command_applies_the_whole_file_or_named_deployments() -> None:
    command = deploy_command("infra/prefect.yaml")
    assert command == [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--prefect-file",
                       str(PROJECT_ROOT / "infra/prefect.yaml"), "--all"]
    named = deploy_command("infra/prefect.yaml", names=["nightly-restore"], python="/opt/py")
    assert named[0] == "/opt/py" and named[-2:] == ["--name", "nightly-restore"] and "--all" not in named


def test_deploy_refuses_the_embedded_pipeline_without_a_server() -> None:
    with pytest.raises(ValueError, match="names no Prefect server"):
        deploy(pipeline=str(PROJECT_ROOT / "configs/pipeline/local.yaml"))


def test_param_values_are_read_as_yaml() -> None:
    assert parse_params(["src=s3://a/in", "min_confidence=0.5", "reprocess_on_new_model=true",
                         "dask_address=null", "include="]) == {
        "src": "s3://a/in", "min_confidence": 0.5, "reprocess_on_new_model": True, "dask_address": None,
        "include": ""}
    with pytest.raises(argparse.ArgumentTypeError):
        parse_params(["no-equals-sign"])


def test_cli_parsers() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pipeline")
    add_deploy_parsers(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["--pipeline", "configs/pipeline/stack.yaml", "deploy", "--name", "train-all"])
    assert (args.command, args.name, args.prefect_file) == ("deploy", ["train-all"], "infra/prefect.yaml")
    args = parser.parse_args(["run-deployment", "restore_archive/nightly-restore", "--param", "src=s3://a/in",
                              "--param", "dst=s3://a/out", "--no-wait"])
    assert args.name == "restore_archive/nightly-restore" and args.no_wait
    assert parse_params(args.param) == {"src": "s3://a/in", "dst": "s3://a/out"}
