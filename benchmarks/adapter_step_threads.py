"""Seconds per Phase II step in the thread that ran Phase I, against a task-runner thread.

Usage: ``python benchmarks/adapter_step_threads.py [--steps 20] [--repeats 3]``.
Why: the ``adapters`` flow used to submit every adapter to Prefect's thread pool, so on CPU each one
trained in a new thread after the flow's thread had already used OpenMP for Phase I. This measures that
cost: one Phase II step (``tiny`` model, one adapter trained, batch 8 of 64 px, L1 + AdamW, all cores as
torch threads) in four settings, each in a fresh interpreter (``--child``). Prints a Markdown table and
replaces the "Adapter steps by thread" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from doc_sections import ROOT, update_section

SECTION = "Adapter steps by thread"
SETTINGS = {
    "main-fresh": "the process's main thread, nothing run before",
    "main-after-main": "the main thread, after the main thread ran torch work (adapters now, one at a time)",
    "worker-fresh": "a worker thread, the main thread never ran torch work",
    "worker-after-main": "a worker thread, after the main thread ran torch work (adapters before, submitted)",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=3, help="fresh interpreters per setting")
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    parser.add_argument("--child", choices=sorted(SETTINGS), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def adapter_step_seconds(steps: int) -> float:
    """Mean seconds of one Phase II step (after 3 warm-up steps) in the calling thread."""
    import torch
    import torch.nn.functional as F

    from abair_core.models.factory import build_model
    from abair_core.models.lora import AdapterConfig, add_adapter, blend, inject_adapters
    from abair_core.training.phase2 import freeze_for_adapter

    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    model = build_model("tiny")
    inject_adapters(model, AdapterConfig())
    add_adapter(model, "noise")
    optimizer = torch.optim.AdamW(freeze_for_adapter(model, "noise"), lr=1e-3)
    degraded, clean, weights = torch.rand(8, 3, 64, 64), torch.rand(8, 3, 64, 64), torch.ones(8, 1)

    def step() -> None:
        with blend(model, ["noise"], weights):
            loss = F.l1_loss(model(degraded), clean)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    for _ in range(3):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def run_child(setting: str, steps: int) -> float:
    """One setting in this interpreter: optionally warm OpenMP in the main thread, then time a thread."""
    import torch

    if setting.endswith("after-main"):
        torch.set_num_threads(os.cpu_count() or 1)
        a = torch.rand(512, 512)
        for _ in range(50):
            a @ a  # what Phase I leaves behind: the main thread's OpenMP pool is up
    if setting.startswith("worker"):
        with ThreadPoolExecutor(1) as pool:
            return pool.submit(adapter_step_seconds, steps).result()
    return adapter_step_seconds(steps)


def measure(setting: str, steps: int) -> float:
    out = subprocess.run([sys.executable, __file__, "--child", setting, "--steps", str(steps)],
                         check=True, capture_output=True, text=True).stdout
    return float(json.loads(out.strip().splitlines()[-1])["seconds"])


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.child:
        print(json.dumps({"seconds": run_child(args.child, args.steps)}))
        return 0
    import torch

    rows = ["| setting | s/step (median) | runs | vs main-fresh |", "|---|---:|---|---:|"]
    base = None
    for setting, meaning in SETTINGS.items():
        runs = [measure(setting, args.steps) for _ in range(args.repeats)]
        median = statistics.median(runs)
        base = base or median
        rows.append(f"| {setting}: {meaning} | {median:.3f} | {', '.join(f'{r:.3f}' for r in runs)} "
                    f"| {median / base:.2f}x |")
    note = (f"{args.steps} timed steps after 3 warm-up steps, {args.repeats} fresh interpreters per setting, "
            f"{os.cpu_count()} CPUs as torch threads, {platform.machine()}, torch {torch.__version__}, "
            f"{dt.date.today().isoformat()}. Reproduce: `python benchmarks/adapter_step_threads.py`.")
    body = "\n".join(rows) + "\n\n" + note + "\n"
    print(body)
    if not args.no_doc:
        update_section(args.doc, SECTION, body)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
