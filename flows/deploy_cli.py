"""`abair deploy` and `abair run-deployment NAME [--param k=v ...]`: the CLI hooks of :mod:`flows.deploy`.

``flows/cli.py`` wires them with ``add_deploy_parsers(sub)``; the global ``--pipeline`` option (which names
the Prefect server through ``prefect.api_url``) reaches them through ``args.pipeline``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import yaml


def parse_params(pairs: list[str] | None) -> dict[str, Any]:
    """``["k=v", ...]`` -> ``{k: v}``; each value is read as YAML (``3``, ``true``, ``null``, ``[a, b]``)."""
    params: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise argparse.ArgumentTypeError(f"--param {pair!r} is not KEY=VALUE")
        params[key.strip()] = yaml.safe_load(value) if value != "" else ""
    return params


def cmd_deploy(args: argparse.Namespace) -> int:
    """Register the deployments of the Prefect file; print what was registered."""
    from flows.deploy import deploy

    result = deploy(pipeline=getattr(args, "pipeline", None), prefect_file=args.prefect_file,
                    names=args.name or None)
    print(json.dumps({k: result[k] for k in ("api_url", "deployments")}, indent=2))
    return 0


def cmd_run_deployment(args: argparse.Namespace) -> int:
    """Start a deployment (and wait for it unless --no-wait); exit 1 when it did not complete."""
    from flows.deploy import run_deployment

    result = run_deployment(args.name, parse_params(args.param), pipeline=getattr(args, "pipeline", None),
                            wait=not args.no_wait, timeout=args.timeout)
    print(json.dumps(result, indent=2))
    if args.no_wait:
        return 0
    return 0 if result["state"] == "COMPLETED" else 1


def add_deploy_parsers(sub: Any) -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """Add ``deploy`` and ``run-deployment`` to an argparse sub-parsers object; returns both parsers."""
    deploy_parser = sub.add_parser(
        "deploy", help="register infra/prefect.yaml's deployments on the pipeline's Prefect server",
        description="Check each deployment against its flow's signature, then run `prefect deploy --all` "
                    "against prefect.api_url of the pipeline config (e.g. --pipeline configs/pipeline/stack.yaml).")
    deploy_parser.add_argument("--prefect-file", default="infra/prefect.yaml", help="Prefect deployment YAML")
    deploy_parser.add_argument("--name", action="append", default=[],
                               help="register only this deployment (repeatable); default: all")
    deploy_parser.set_defaults(func=cmd_deploy)

    run_parser = sub.add_parser(
        "run-deployment", help="start a deployment on the pipeline's Prefect server and wait for it",
        description="Start NAME (e.g. restore_archive/nightly-restore or train-all); a worker on its pool runs it.")
    run_parser.add_argument("name", help="<flow>/<deployment>, or a deployment name that is unique on the server")
    run_parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                            help="override a parameter (value read as YAML); repeatable")
    run_parser.add_argument("--no-wait", action="store_true", help="return once the run is scheduled")
    run_parser.add_argument("--timeout", type=float, default=None, help="seconds to wait at most (default: no limit)")
    run_parser.set_defaults(func=cmd_run_deployment)
    return deploy_parser, run_parser
