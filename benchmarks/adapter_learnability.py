"""Can a new degradation's adapter learn on a given frozen backbone, and in how many steps?

Usage::

    python benchmarks/adapter_learnability.py --bundle <bundle folder> --photos abair-work/samples/train \
        --holdout abair-work/samples/holdout --types jpeg bit_depth snow --steps 250 1000

For each type (its training range and evaluation task from ``configs/degradations/added/<type>.yaml``)
it synthesizes single-degradation and clean patches from the training photos, trains one LoRA adapter
on the bundle's frozen backbone for each step count (Phase II exactly as ``abair add-degradation``
runs it), and scores held-out crops: the input, the backbone alone and backbone + the new adapter
(the "oracle" of that task). Prints a Markdown table and replaces the "Adapter learnability" section
of docs/BENCHMARKS.md (``--section`` picks another).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import torch
import torch.nn.functional as F
from doc_sections import ROOT, update_section
from plausibility_gate import bundle_dir

from abair_core.bundle import load_bundle
from abair_core.components import load_backbone
from abair_core.config import load_yaml
from abair_core.data.patches import PatchSet
from abair_core.data.synthesis import PatchCounts, SynthesisConfig, synthesize_patches
from abair_core.degradations.composite import apply_sequence
from abair_core.degradations.registry import build_degradation
from abair_core.evaluation.images import load_images
from abair_core.metrics import psnr
from abair_core.models.lora import AdapterConfig, adapter_names, add_adapter, blend, inject_adapters
from abair_core.training.batches import adapter_batches
from abair_core.training.config import AdapterSchedule
from abair_core.training.loop import run_training, select_device
from abair_core.training.phase2 import train_adapter
from abair_core.training.warm_start import copy_adapter, pick_warm_start, score_adapters_on

SECTION = "Adapter learnability"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", required=True,
                        help="bundle folder or models:/ URI whose frozen backbone the adapters train on")
    parser.add_argument("--photos", required=True, help="training photo folder/URI")
    parser.add_argument("--holdout", required=True, help="held-out photo folder/URI (scored crops)")
    parser.add_argument("--types", nargs="+", default=["jpeg", "bit_depth", "snow"])
    parser.add_argument("--steps", nargs="+", type=int, default=[250, 1000])
    parser.add_argument("--lr", type=float, default=2e-3)
    parser.add_argument("--crop", type=int, default=128)
    parser.add_argument("--crops-per-image", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--warm-start", nargs="+", choices=["zero", "best"], default=["zero"],
                        help="start each new adapter at zero (the paper) and/or from the bundle's adapter that "
                             "restores the new type's training patches best (abair_core.training.warm_start)")
    parser.add_argument("--rank", type=int, default=None,
                        help="train the new adapter at this rank on the bare backbone (old adapters dropped)")
    parser.add_argument("--alpha", type=float, default=None, help="with --rank/--targets: LoRA alpha (default rank)")
    parser.add_argument("--targets", nargs="+", default=None,
                        help="with a bare backbone: the convs to wrap (default: the recipe's qkv project_in project_out)")
    parser.add_argument("--full", action="store_true",
                        help="fine-tune every backbone weight instead of an adapter: what no adapter shape can beat")
    parser.add_argument("--doc", default=str(ROOT / "docs/BENCHMARKS.md"))
    parser.add_argument("--section", default=SECTION)
    return parser.parse_args(argv)


def held_out_pairs(photos: dict[str, np.ndarray], spec: dict, crop: int, per_image: int) -> list[tuple]:
    """(degraded, clean) crops of every held-out photo, degraded by the evaluation spec (seeded)."""
    degradation = build_degradation(dict(spec))
    rng = np.random.default_rng(0)
    pairs = []
    for photo in photos.values():
        for _ in range(per_image):
            y, x = (int(rng.integers(0, s - crop + 1)) for s in photo.shape[:2])
            clean = photo[y:y + crop, x:x + crop]
            degraded = np.round(apply_sequence(clean, [degradation], rng).image * 255) / 255
            pairs.append((degraded.astype(np.float32), clean))
    return pairs


@torch.no_grad()
def mean_psnr(backbone: torch.nn.Module, pairs: list[tuple], adapter: str | None) -> float:
    """Mean PSNR of the backbone's output (with ``adapter`` fully on, when given) against the clean crops."""
    scores = []
    for degraded, clean in pairs:
        x = torch.from_numpy(degraded).permute(2, 0, 1)[None]
        if adapter is None:
            y = backbone(x)
        else:
            with blend(backbone, [adapter], torch.ones(1, 1)):
                y = backbone(x)
        scores.append(psnr(y.clamp(0, 1)[0].permute(1, 2, 0).numpy(), clean))
    return float(np.mean(scores))


def bare_backbone(bundle: str, rank: int | None, alpha: float | None, targets: list[str] | None) -> torch.nn.Module:
    """The bundle's frozen backbone without its adapters, with LoRA slots of the given rank and targets.

    Lets one ask whether a larger adapter (rank) or one on other convolutions (targets, e.g. the full-resolution
    3x3 ``patch_embed`` and ``output``) can learn a type the recipe's adapters cannot.
    """
    backbone, _ = load_backbone(str(Path(bundle_dir(bundle)) / "backbone.safetensors"))
    fields = {"rank": rank or 4, "alpha": alpha or float(rank or 4)}
    if targets:
        fields["targets"] = targets
    inject_adapters(backbone, AdapterConfig(**fields))
    return backbone.eval()


def fine_tune_backbone(backbone: torch.nn.Module, name: str, patches: PatchSet, schedule: AdapterSchedule) -> None:
    """Train every weight of ``backbone`` on Phase II's batches of ``name`` (same loss, steps and lr as an adapter)."""
    params = list(backbone.parameters())
    for param in params:
        param.requires_grad_(True)

    def loss_fn(batch):
        l1 = F.l1_loss(backbone(batch.degraded).float(), batch.clean)
        return l1, {"l1": float(l1.detach())}

    def make_batches(start: int):
        return adapter_batches(patches, name, schedule.batch_size, schedule.patch_size, schedule.seed,
                               schedule.identity_share(name), start)

    backbone.train()
    run_training(f"full-{name}", params, {"backbone": backbone}, loss_fn, make_batches, schedule,
                 select_device("cpu"), None, None)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    custom = args.rank is not None or args.targets is not None or args.full
    base = bare_backbone(args.bundle, args.rank, args.alpha, args.targets) if custom else \
        load_bundle(bundle_dir(args.bundle)).backbone.eval()
    train_photos, holdout = load_images(args.photos), load_images(args.holdout)
    rows = []
    for name in args.types:
        spec = load_yaml(ROOT / f"configs/degradations/added/{name}.yaml")
        config = SynthesisConfig(patch_size=80, counts=PatchCounts(composite=0, single=12, sequence=0, clean=10))
        training = {name: build_degradation(dict(spec["degradation"]))}
        patches = PatchSet.concatenate([synthesize_patches(p, k, training, ["clean", name], config)
                                        for k, p in train_photos.items()])
        pairs = held_out_pairs(holdout, spec["evaluation"], args.crop, args.crops_per_image)
        inputs = float(np.mean([psnr(d, c) for d, c in pairs]))
        alone = mean_psnr(base, pairs, None)
        old = adapter_names(base)
        scores = score_adapters_on(base, patches, name, old)
        best = pick_warm_start(scores, old)
        print(f"{name}: training patches {', '.join(f'{k} {v:.2f}' for k, v in scores.items())}; best start "
              f"{best or 'zero'}", flush=True)
        for start in args.warm_start:
            source = best if start == "best" else None
            for steps in args.steps:
                backbone = copy.deepcopy(base)
                torch.manual_seed(0)
                if source is None:
                    add_adapter(backbone, name)
                else:
                    copy_adapter(backbone, source, name)
                schedule = AdapterSchedule(steps=max(steps, 1), lr=args.lr, batch_size=8, patch_size=64,
                                           warmup_steps=15, clean_fraction=0.15, log_every=10**6,
                                           checkpoint_every=10**6)
                began = time.perf_counter()
                if steps and args.full:
                    fine_tune_backbone(backbone, name, patches, schedule)
                elif steps:
                    train_adapter(backbone, name, patches, schedule)
                seconds = time.perf_counter() - began
                adapted = mean_psnr(backbone.eval(), pairs, None if args.full else name)
                rows.append((name, source or "zero", steps, inputs, alone, adapted, seconds))
                print(f"{name} from {source or 'zero'}, {steps} steps: input {inputs:.2f}, backbone {alone:.2f}, "
                      f"adapter {adapted:.2f} ({seconds:.0f} s)", flush=True)
    targets = " ".join(args.targets or AdapterConfig().targets)
    if args.full:
        adapter = "every backbone weight fine-tuned (no adapter)"
    elif custom:
        adapter = f"rank {args.rank or 4}, targets {targets}, old adapters dropped"
    else:
        adapter = "the bundle's adapter shape"
    header = ("| type | adapter starts from | adapter steps | input | backbone alone | backbone + new adapter "
              "| gain vs input | train s |")
    lines = [header, "|---|---|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {n} | {w} | {s} | {i:.2f} | {a:.2f} | {d:.2f} | {d - i:+.2f} | {t:.0f} |"
              for n, w, s, i, a, d, t in rows]
    table = "\n".join(lines) + "\n"
    print(table)
    folder = Path(args.bundle)
    label = args.bundle if args.bundle.startswith("models:/") else \
        folder.parent.name if folder.name == "bundle" else folder.name
    note = (f"Bundle `{label}`, {len(train_photos)} training photos, "
            f"{len(holdout)} held-out photos x {args.crops_per_image} crops of {args.crop} px, lr {args.lr}, {adapter}, "
            f"batch 8, {args.threads} thread(s), torch {torch.__version__}, {dt.date.today().isoformat()}. "
            "PSNR (dB, RGB) against the clean crop; evaluation task = the spec file's `evaluation:` entry. "
            f"Reproduce: `python benchmarks/adapter_learnability.py --bundle <bundle> --photos {args.photos} "
            f"--holdout {args.holdout} --types {' '.join(args.types)} --steps {' '.join(map(str, args.steps))} "
            f"--warm-start {' '.join(args.warm_start)}"
            + (" --full" if args.full else "") + (f" --rank {args.rank}" if args.rank else "") + (f" --targets {' '.join(args.targets)}" if args.targets else "")
            + "`.\n\n")
    update_section(Path(args.doc), args.section, note + table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
