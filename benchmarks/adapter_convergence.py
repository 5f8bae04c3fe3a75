"""Has Phase II converged? One adapter trained on a frozen backbone for several step counts and learning rates.

Each setting trains the recipe's adapter ``--adapter`` on the backbone file from the recipe's own dataset (Phase II
exactly as training runs it, only ``phase2.steps`` and ``phase2.lr`` replaced) and scores it on the suite's known
tasks whose true adapter it is: the input, the backbone alone and backbone + adapter (no estimator). An adapter
whose score still climbs from 250 to 1,000 steps has not converged, and a seed-to-seed comparison of such
adapters measures their luck: at the demo's old lr 0.002 the rain adapter learned streak removal in some seeds and
not in others (docs/DO_NO_HARM.md, "Where the known-task cost was"). Prints a Markdown table and replaces its
section of docs/BENCHMARKS.md.

Usage::

    python benchmarks/adapter_convergence.py --config configs/train/demo.yaml \
        --backbone OUT/with/components/backbone.safetensors --manifest OUT/with/store/datasets/*/manifest-*.parquet \
        --adapter rain --steps 250 1000 --lr 0.002 0.01 --suite configs/benchmark/small.yaml --images file:///photos

(OUT: a ``benchmarks/do_no_harm_ablation.py train-one`` output; any backbone file and the dataset manifest it was
trained from will do.)
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import ROOT, update_section

SECTION = "Adapter convergence"


def setting_config(config_path: str, steps: int, lr: float, seed: int | None) -> Any:
    """The recipe with Phase II's steps and learning rate (and, given, its seed) replaced."""
    from abair_core.config import load_yaml, validate_config
    from abair_core.training.config import TrainConfig

    data = load_yaml(config_path)
    data["phase2"] = {**data.get("phase2", {}), "steps": steps, "lr": lr, **({"seed": seed} if seed is not None else {})}
    return validate_config(data, TrainConfig, source=f"{config_path} (phase2 steps {steps}, lr {lr})")


def own_tasks(suite: Any, adapter: str) -> list[Any]:
    """The suite's synthesized known tasks whose true adapter is ``adapter`` alone."""
    return [task for group, task in suite.tasks()
            if group == "known" and task.paired is None and task.oracle_components() == [adapter]]


def score(backbone_path: str, adapter_path: str | None, adapter: str, suite: Any, tasks: list[Any],
          photos: dict[str, Any]) -> dict[str, dict[str, float]]:
    """Mean PSNR per task of the input and of the backbone (with the adapter folded in when given)."""
    import torch

    from abair_core.components import load_adapter, load_backbone
    from abair_core.evaluation.runner import score_images, task_inputs
    from abair_core.models.lora import merge_adapters

    backbone, fingerprint = load_backbone(backbone_path)
    if adapter_path is not None:
        load_adapter(adapter_path, backbone, fingerprint, name=adapter)
        merge_adapters(backbone, [adapter], torch.tensor([1.0]))
    backbone.eval()
    out = {}
    with torch.no_grad():
        for task in tasks:
            inputs, outputs = [], []
            for _, _, _, degraded, clean in task_inputs(suite, task, photos):
                x = torch.from_numpy(degraded).permute(2, 0, 1)[None].float()
                y = backbone(x)[0].permute(1, 2, 0).clamp(0, 1).numpy()
                inputs.append(score_images(degraded, clean)["psnr"])
                outputs.append(score_images(y, clean)["psnr"])
            out[task.id] = {"input": statistics.fmean(inputs), "output": statistics.fmean(outputs)}
    return out


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| steps | lr | task | input | backbone alone | backbone + adapter | gain over the backbone | train s |",
             "|---:|---:|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['steps']} | {r['lr']:g} | {r['task']} | {r['input']:.2f} | {r['backbone']:.2f} | {r['adapter']:.2f} "
              f"| {r['adapter'] - r['backbone']:+.2f} | {r['seconds']:.0f} |" for r in rows]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> str:
    import torch

    from abair_core.evaluation.images import load_images
    from abair_core.evaluation.suite import load_suite
    from abair_core.training.steps import train_adapter_file

    torch.set_num_threads(args.threads)
    suite = load_suite(args.suite).with_images(args.images)
    tasks = own_tasks(suite, args.adapter)
    if not tasks:
        raise SystemExit(f"{args.suite} has no known task whose true adapter is {args.adapter!r}")
    photos = load_images(suite.images, suite.include, suite.files, suite.max_images, suite.max_pixels, None)
    manifest = args.manifest if "://" in args.manifest else Path(args.manifest).resolve().as_uri()
    alone = score(args.backbone, None, args.adapter, suite, tasks, photos)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for steps in args.steps:
            for lr in args.lr:
                config = setting_config(args.config, steps, lr, args.seed)
                path = str(Path(tmp) / f"adapter-{steps}-{lr:g}.safetensors")
                began = time.perf_counter()
                train_adapter_file(config, args.adapter, manifest, args.backbone, path)
                seconds = time.perf_counter() - began
                for task, values in score(args.backbone, path, args.adapter, suite, tasks, photos).items():
                    rows.append({"steps": steps, "lr": lr, "task": task, "input": values["input"],
                                 "backbone": alone[task]["output"], "adapter": values["output"], "seconds": seconds})
                print(table(rows[-len(tasks):]).splitlines()[-1], flush=True)
    seed = args.seed if args.seed is not None else "of the recipe"
    header = (f"Adapter `{args.adapter}` of `{args.config}` trained on `{args.backbone}` from `{args.manifest}` "
              f"(`python benchmarks/adapter_convergence.py`, Phase II seed {seed}, {args.threads} torch thread(s)); "
              f"scored on `{args.suite}` with the true adapter (no estimator).")
    body = "\n".join([header, "", table(rows), ""])
    return body


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="configs/train/demo.yaml", help="the recipe (Phase II settings)")
    parser.add_argument("--backbone", required=True, help="backbone file (frozen)")
    parser.add_argument("--manifest", required=True, help="dataset manifest (path or URI) the backbone came from")
    parser.add_argument("--adapter", required=True, help="which of the recipe's degradations")
    parser.add_argument("--steps", nargs="+", type=int, default=[250, 1000])
    parser.add_argument("--lr", nargs="+", type=float, default=[0.002, 0.01])
    parser.add_argument("--seed", type=int, default=None, help="replace the recipe's Phase II seed")
    parser.add_argument("--suite", default="configs/benchmark/small.yaml")
    parser.add_argument("--images", default=None, help="photo folder URI when the suite names none")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--title", default="demo", help="section title suffix in docs/BENCHMARKS.md")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    body = run(args)
    print(body)
    if not args.no_write:
        update_section(ROOT / "docs" / "BENCHMARKS.md", f"{SECTION} ({args.title})", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
