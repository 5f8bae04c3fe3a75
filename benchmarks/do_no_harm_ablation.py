"""What the do-no-harm work costs on known tasks: one recipe trained twice, with and without it.

Issue 9 asks that known-task PSNR drop by no more than 0.2 dB "against the same model without this work".
``without`` is the recipe minus everything the do-no-harm work added: no clean or mild patches, no clean
regions in the Phase I composites, no clean samples in Phase II or III (the estimator keeps its ``clean``
output but never sees the class), no plausibility gates. Same photos, seeds and schedules otherwise.

Usage:
  1. ``python benchmarks/do_no_harm_ablation.py train --photos DIR --out DIR [--config configs/train/small.yaml]``
     synthesizes each variant's patches (a process pool) and trains its three phases (CUDA when present:
     minutes for `small` on one GPU, hours on 2 CPU cores), the variants side by side. Writes
     ``OUT/<variant>/components/`` (backbone, adapters, estimator files) and ``OUT/<variant>/summary.json``.
     ``--photos`` may hold the whole pool: the recipe's ``data.exclude`` (the benchmark's validation photos)
     still leaves those out, and the summary lists the photos trained on. ``--seed N``
     trains a replicate: the recipe's synthesis and phase seeds replaced by N (both variants alike).
     ``--set KEY=VALUE ...`` changes the recipe for both variants (dotted keys, YAML values), e.g.
     ``--set phase2.steps=750`` for a longer Phase II without a copy of the recipe file.
  2. ``python benchmarks/do_no_harm_ablation.py bundle --components OUT/<variant>/components --bundle DIR``
     assembles a bundle directory that ``abair evaluate --model DIR`` scores.
  3. ``python benchmarks/do_no_harm_ablation.py compare --with BUNDLE --without BUNDLE --images DIR
     [--suite configs/benchmark/small.yaml] [--out OUT]`` scores both bundles on the suite's known, clean and
     mild inputs (``with`` as trained, gates on; ``without`` with its gates off), prints per task the input,
     SW and OH PSNR of each and the difference, and rewrites its docs/BENCHMARKS.md section. Several bundles
     after ``--with`` and ``--without`` are replicates (paired by position): the table averages them and a
     second table gives each pair's known-average difference with their mean, standard deviation and 95% interval
     over the replicates (training randomness counted; its verdict against the bound). A third
     table tests issue 9's bound task by task: the with - without difference of every input (paired by image,
     seed and crop, replicates pooled) with its 95% interval, and whether the task is ``within`` the bound
     (``--bound``, 0.2 dB), ``over`` it, or ``unresolved`` by the suite. ``--rows FILE`` keeps every scored input.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import ROOT, update_section

VARIANTS = ("with", "without")
SECTION = "Do no harm: known-task cost"


def variant_overrides(variant: str) -> dict[str, Any]:
    """The recipe changes that turn the shipped recipe into the ``without`` variant (none for ``with``)."""
    if variant == "with":
        return {}
    if variant == "without":
        return {"synthesis": {"counts": {"clean": 0, "mild": 0}, "composite": {"clean_probability": 0.0}},
                "phase2": {"clean_fraction": 0.0, "clean_fraction_by_type": {}, "mild_fraction": 0.0},
                "phase3": {"clean_fraction": 0.0},
                "estimator": {"plausibility": {"enabled": False}}}
    raise ValueError(f"unknown variant {variant!r} (allowed: {', '.join(VARIANTS)})")


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``base`` with ``changes`` merged in, key by key; an empty mapping in ``changes`` replaces, not merges."""
    out = dict(base)
    for key, value in changes.items():
        out[key] = merge(out.get(key) or {}, value) if isinstance(value, dict) and value else value
    return out


def recipe_changes(items: list[str]) -> dict[str, Any]:
    """``--set`` items (``phase2.steps=750``: a dotted key, a YAML value) as one nested change to the recipe."""
    import yaml

    changes: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        parts = key.split(".")
        if not sep or not all(parts):
            raise ValueError(f"--set {item!r}: expected KEY=VALUE with a dotted key, e.g. phase2.steps=750")
        node = changes
        for part in parts[:-1]:
            if part in node and not isinstance(node[part], dict):
                raise ValueError(f"--set {item!r}: {part!r} is already set to a value")
            node = node.setdefault(part, {})
        node[parts[-1]] = yaml.safe_load(value)
    return changes


def variant_config(config_path: str, variant: str, photos: Path, quick: bool,
                   phase3_steps: int | None = None, seed: int | None = None, sets: list[str] | None = None) -> Any:
    """The validated TrainConfig of one variant, reading photos from ``photos``.

    ``seed`` replaces the recipe's synthesis seed and every phase's seed (a replicate of the same recipe: how
    far one training run moves the difference is what a 0.2 dB criterion has to be read against). ``sets``
    (``--set`` items) change the recipe before the variant's own overrides, so ``without`` still drops every
    do-no-harm knob.
    """
    from abair_core.config import load_yaml, validate_config
    from abair_core.training.config import TrainConfig

    data = merge(merge(load_yaml(config_path), recipe_changes(sets or [])), variant_overrides(variant))
    # the recipe's data.exclude stays: its validation photos are never trained on, even when ``photos`` is the
    # whole pool (a seed-1 run of 2026-12-04, finished on a folder holding them, trained its estimators on them)
    data = merge(data, {"name": f"{data['name']}-{variant}", "data": {"source": photos.resolve().as_uri()}})
    if phase3_steps:  # both variants alike: a shorter Phase III where CPU time is short
        data = merge(data, {"phase3": {"steps": phase3_steps}})
    if seed is not None:
        data = merge(data, {"name": f"{data['name']}-s{seed}", "synthesis": {"seed": seed},
                            **{p: {"seed": seed} for p in ("phase1", "phase2", "phase3")}})
    if quick:  # a smoke test of the whole script in seconds
        data = merge(data, {"model": "tiny", "synthesis": {"counts": {"composite": 2, "single": 1, "sequence": 1}},
                            **{p: {"steps": 3, "checkpoint_every": 1000} for p in ("phase1", "phase2", "phase3")}})
    label = f"{variant} variant" + (f", --set {' '.join(sets)}" if sets else "")
    return validate_config(data, TrainConfig, source=f"{config_path} ({label})")


def _synthesize(args: tuple[list[dict[str, Any]], Any, Any]) -> list[dict[str, Any]]:
    from abair_core.data.dataset import synthesize_chunk

    rows, config, plan = args
    return synthesize_chunk(rows, config, plan)


def train_variant(config_path: str, variant: str, photos: Path, out: Path, workers: int, quick: bool,
                  phase3_steps: int | None = None, seed: int | None = None, sets: list[str] | None = None) -> dict:
    """Synthesize and train one variant; component files and a summary land under ``out/variant``."""
    from abair_core.data.dataset import (
        finish_dataset,
        plan_dataset,
        plan_sources,
        read_source_rows,
        write_source_plan,
    )
    from abair_core.training.steps import train_adapter_file, train_backbone_file, train_estimator_file

    config = variant_config(config_path, variant, photos, quick, phase3_steps, seed, sets)
    work = (out / variant).resolve()
    components = work / "components"
    components.mkdir(parents=True, exist_ok=True)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    plan = plan_dataset(config, (work / "store").as_uri())
    table = plan_sources(config.data.source, config.data.include, plan, exclude=config.data.exclude)
    sources_uri, pending = write_source_plan(table, plan)
    rows = read_source_rows(sources_uri, pending) if pending else []  # a rerun finds every shard written
    chunks = [(rows[i::workers], config, plan) for i in range(workers) if rows[i::workers]]
    with ProcessPoolExecutor(workers) as pool:
        results = [row for part in pool.map(_synthesize, chunks) for row in part]
    dataset = finish_dataset(sources_uri, results, plan)
    timings["synthesis"] = time.perf_counter() - start
    manifest = dataset["manifest_uri"]

    def log(phase: str):
        def callback(step: int, metrics: dict[str, float]) -> None:
            if step % 500 == 0:
                shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items())
                print(f"[{variant}] {phase} step {step}: {shown}", flush=True)
        return callback

    summaries: dict[str, Any] = _previous_summaries(work)

    def run(key: str, path: Path, train) -> None:
        """Train one component unless its file is there (a rerun finishes what a cut-off run left)."""
        if path.exists():
            print(f"[{variant}] {key}: {path.name} exists, kept", flush=True)
            return
        t = time.perf_counter()
        summaries[key] = {**train(), "phase_seconds": time.perf_counter() - t}
        (work / "phases.json").write_text(json.dumps(summaries, indent=2, default=str))

    backbone = str(components / "backbone.safetensors")
    run("backbone", Path(backbone), lambda: train_backbone_file(config, manifest, backbone, log("phase1")))
    adapter_paths = {name: str(components / f"adapter-{name}.safetensors") for name in config.degradations}
    for name, path in adapter_paths.items():
        run(f"adapter.{name}", Path(path),
            lambda name=name, path=path: train_adapter_file(config, name, manifest, backbone, path,
                                                            log(f"phase2 {name}")))
    estimator = str(components / "estimator.safetensors")
    run("estimator", Path(estimator),
        lambda: train_estimator_file(config, manifest, adapter_paths, estimator, log("phase3")))
    timings["total"] = time.perf_counter() - start
    summary = {"variant": variant, "config": config_path, "overrides": variant_overrides(variant),
               "phase3_steps": config.phase3.steps, "seed": seed, "set": sets or [],
               "photos": config.data.source, "sources": dataset.get("sources"), "excluded": config.data.exclude,
               "patches": dataset.get("patches"), "dataset_hash": dataset["dataset_hash"], "timings": timings,
               "phases": summaries, "adapters": list(config.degradations)}
    (work / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    print(f"[{variant}] done: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()), flush=True)
    return summary


def _previous_summaries(work: Path) -> dict[str, Any]:
    path = work / "phases.json"
    return json.loads(path.read_text()) if path.exists() else {}


def run_train(args: argparse.Namespace) -> int:
    """Each variant in its own process (they share the GPU); a failed variant fails the command."""
    procs = {}
    for variant in args.variants:
        cmd = [sys.executable, __file__, "train-one", "--variant", variant, "--photos", str(args.photos),
               "--out", str(args.out), "--config", args.config, "--workers", str(args.workers)]
        cmd += ["--phase3-steps", str(args.phase3_steps)] if args.phase3_steps else []
        cmd += ["--seed", str(args.seed)] if args.seed is not None else []
        cmd += ["--set", *args.set] if args.set else []
        procs[variant] = subprocess.Popen(cmd + (["--quick"] if args.quick else []), env=os.environ.copy())
    codes = {variant: proc.wait() for variant, proc in procs.items()}
    print("exit codes:", codes)
    return 0 if not any(codes.values()) else 1


def run_bundle(args: argparse.Namespace) -> int:
    from abair_core.bundle import assemble_bundle

    summary = json.loads((args.components.parent / "summary.json").read_text())
    adapters = {n: str(args.components / f"adapter-{n}.safetensors") for n in summary["adapters"]}
    assemble_bundle(args.bundle, str(args.components / "backbone.safetensors"), adapters,
                    str(args.components / "estimator.safetensors"))
    print(f"bundle: {args.bundle}")
    return 0


def _means(rows: list[dict[str, Any]], key: str) -> dict[str, float]:
    tasks: dict[str, list[float]] = {}
    for row in rows:
        tasks.setdefault(row["task"], []).append(min(row[key], 100.0))
    return {task: statistics.fmean(values) for task, values in tasks.items()}


def oracle_means(model: Any, suite: Any, photos: dict[str, Any]) -> dict[str, float]:
    """Mean PSNR per known task with the task's true adapter (no estimator): the network's own quality.

    Against SW and OH it splits the do-no-harm cost into what the backbone and adapters lost and what the
    estimator's routing (the ``clean`` class taking known inputs) lost.
    """
    import torch

    from abair_core.evaluation.runner import score_images, task_inputs

    means = {}
    for group, task in suite.tasks():
        if group != "known" or task.paired is not None:
            continue
        parts = task.oracle_components()
        if not set(parts) <= set(model.adapter_names):
            continue
        weights = {name: 1.0 / len(parts) for name in parts}
        values = []
        for _, _, _, degraded, clean in task_inputs(suite, task, photos):
            x = torch.from_numpy(degraded).permute(2, 0, 1)[None].float()
            restored = model.restore(x, "oracle", weights)[0].permute(1, 2, 0).clamp(0, 1).numpy()
            values.append(score_images(restored, clean)["psnr"])
        means[task.id] = statistics.fmean(values)
    return means


def compare_table(with_rows: list[dict[str, Any]], without_rows: list[dict[str, Any]],
                  oracle: dict[str, dict[str, float]] | None = None) -> str:
    """Per task: input, without (gates off) and with (gates on) under SW and OH, and with - without.

    ``oracle`` ({"with": {task: psnr}, "without": ...}) adds the true-adapter difference of the known tasks.
    """
    groups = {r["task"]: r["group"] for r in with_rows}
    columns = {"input": _means(with_rows, "input"), "wo_sw": _means(without_rows, "sw_off"),
               "wo_oh": _means(without_rows, "oh_off"), "w_sw": _means(with_rows, "sw_on"),
               "w_oh": _means(with_rows, "oh_on")}
    oracle = oracle or {"with": {}, "without": {}}
    diff = {t: oracle["with"][t] - oracle["without"][t] for t in oracle["with"] if t in oracle["without"]}
    lines = ["| group | task | input | without: SW | OH | with: SW | OH | with - without: SW | OH | oracle |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    known = [t for t, g in groups.items() if g == "known"]

    def line(group: str, task: str, c: dict[str, float], oracle_diff: float | None) -> str:
        shown = f"{oracle_diff:+.2f}" if oracle_diff is not None else ""
        return (f"| {group} | {task} | {c['input']:.2f} | {c['wo_sw']:.2f} | {c['wo_oh']:.2f} | {c['w_sw']:.2f} "
                f"| {c['w_oh']:.2f} | {c['w_sw'] - c['wo_sw']:+.2f} | {c['w_oh'] - c['wo_oh']:+.2f} | {shown} |")

    for task, group in groups.items():
        lines.append(line(group, task, {k: v[task] for k, v in columns.items()}, diff.get(task)))
    if known:
        average = statistics.fmean(diff[t] for t in known) if all(t in diff for t in known) else None
        lines.append(line("known", "**average**", {k: statistics.fmean(v[t] for t in known)
                                                   for k, v in columns.items()}, average))
    return "\n".join(lines)


def worst_clean(rows: list[dict[str, Any]], state: str) -> str:
    clean = [r for r in rows if r["task"] == "clean"]
    if not clean:
        return "n/a"
    worst = min(clean, key=lambda r: r[f"sw_{state}"])
    return f"{min(worst['sw_' + state], 100.0):.2f} dB ({worst['image']}, read as {worst['top_' + state]})"


def known_differences(with_rows: list[dict[str, Any]], without_rows: list[dict[str, Any]]) -> dict[str, float]:
    """The known-task average of with - without (SW, OH) for one replicate pair."""
    known = sorted({r["task"] for r in with_rows if r["group"] == "known"})
    out = {}
    for state, key in (("sw", "sw"), ("oh", "oh")):
        w, wo = _means(with_rows, f"{key}_on"), _means(without_rows, f"{key}_off")
        out[state] = statistics.fmean(w[t] - wo[t] for t in known)
    return out


def paired_differences(with_rows: list[dict[str, Any]], without_rows: list[dict[str, Any]], task: str,
                       mode: str) -> list[float]:
    """with - without per input of ``task`` (``mode`` 'sw' or 'oh'), paired by image, seed and crop within each
    replicate (``measure`` lists every bundle's inputs in the same order)."""
    def picked(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return [r for r in rows if r["task"] == task]

    out = []
    for w, wo in zip(picked(with_rows), picked(without_rows), strict=True):
        if (w["image"], w["seed"], w["crop"]) != (wo["image"], wo["seed"], wo["crop"]):
            raise ValueError(f"{task}: with and without rows are not the same inputs")
        out.append(min(w[f"{mode}_on"], 100.0) - min(wo[f"{mode}_off"], 100.0))
    return out


def bound_verdict(differences: list[float], bound: float) -> tuple[float, float, float, str]:
    """Mean with - without, its 95% interval (Student t over the paired inputs) and the verdict against -bound:
    ``within`` when the whole interval lies above it, ``over`` when the whole interval lies below it, else
    ``unresolved`` (the suite is too small to tell)."""
    from scipy import stats

    mean = statistics.fmean(differences)
    n = len(differences)
    half = float(stats.t.ppf(0.975, n - 1)) * statistics.stdev(differences) / n ** 0.5 if n > 1 else float("inf")
    low, high = mean - half, mean + half
    verdict = "within" if low > -bound else "over" if high < -bound else "unresolved"
    return mean, low, high, verdict


def known_tasks(rows: list[dict[str, Any]]) -> list[str]:
    """The known tasks of scored rows, in suite order."""
    return list(dict.fromkeys(r["task"] for r in rows if r["group"] == "known"))


def interval_cell(values: list[float], bound: float) -> tuple[str, str]:
    """``mean [low, high]`` of ``values`` (95% Student t interval) and its verdict against -``bound``."""
    mean, low, high, verdict = bound_verdict(values, bound)
    return f"{mean:+.2f} [{low:+.2f}, {high:+.2f}]", verdict


def bound_lines(with_rows: list[dict[str, Any]], without_rows: list[dict[str, Any]], bound: float) -> str:
    """Per known task, with - without under OH and SW with a 95% interval over the paired inputs, and whether
    the task is within issue 9's bound (no more than ``bound`` dB lost), over it, or not resolved by the suite."""
    header = (f"| task | inputs | OH: with - without [95% interval] | OH vs -{bound:g} dB "
              f"| SW: with - without [95% interval] | SW vs -{bound:g} dB |")
    lines = [header, "|---|---:|---|---|---|---|"]
    for task in known_tasks(with_rows):
        diffs = {mode: paired_differences(with_rows, without_rows, task, mode) for mode in ("oh", "sw")}
        cells = [" | ".join(interval_cell(diffs[mode], bound)) for mode in ("oh", "sw")]
        lines.append(f"| {task} | {len(diffs['oh'])} | {' | '.join(cells)} |")
    return "\n".join(lines)


def replicate_lines(pairs: list[dict[str, float]], bound: float) -> str:
    """Per replicate pair, the known average's with - without, their mean and spread, and the bound tested over the
    replicates: a 95% interval (Student t) of the mean over training runs, so training randomness counts, which
    the input-by-input table (inputs pooled, models fixed) leaves out."""
    lines = ["| replicate | with - without, known average: SW | OH |", "|---|---:|---:|"]
    lines += [f"| {i + 1} | {p['sw']:+.2f} | {p['oh']:+.2f} |" for i, p in enumerate(pairs)]
    if len(pairs) > 1:
        sw, oh = [p["sw"] for p in pairs], [p["oh"] for p in pairs]
        lines.append(f"| mean ± sd | {statistics.fmean(sw):+.2f} ± {statistics.stdev(sw):.2f} "
                     f"| {statistics.fmean(oh):+.2f} ± {statistics.stdev(oh):.2f} |")
        cells = []
        for values in (sw, oh):
            _, low, high, verdict = bound_verdict(values, bound)
            cells.append(f"[{low:+.2f}, {high:+.2f}] {verdict}")
        lines.append(f"| 95% interval over the replicates, vs -{bound:g} dB | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def task_replicate_lines(pair_rows: list[tuple[list[dict[str, Any]], list[dict[str, Any]]]], bound: float) -> str:
    """Per known task, each replicate pair's mean with - without (SW, OH) and the 95% interval of their mean over the
    replicates with its verdict: which tasks lose at every training seed and which only at some."""
    header = (f"| task | SW per replicate | SW mean [95% over replicates] vs -{bound:g} dB "
              f"| OH per replicate | OH mean [95% over replicates] vs -{bound:g} dB |")
    lines = [header, "|---|---|---|---|---|"]
    for task in known_tasks(pair_rows[0][0]):
        cells = []
        for mode in ("sw", "oh"):
            means = [statistics.fmean(paired_differences(w, wo, task, mode)) for w, wo in pair_rows]
            cells.append(f"{', '.join(f'{m:+.2f}' for m in means)} | {' '.join(interval_cell(means, bound))}")
        lines.append(f"| {task} | {' | '.join(cells)} |")
    return "\n".join(lines)


def run_compare(args: argparse.Namespace) -> int:
    """Score each with/without pair (replicates pair by position); the table averages the pairs."""
    import torch
    from plausibility_gate import measure

    from abair_core.bundle import load_bundle
    from abair_core.evaluation.images import load_images
    from abair_core.evaluation.suite import load_suite

    if len(args.with_bundle) != len(args.without_bundle):
        raise SystemExit(f"--with names {len(args.with_bundle)} bundles and --without {len(args.without_bundle)}: "
                         "pass one of each per replicate, in the same order")
    suite = load_suite(args.suite).with_images(args.images)
    photos = load_images(suite.images, suite.include, suite.files, suite.max_images, suite.max_pixels, None)
    began = time.perf_counter()
    rows: dict[str, list[dict[str, Any]]] = {"with": [], "without": []}
    oracle: dict[str, dict[str, list[float]]] = {"with": {}, "without": {}}
    pair_rows = []  # each replicate's (with rows, without rows), when the known tasks are scored
    with torch.no_grad():
        for with_path, without_path in zip(args.with_bundle, args.without_bundle):
            pair = {}
            for name, path in (("with", with_path), ("without", without_path)):
                model = load_bundle(path)
                pair[name] = measure(model, suite, photos, args.groups, {})
                rows[name] += pair[name]
                for task, value in (oracle_means(model, suite, photos) if "known" in args.groups else {}).items():
                    oracle[name].setdefault(task, []).append(value)
            if "known" in args.groups:
                pair_rows.append((pair["with"], pair["without"]))
    oracle_mean = {name: {t: statistics.fmean(v) for t, v in tasks.items()} for name, tasks in oracle.items()}
    notes = []
    for variant in VARIANTS:
        summary_path = args.out / variant / "summary.json" if args.out else None
        if summary_path and summary_path.exists():
            summary = json.loads(summary_path.read_text())
            notes.append(f"`{variant}`: {summary.get('patches')} patches, Phase III {summary.get('phase3_steps')} steps")
    replicates = len(args.with_bundle)
    body = "\n".join([
        f"Issue 9's \"against the same model without this work\": `{args.config}`"
        + (f" with `--set {' '.join(args.set)}`" if args.set else "") + " trained twice "
        "(benchmarks/do_no_harm_ablation.py): `with` = the recipe as it is (clean and mild patches, clean regions "
        "painted into the composites where the recipe draws them, clean samples in Phases II and III, plausibility "
        "gates on); `without` = the same photos, seeds and schedules minus all of that (gates off). Scored on the "
        "validation photos of "
        f"`{args.suite}`, {time.perf_counter() - began:.0f} s. " + "; ".join(notes) + ("." if notes else "")
        + (f" {replicates} replicate pairs (each its own seeds); the table averages them." if replicates > 1 else ""),
        "", compare_table(rows["with"], rows["without"], oracle_mean), "",
        ("'oracle': with - without when each known task gets its true adapter (no estimator): what the backbone "
         "and adapters themselves lost; the rest of the SW and OH difference is the estimator's routing."), "",
        *([replicate_lines([known_differences(w, wo) for w, wo in pair_rows], args.bound), "",
           ("Known tasks over the replicates: each pair's mean with - without per task, and the 95% interval of "
            "their mean (training randomness counted, so wide with few replicates)."), "",
           task_replicate_lines(pair_rows, args.bound), ""] if replicates > 1 and pair_rows else []),
        *([("Known tasks against the bound, input by input (paired by image, seed and crop, replicates pooled): "
            f"`within` when the 95% interval of with - without lies above -{args.bound:g} dB, `over` when it lies "
            "below, `unresolved` when the suite cannot tell."), "",
           bound_lines(rows["with"], rows["without"], args.bound), ""] if "known" in args.groups else []),
        *([(f"Clean row, worst image under SW: with {worst_clean(rows['with'], 'on')}; "
           f"without {worst_clean(rows['without'], 'off')}."), ""] if "clean" in args.groups else [])])
    print(body)
    if args.rows:
        args.rows.write_text(json.dumps(rows, indent=1))
    if not args.no_write:
        update_section(ROOT / "docs" / "BENCHMARKS.md", f"{SECTION} ({args.title})", body)
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("train", "train-one"):
        p = sub.add_parser(name)
        p.add_argument("--photos", type=Path, required=True, help="folder of training photos (*.png)")
        p.add_argument("--out", type=Path, required=True)
        p.add_argument("--config", default="configs/train/small.yaml")
        p.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                       help="synthesis processes per variant")
        p.add_argument("--quick", action="store_true", help="tiny model, 3 steps per phase (smoke test)")
        p.add_argument("--phase3-steps", type=int, default=None, help="override Phase III steps (both variants)")
        p.add_argument("--seed", type=int, default=None,
                       help="replace the recipe's synthesis and phase seeds (a replicate; both variants)")
        p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                       help="change the recipe for both variants: dotted key, YAML value (phase2.steps=750)")
        if name == "train":
            p.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
        else:
            p.add_argument("--variant", choices=VARIANTS, required=True)
    p = sub.add_parser("bundle")
    p.add_argument("--components", type=Path, required=True)
    p.add_argument("--bundle", type=Path, required=True)
    p = sub.add_parser("compare")
    p.add_argument("--with", dest="with_bundle", type=Path, nargs="+", required=True,
                   help="bundle(s) of the with variant; several = replicates, paired with --without by position")
    p.add_argument("--without", dest="without_bundle", type=Path, nargs="+", required=True)
    p.add_argument("--suite", default="configs/benchmark/small.yaml")
    p.add_argument("--config", default="configs/train/small.yaml", help="the recipe both variants came from")
    p.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE",
                   help="the --set items both variants were trained with (named in the section)")
    p.add_argument("--images", default=None, help="photo folder URI when the suite names none")
    p.add_argument("--groups", nargs="+", default=["known", "clean", "mild"])
    p.add_argument("--out", type=Path, default=None, help="the train command's OUT (timings in the notes)")
    p.add_argument("--rows", type=Path, default=None, help="also write every scored input (JSON) here")
    p.add_argument("--bound", type=float, default=0.2, help="issue 9's known-task bound in dB (default 0.2)")
    p.add_argument("--title", default="small", help="section title suffix in docs/BENCHMARKS.md")
    p.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "train":
        return run_train(args)
    if args.command == "train-one":
        train_variant(args.config, args.variant, args.photos, args.out, args.workers, args.quick, args.phase3_steps,
                      args.seed, args.set)
        return 0
    if args.command == "bundle":
        return run_bundle(args)
    return run_compare(args)


if __name__ == "__main__":
    sys.exit(main())
