"""`abair add-degradation NAME [--spec FILE] [--replace | --remove]`: the CLI hook of :mod:`flows.add_degradation`.

``flows/cli.py`` wires it with ``add_add_degradation_parser(sub)``; the global ``--pipeline`` option
reaches the flow through ``args.pipeline``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def cmd_add_degradation(args: argparse.Namespace) -> int:
    """Run the flow; print the new challenger, the report folder and the report's Markdown."""
    from flows.add_degradation import add_degradation

    result = add_degradation(name=args.name, spec=args.spec, base_model=args.base_model,
                             train_config=args.train_config, replace=args.replace, remove=args.remove,
                             pipeline=getattr(args, "pipeline", None), suite=args.suite,
                             images=args.images)
    summary = {"bundle": {k: result["bundle"][k] for k in ("name", "version", "model_uri", "aliases", "components")},
               "base": result["base"], "report_dir": result["report_dir"], "lineage": result["lineage"]["mode"]}
    print(json.dumps(summary, indent=2, default=str))
    with open(result["report_files"]["markdown"], encoding="utf-8") as handle:
        print(handle.read())
    return 0


def add_add_degradation_parser(sub: Any) -> argparse.ArgumentParser:
    """Add the ``add-degradation`` sub-command to an argparse sub-parsers object; returns it."""
    p = sub.add_parser(
        "add-degradation",
        help="train one new (or, with --replace, a better) adapter, or --remove one, and retrain the estimator; "
             "registers a challenger",
        description="Synthesize data for degradation NAME only, train its adapter on the base bundle's frozen "
                    "backbone, retrain the estimator over every adapter, register the new bundle as challenger "
                    "(never champion) and write a before/after report. Promote it with `abair promote`.")
    p.add_argument("name", help="degradation id (snake_case): a built-in (jpeg, bit_depth, snow, ...), an "
                                "'abair.degradations' entry point, or the id a --spec plugin declares")
    p.add_argument("--spec", default=None,
                   help="added-degradation spec YAML (e.g. configs/degradations/added/jpeg.yaml; a plugin is "
                        "`type: package.module:Class`); default: the range in the base recipe's spec file")
    p.add_argument("--base-model", default="models:/abair@champion", help="the bundle to extend")
    p.add_argument("--train-config", default=None,
                   help="training YAML whose phase II/III schedules and synthesis counts replace the base's")
    mode = p.add_mutually_exclusive_group()
    mode.add_argument("--replace", action="store_true", help="retrain the existing adapter NAME instead of adding one")
    mode.add_argument("--remove", action="store_true",
                      help="drop adapter NAME: retrain only the estimator over the others; NAME's task becomes unseen")
    p.add_argument("--suite", default="configs/benchmark/demo.yaml", help="benchmark suite for before/after")
    p.add_argument("--images", default=None,
                   help="photo folder or URI to score the suite on (needed by suites that name none, such as "
                        "configs/benchmark/small.yaml with the 74-photo pool)")
    p.set_defaults(func=cmd_add_degradation)
    return p
