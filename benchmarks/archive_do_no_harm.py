"""Do no harm on whole photos, as an archive meets it: held-out photos, clean and degraded, through ``abair restore``.

Usage: ``python benchmarks/archive_do_no_harm.py --model BUNDLE_OR_MODELS_URI --suite configs/benchmark/small.yaml
[--images DIR] [--groups clean mild known] [--clean-weights 1 1.5] [--seed 0] [--work DIR] [--title "demo v1"]
[--no-write]``

The evaluation suites score 128 px crops, which is harsher than production: there the estimator reads crops of the
whole photo, and a bright, veiled corner of a clean photo is only one of them. Here every photo of the suite is
degraded whole by each task of ``--groups`` (the suite's own draw for ``--seed``), saved as an 8-bit PNG archive
``WORK/archive/<task>/<photo>.png``, and restored by the production flow (``abair restore ARCHIVE OUT --model M
--clean-weight W``, once per weight). Each output is scored against its reference (task ``clean``: the untouched
photo, an identical output capped at 100 dB) and joined with its manifest row's action. Prints, per weight, one row
per task and the issue's acceptance (clean mean >= 40 dB and every image >= 35 dB; every mild task no worse than its
input, within ``--margin``); rewrites the docs/BENCHMARKS.md section "Do no harm on whole photos: <title>".
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, NamedTuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
import pandas as pd
from clean_weight_sweep import CAP
from doc_sections import ROOT, update_section
from PIL import Image
from plausibility_gate import suite_photos

from abair_core.data.patches import to_uint8
from abair_core.evaluation.gate import load_gate
from abair_core.evaluation.runner import degrade_task_input, score_images

ACTIONS = ("restored", "passed_through_clean", "low_confidence")
CLEAN_MEAN_DB, CLEAN_WORST_DB = 40.0, 35.0  # the do-no-harm issue's acceptance for clean photos
GATE_CONFIG = ROOT / "configs/promotion/gate.yaml"


class ArchiveImage(NamedTuple):
    """One image of the synthesized archive: its task, its reference photo and the input's PSNR against it."""

    key: str
    group: str
    task: str
    reference: np.ndarray
    input_psnr: float


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True, help="models:/abair/<version>, models:/abair@<alias> or a bundle")
    parser.add_argument("--suite", required=True, help="configs/benchmark/<name>.yaml (its photos and tasks)")
    parser.add_argument("--images", default=None, help="the suite's photo folder or URI, if it names none")
    parser.add_argument("--groups", nargs="+", default=["clean", "mild", "known"], help="suite groups to archive")
    parser.add_argument("--clean-weights", nargs="+", type=float, default=[1.0],
                        help="the archive's prior on clean (abair restore --clean-weight), one run each")
    parser.add_argument("--mode", default=None, help="sw or oh (default: the restore config's)")
    parser.add_argument("--restore-config", default=None,
                        help="configs/restore/<name>.yaml for abair restore (e.g. estimator_crops: null)")
    parser.add_argument("--seed", type=int, default=0, help="the suite's degradation draw")
    parser.add_argument("--margin", type=float, default=None,
                        help="dB a mild task may fall below its input and still count as no worse (default: the "
                        "promotion gate's max_input_psnr_loss, configs/promotion/gate.yaml)")
    parser.add_argument("--work", default=None, help="folder for the archive and outputs (default: a temporary one)")
    parser.add_argument("--title", default=None, help="section title suffix (default: the model and suite)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    return parser.parse_args(argv)


def psnr(image: np.ndarray, reference: np.ndarray) -> float:
    return min(score_images(image, reference)["psnr"], CAP)


def write_archive(suite: Any, photos: dict[str, np.ndarray], groups: list[str], seed: int,
                  folder: Path) -> dict[str, ArchiveImage]:
    """Every photo degraded whole by every synthesized task of ``groups``, as 8-bit PNGs under ``folder``."""
    whole = suite.model_copy(update={"crop": None})
    images = {}
    for group, task in whole.tasks():
        if group not in groups or task.paired is not None:
            continue
        (folder / task.id).mkdir(parents=True, exist_ok=True)
        for name, photo in photos.items():
            degraded, reference = degrade_task_input(whole, task, name, photo, seed, 0)
            pixels = to_uint8(degraded)
            key = f"{task.id}/{Path(name).stem}.png"
            Image.fromarray(pixels).save(folder / key)
            images[key] = ArchiveImage(key, group, task.id, reference, psnr(pixels.astype(np.float32) / 255.0,
                                                                             reference))
    if not images:
        raise SystemExit(f"the suite has no synthesized task in the groups {groups}")
    return images


def run_restore(archive: Path, out: Path, model: str, clean_weight: float, mode: str | None,
                restore_config: str | None = None) -> None:
    """``abair restore`` as a user runs it (a fresh process: its own Prefect flow run and Dask cluster)."""
    command = [str(Path(sys.executable).with_name("abair")), "restore", archive.as_uri(), out.as_uri(),
               "--model", model, "--clean-weight", str(clean_weight)]
    if mode:
        command += ["--mode", mode]
    if restore_config:
        command += ["--restore-config", restore_config]
    done = subprocess.run(command, check=False, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout[-4000:]}")


def score_run(out: Path, images: dict[str, ArchiveImage], clean_weight: float) -> list[dict[str, Any]]:
    """One row per archived image: its task, input and output PSNR, and the manifest's status and action."""
    manifest = pd.read_parquet(out / "_abair" / "manifest.parquet").set_index("key")
    rows = []
    for key, image in images.items():
        row = manifest.loc[key] if key in manifest.index else None
        ok = row is not None and row["status"] == "ok"
        output = psnr(np.asarray(Image.open(out / key).convert("RGB"), np.float32) / 255.0, image.reference) if ok \
            else float("nan")
        rows.append({"weight": clean_weight, "group": image.group, "task": image.task, "key": key,
                     "input": image.input_psnr, "output": output,
                     "status": "missing" if row is None else row["status"],
                     "action": None if row is None else row["action"],
                     "top": None if row is None else row["top_class"]})
    return rows


def task_table(rows: list[dict[str, Any]]) -> str:
    """Markdown: per weight and task, the images, mean input and output PSNR, their difference, the worst output
    and the manifest's actions."""
    lines = [("| clean weight | group | task | images | input | output | output - input | worst output | restored | "
              "passed through | low confidence | not ok |"), "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for (weight, group, task), mine in grouped(rows).items():
        ok = [r for r in mine if r["status"] == "ok"]
        actions = Counter(r["action"] for r in ok)
        mean_in = statistics.fmean(r["input"] for r in ok) if ok else float("nan")
        mean_out = statistics.fmean(r["output"] for r in ok) if ok else float("nan")
        worst = min((r["output"] for r in ok), default=float("nan"))
        lines.append(f"| {weight:g} | {group} | {task} | {len(mine)} | {mean_in:.2f} | {mean_out:.2f} | "
                     f"{mean_out - mean_in:+.2f} | {worst:.2f} | " + " | ".join(str(actions[a]) for a in ACTIONS) +
                     f" | {len(mine) - len(ok)} |")
    return "\n".join(lines)


def grouped(rows: list[dict[str, Any]]) -> dict[tuple[float, str, str], list[dict[str, Any]]]:
    out: dict[tuple[float, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        out.setdefault((r["weight"], r["group"], r["task"]), []).append(r)
    return out


def acceptance(rows: list[dict[str, Any]], margin: float) -> list[str]:
    """The issue's do-no-harm targets, per weight: one line each, 'met' or 'not met' with the numbers."""
    lines = []
    for weight in dict.fromkeys(r["weight"] for r in rows):
        mine = [r for r in rows if r["weight"] == weight]
        clean = [r["output"] for r in mine if r["task"] == "clean"]
        if clean:
            mean, worst = statistics.fmean(clean), min(clean)
            met = mean >= CLEAN_MEAN_DB and worst >= CLEAN_WORST_DB
            lines.append(f"- clean weight {weight:g}: clean photos {'met' if met else 'not met'}: mean {mean:.2f} dB "
                         f"(>= {CLEAN_MEAN_DB:g}), worst {worst:.2f} dB (>= {CLEAN_WORST_DB:g}), {len(clean)} photos")
        for (w, group, task), task_rows in grouped(mine).items():
            if group != "mild":
                continue
            loss = statistics.fmean(r["output"] - r["input"] for r in task_rows)
            lines.append(f"- clean weight {weight:g}: {task} {'met' if loss >= -margin else 'not met'}: "
                         f"output - input {loss:+.2f} dB (no worse, within {margin:g} dB)")
    return lines


def report_body(rows: list[dict[str, Any]], margin: float) -> str:
    """The task table and, when clean or mild photos ran, the acceptance lines (a known-only run has no targets)."""
    verdicts = acceptance(rows, margin)
    return task_table(rows) + ("\n\nAcceptance (docs/DO_NO_HARM.md):\n\n" + "\n".join(verdicts) if verdicts else "")


def measure(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    suite, photos = suite_photos(args.suite, args.images)
    images = write_archive(suite, photos, args.groups, args.seed, work / "archive")
    rows = []
    for weight in args.clean_weights:
        out = work / f"restored-w{weight:g}"
        run_restore(work / "archive", out, args.model, weight, args.mode, args.restore_config)
        rows += score_run(out, images, weight)
    return rows


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="abair-archive-") as scratch:
        rows = measure(args, Path(args.work) if args.work else Path(scratch))
    margin = args.margin if args.margin is not None else load_gate(str(GATE_CONFIG)).max_input_psnr_loss
    body = report_body(rows, margin)
    print(body)
    if not args.no_write:
        title = args.title or f"{args.model}, {Path(args.suite).stem}"
        command = " ".join(["python benchmarks/archive_do_no_harm.py", "--model", args.model, "--suite", args.suite,
                            *(["--images", args.images] if args.images else []), "--groups", *args.groups,
                            "--clean-weights", *(f"{w:g}" for w in args.clean_weights), "--seed", str(args.seed),
                            *(["--mode", args.mode] if args.mode else []),
                            *(["--restore-config", args.restore_config] if args.restore_config else [])])
        note = (f"Model `{args.model}`, suite `{args.suite}`: each photo whole (not cropped), degraded with seed "
                f"{args.seed}, saved as 8-bit PNG and restored by `abair restore` "
                f"({args.restore_config or 'configs/restore/default.yaml'}). PSNR in dB against the reference "
                f"(clean: the untouched photo; identical = 100). Command: `{command}`. {dt.date.today().isoformat()}, "
                f"{time.perf_counter() - began:.0f} s.\n\n")
        update_section(ROOT / "docs/BENCHMARKS.md", f"Do no harm on whole photos: {title}", note + body + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
