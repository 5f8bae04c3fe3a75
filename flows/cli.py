"""`abair …`: the command line. It parses arguments and calls one flow; nothing else lives here."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence

DEFAULT_MODEL = "models:/abair@champion"


def _print(result: object) -> None:
    if isinstance(result, (dict, list)):
        print(json.dumps(result, indent=2, default=str))
    elif result is not None:
        print(result)


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.demo import demo

    demo(train_config=args.config, pipeline=args.pipeline)
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from flows.train import train_all

    _print(train_all(train_config=args.config, pipeline=args.pipeline))
    return 0


def cmd_synthesize(args: argparse.Namespace) -> int:
    from flows.synthesize import synthesize

    _print(synthesize(train_config=args.config, pipeline=args.pipeline))
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from flows.baseline import train_baseline

    _print(train_baseline(train_config=args.config, pipeline=args.pipeline))
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from flows.restore_archive import RestoreRunFailed, restore_archive

    try:
        summary = restore_archive(
            src=args.src, dst=args.dst, model=args.model, mode=args.mode, include=args.include,
            pipeline=args.pipeline, restore_config=args.restore_config, min_confidence=args.min_confidence,
            reprocess_on_new_model=args.reprocess_on_new_model, clean_weight=args.clean_weight,
            tone_check=args.tone_check,
        )
    except RestoreRunFailed as exc:
        print(f"restore failed: {exc}", file=sys.stderr)
        return 1
    _print(summary)
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from flows.evaluate import evaluate

    _print(evaluate(model=args.model, suite=args.suite, pipeline=args.pipeline, images=args.images,
                    report_dir=args.report_dir))
    return 0


def cmd_models_list(args: argparse.Namespace) -> int:
    from flows.models import list_models

    print(list_models(pipeline=args.pipeline, prefix=args.prefix))
    return 0


def cmd_models_retune(args: argparse.Namespace) -> int:
    from flows.retune import retune

    try:
        result = retune(settings=args.settings, base_model=args.model, pipeline=args.pipeline)
    except (ValueError, FileExistsError) as exc:  # ConfigError is a ValueError: it names the file and key
        print(f"retune refused: {exc}", file=sys.stderr)
        return 2
    _print(result)
    return 0


def cmd_promote(args: argparse.Namespace) -> int:
    from flows.promote import promote

    result = promote(model_name=args.name, suite=args.suite, pipeline=args.pipeline, gate=args.gate)
    _print(result)
    return 0 if result.get("promoted") else 3


def cmd_rollback(args: argparse.Namespace) -> int:
    from flows.promote import rollback

    _print(rollback(model_name=args.name, pipeline=args.pipeline))
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The `abair` argument parser (one sub-command per flow)."""
    parser = argparse.ArgumentParser(prog="abair", description="Adaptive blind all-in-one image restoration.")
    parser.add_argument("--pipeline", default=None,
                        help="pipeline YAML (default: $ABAIR_PIPELINE or configs/pipeline/local.yaml)")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug output of the core library")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("demo", help="train the tiny model on bundled photos, restore a sample archive, evaluate")
    p.add_argument("--config", default="configs/train/demo.yaml")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("train", help="run train_all (synthesize, pretrain, adapters, estimator, bundle)")
    p.add_argument("--config", required=True, help="configs/train/<name>.yaml")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("synthesize", help="synthesize the training shards of a training config only")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_synthesize)

    p = sub.add_parser("baseline", help="train the all-in-one baseline (same budget, no adapters)")
    p.add_argument("--config", required=True)
    p.set_defaults(func=cmd_baseline)

    p = sub.add_parser("restore", help="restore every image under SRC into DST")
    p.add_argument("src", help="source URI prefix (folder or s3://bucket/prefix); never modified")
    p.add_argument("dst", help="output URI prefix; must not overlap SRC")
    p.add_argument("--model", default=DEFAULT_MODEL, help="models:/abair@<alias>, models:/abair/<version> or a bundle path")
    p.add_argument("--mode", default="sw", help="sw (blend adapters), oh (pick one) or an adapter id")
    p.add_argument("--include", default="**/*", help="glob of keys under SRC")
    p.add_argument("--restore-config", default=None, help="configs/restore/<name>.yaml")
    p.add_argument("--min-confidence", type=float, default=None,
                   help="pass images through unchanged (flagged for review) below this estimator confidence")
    p.add_argument("--clean-weight", type=float, default=None,
                   help="the archive's prior on clean: scale the odds of 'clean' (1 = as trained; 3 = mostly clean)")
    p.add_argument("--tone-check", action=argparse.BooleanOptionalAction, default=None,
                   help="pass an image through (flagged low_confidence) when the estimator reads it as clean at "
                        "contrast 0.85 or 1.15 (default: the restore config's tone_check)")
    p.add_argument("--reprocess-on-new-model", action="store_true",
                   help="redo outputs made by another model version")
    p.set_defaults(func=cmd_restore)

    p = sub.add_parser("evaluate", help="benchmark a bundle on a suite (tables, radar plot, MLflow metrics)")
    p.add_argument("--model", default="models:/abair@challenger")
    p.add_argument("--suite", default="configs/benchmark/demo.yaml")
    p.add_argument("--images", default=None, help="evaluate on this image folder/URI instead of the suite's")
    p.add_argument("--report-dir", default=None)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("models", help="inspect the model registry, retune a version")
    models_sub = p.add_subparsers(dest="models_command", required=True)
    q = models_sub.add_parser("list", help="versions, aliases, tags and headline metrics")
    q.add_argument("--prefix", default="abair")
    q.set_defaults(func=cmd_models_list)
    q = models_sub.add_parser("retune", help="register a challenger whose estimator has new inference settings "
                              "(sw_sharpness, tta, plausibility gates): same weights, no retraining")
    q.add_argument("--settings", required=True, help="configs/estimator/retune/<name>.yaml")
    q.add_argument("--model", default=DEFAULT_MODEL, help="the bundle version to retune (default: champion)")
    q.set_defaults(func=cmd_models_retune)

    p = sub.add_parser("promote", help="evaluate challenger vs champion and move champion if the gate passes")
    p.add_argument("--name", default="abair")
    p.add_argument("--suite", default="configs/benchmark/demo.yaml")
    p.add_argument("--gate", default="configs/promotion/gate.yaml")
    p.set_defaults(func=cmd_promote)

    from flows.add_degradation_cli import add_add_degradation_parser

    add_add_degradation_parser(sub)

    from flows.deploy_cli import add_deploy_parsers

    add_deploy_parsers(sub)

    p = sub.add_parser("rollback", help="move champion back to the previous champion version")
    p.add_argument("--name", default="abair")
    p.set_defaults(func=cmd_rollback)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `abair` console script."""
    args = build_parser().parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "abair_core")
    os.environ.setdefault("DASK_LOGGING__DISTRIBUTED", "warning")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if args.pipeline:
        os.environ["ABAIR_PIPELINE"] = args.pipeline
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
