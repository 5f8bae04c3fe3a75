"""One model, its estimator's plausibility gates off and on: PSNR per task, clean worst image, what changed.

Usage: ``python benchmarks/plausibility_gate.py --model BUNDLE_OR_MODELS_URI --suite configs/benchmark/small.yaml
[--images DIR] [--title "small v10"] [--no-write]``

Every synthesized input of the suite (known, unseen, mixed, clean and mild groups) is restored in the SW and
OH modes with the gates as the bundle stored them switched off, then on (bars from the bundle's estimator
config, or ``configs/estimator/default.yaml`` when the bundle's gates are off). An input whose probabilities
the gates leave unchanged keeps its first outputs (same model, same input). Prints per task: input PSNR, SW
and OH without and with the gates, how many inputs had a class gated; the clean row's worst image; and
rewrites the docs/BENCHMARKS.md section "Plausibility gates: <title>".
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from doc_sections import ROOT, update_section

from abair_core.bundle import load_bundle
from abair_core.config import load_yaml
from abair_core.evaluation.images import load_images
from abair_core.evaluation.runner import score_images, task_inputs
from abair_core.evaluation.suite import load_suite
from abair_core.models.abair import ABAIR
from abair_core.models.plausibility import PlausibilityConfig
from tasks.sample_photos import resolve_photo_source

GROUPS = ("known", "unseen", "mixed", "clean", "mild")
DEFAULT_ESTIMATOR = ROOT / "configs" / "estimator" / "default.yaml"


def model_suite_parser(description: str) -> argparse.ArgumentParser:
    """The flags every one-model, one-suite script shares: --model, --suite, --images, --title, --no-write."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--model", required=True, help="bundle directory or models:/ URI")
    parser.add_argument("--suite", default="configs/benchmark/small.yaml")
    parser.add_argument("--images", default=None, help="photo folder URI when the suite names none")
    parser.add_argument("--title", default=None, help="section title suffix (default: the suite's name)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = model_suite_parser(__doc__.splitlines()[0])
    parser.add_argument("--groups", nargs="+", default=list(GROUPS), choices=GROUPS)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE",
                        help="override a gate setting, e.g. blur_max_sharpness=0.9 or expert_veto=clean (exploration)")
    return parser.parse_args(argv)


def bundle_dir(model: str) -> Path:
    """A local bundle directory for a path or a ``models:/`` URI (the registry of the default pipeline)."""
    if not model.startswith("models:/"):
        return Path(model)
    from tasks.pipeline_config import load_pipeline_config
    from tasks.registry import configure_mlflow, resolve_model

    configure_mlflow(load_pipeline_config(None))
    return resolve_model(model).bundle_dir


def suite_photos(suite_path: str, images: str | None) -> tuple[Any, dict[str, Any]]:
    """A suite and its clean photos (``images`` replaces the suite's; ``samples://`` is exported first)."""
    suite = load_suite(suite_path).with_images(images)
    if suite.images is None:
        raise SystemExit(f"{suite_path} names no photos: pass --images DIR")
    source = resolve_photo_source(suite.images, str(ROOT / "abair-work"))
    return suite, load_images(source, suite.include, suite.files, suite.max_images, suite.max_pixels, None)


def gate_configs(model: ABAIR, overrides: dict[str, Any] | None = None
                 ) -> tuple[PlausibilityConfig, PlausibilityConfig]:
    """(off, on): the bundle's bars switched off, and on (the shipped default bars when the bundle has none)."""
    stored = model.estimator.config.plausibility
    bars = stored.model_dump() if stored.enabled else load_yaml(DEFAULT_ESTIMATOR).get("plausibility", {})
    on = PlausibilityConfig.model_validate({**bars, **(overrides or {}), "enabled": True})
    return stored.model_copy(update={"enabled": False}), on


@torch.no_grad()
def restore_both(model: ABAIR, x: torch.Tensor) -> dict[str, Any]:
    probs = model.estimator.predict_proba(x)[0]
    return {"probs": probs, "sw": model.restore(x, "sw"), "oh": model.restore(x, "oh")}


def to_array(x: torch.Tensor) -> Any:
    return x[0].permute(1, 2, 0).clamp(0, 1).numpy()


def suite_inputs(suite: Any, photos: dict[str, Any], groups: Sequence[str]) -> Iterator[tuple[Any, ...]]:
    """Every synthesized input of the suite's unpaired tasks in ``groups``.

    Yields ``(group, task, photo key, seed, crop, degraded, clean, x)`` with ``x`` the (1, 3, H, W) input tensor.
    """
    for group, task in suite.tasks():
        if group not in groups or task.paired is not None:
            continue
        for key, seed, c, degraded, clean in task_inputs(suite, task, photos):
            yield group, task, key, seed, c, degraded, clean, torch.from_numpy(degraded).permute(2, 0, 1)[None].float()


def measure(model: ABAIR, suite: Any, photos: dict[str, Any], groups: list[str],
            overrides: dict[str, Any]) -> list[dict[str, Any]]:
    off, on = gate_configs(model, overrides)
    stored = model.estimator.config.plausibility
    rows = []
    for group, task, key, seed, c, degraded, clean, x in suite_inputs(suite, photos, groups):
        model.estimator.config.plausibility = off
        before = restore_both(model, x)
        model.estimator.config.plausibility = on
        probs = model.estimator.predict_proba(x)[0]
        changed = int(probs.argmax()) != int(before["probs"].argmax()) or not torch.allclose(
            probs, before["probs"], atol=0.01)
        after = restore_both(model, x) if changed else before
        row = {"group": group, "task": task.id, "image": key, "seed": seed, "crop": c,
               "gated": changed, "input": score_images(degraded, clean)["psnr"]}
        for name, outputs in (("off", before), ("on", after)):
            for mode in ("sw", "oh"):
                row[f"{mode}_{name}"] = score_images(to_array(outputs[mode]), clean)["psnr"]
            top = int(outputs["probs"].argmax())
            row[f"top_{name}"] = model.class_names[top]
        rows.append(row)
    model.estimator.config.plausibility = stored
    return rows


def table(rows: list[dict[str, Any]]) -> str:
    lines = ["| group | task | inputs | gated | input | SW off | SW on | OH off | OH on |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    tasks = list(dict.fromkeys((r["group"], r["task"]) for r in rows))
    for group, task in tasks:
        sel = [r for r in rows if r["task"] == task]

        def mean(key: str, sel: list[dict[str, Any]] = sel) -> str:
            return f"{statistics.fmean(min(r[key], 100.0) for r in sel):.2f}"

        lines.append(f"| {group} | {task} | {len(sel)} | {sum(r['gated'] for r in sel)} | {mean('input')} "
                     f"| {mean('sw_off')} | {mean('sw_on')} | {mean('oh_off')} | {mean('oh_on')} |")
    known = [r for r in rows if r["group"] == "known"]
    if known:
        def avg(key: str) -> float:
            per_task = {}
            for r in known:
                per_task.setdefault(r["task"], []).append(r[key])
            return statistics.fmean(statistics.fmean(v) for v in per_task.values())
        lines.append(f"| known | **average** | {len(known)} | {sum(r['gated'] for r in known)} | {avg('input'):.2f} "
                     f"| {avg('sw_off'):.2f} | {avg('sw_on'):.2f} | {avg('oh_off'):.2f} | {avg('oh_on'):.2f} |")
    return "\n".join(lines)


def clean_worst(rows: list[dict[str, Any]]) -> str:
    clean = [r for r in rows if r["task"] == "clean"]
    if not clean:
        return ""
    parts = []
    for state in ("off", "on"):
        worst = min(clean, key=lambda r: r[f"sw_{state}"])
        parts.append(f"gates {state}: {worst['sw_' + state]:.2f} dB ({worst['image']}, seed {worst['seed']}, "
                     f"crop {worst['crop']}, read as {worst['top_' + state]})")
    return "Clean row, worst image under SW: " + "; ".join(parts) + "."


#: how many of the inputs the gates moved the section lists (largest first)
SHOWN = 25


def changes(rows: list[dict[str, Any]]) -> list[str]:
    """Every input whose SW PSNR moved by more than 0.05 dB, largest first."""
    moved = [r for r in rows if r["gated"] and abs(r["sw_on"] - r["sw_off"]) > 0.05]
    moved.sort(key=lambda r: -abs(min(r["sw_on"], 100) - min(r["sw_off"], 100)))
    return [f"- {r['task']} {r['image']} s{r['seed']}c{r['crop']}: {r['top_off']} -> {r['top_on']}, SW "
            f"{min(r['sw_off'], 100):.2f} -> {min(r['sw_on'], 100):.2f} dB" for r in moved]


def parse_value(text: str) -> float | str | None:
    """A ``--set`` value: ``null``, a number (a bar) or a word (``gated_mass=clean_if_top``)."""
    if text == "null":
        return None
    try:
        return float(text)
    except ValueError:
        return text


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    directory = bundle_dir(args.model)
    model = load_bundle(directory)
    suite, photos = suite_photos(args.suite, args.images)
    began = time.perf_counter()
    overrides = {k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}
    rows = measure(model, suite, photos, args.groups, overrides)
    seconds = time.perf_counter() - began
    _, on = gate_configs(model, overrides)
    title = args.title or suite.name
    moved = changes(rows)
    body = "\n".join([
        (f"Model: `{args.model}` ({model.backbone.config.preset}, adapters {', '.join(model.adapter_names)}). "
        f"Suite `{args.suite}` ({len(photos)} photos, {suite.crops_per_image} crop(s) x {len(suite.seeds)} "
        f"seed(s)). Gates on: low light above highlights {on.low_light_max_highlights}, noise below sigma "
        f"{on.noise_min_sigma}, blur above sharpness {on.blur_max_sharpness}, haze below dark channel "
        f"{on.haze_min_dark_channel}, jpeg below blockiness {on.jpeg_min_blockiness}, bit depth above level fill "
        f"{on.bit_depth_max_level_fill}. Command: `python benchmarks/plausibility_gate.py --model {args.model} --suite "
        f"{args.suite}{' --images ' + args.images if args.images else ''}"
        f"{' --set ' + ' '.join(args.set) if args.set else ''}`. {dt.date.today()}, {seconds:.0f} s."),
        "", ("PSNR (dB); clean rows capped at 100 dB (identical output). 'gated': inputs whose probabilities "
        "the gates changed (top class, or any probability by more than 0.01)."), "", table(rows), "", clean_worst(rows), "",
        f"Inputs whose SW output moved by more than 0.05 dB ({len(moved)}{', the largest ' + str(SHOWN) if len(moved) > SHOWN else ''}):",
        "", *(moved[:SHOWN] or ["- none"]), ""])
    print(body)
    if not args.no_write:
        update_section(ROOT / "docs" / "BENCHMARKS.md", f"Plausibility gates: {title}", body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
