"""Peak memory and time of tiled inference against image size, one fresh process per size.

Usage: ``python benchmarks/tiled_memory.py --model-preset small --megapixels 4 16 --tile 256``.
Each size runs in its own interpreter (``--child``) so its peak RSS (``resource.getrusage``) is its own.
The image is synthetic (uniform noise from a seeded generator): memory and time do not depend on content.
Prints a Markdown table and replaces the "Tiled inference memory" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import torch
from doc_sections import ROOT, update_section

from abair_core.inference import restore_tiled

SECTION = "Tiled inference memory"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model-preset", default="small", help="preset name or YAML path for load_model_config"
    )
    parser.add_argument("--megapixels", type=float, nargs="+", default=[4.0, 16.0])
    parser.add_argument("--tile", type=int, default=256)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def image_shape(megapixels: float) -> tuple[int, int]:
    """A 4:3 landscape (height, width) with at least ``megapixels`` million pixels."""
    width = math.ceil(math.sqrt(megapixels * 1e6 * 4 / 3))
    return math.ceil(megapixels * 1e6 / width), width


def peak_rss_mib() -> float:
    """This process's peak resident set size so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


def measure(
    fn: Callable[[torch.Tensor], torch.Tensor],
    megapixels: float,
    tile: int,
    overlap: int,
    batch_size: int = 1,
    seed: int = 0,
) -> dict[str, float | int]:
    """Restore one synthetic image of ``megapixels`` tiled; seconds and peak RSS before/after."""
    height, width = image_shape(megapixels)
    generator = torch.Generator().manual_seed(seed)
    image = torch.rand(1, 3, height, width, generator=generator)
    before = peak_rss_mib()
    start = time.perf_counter()
    out = restore_tiled(fn, image, tile=tile, overlap=overlap, batch_size=batch_size)
    seconds = time.perf_counter() - start
    assert out.shape == image.shape
    return {
        "megapixels": megapixels,
        "height": height,
        "width": width,
        "tile": tile,
        "overlap": overlap,
        "seconds": seconds,
        "rss_before_mib": before,
        "peak_rss_mib": peak_rss_mib(),
    }


def build_model_fn(preset: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """The preset's model in eval mode, as a tensor -> tensor function."""
    from abair_core.models import build_model, load_model_config

    model = build_model(load_model_config(preset)).eval()

    def fn(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        return out[0] if isinstance(out, tuple | list) else out

    return fn


def run_child(args: argparse.Namespace) -> None:
    fn = build_model_fn(args.model_preset)
    row = measure(fn, args.megapixels[0], args.tile, args.overlap, args.batch_size, args.seed)
    print(json.dumps(row))


def run_sizes(args: argparse.Namespace) -> list[dict[str, float | int]]:
    rows = []
    for megapixels in args.megapixels:
        command = [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            "--model-preset",
            args.model_preset,
            "--megapixels",
            str(megapixels),
            "--tile",
            str(args.tile),
            "--overlap",
            str(args.overlap),
            "--batch-size",
            str(args.batch_size),
            "--seed",
            str(args.seed),
        ]
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"{megapixels} MP failed:\n{done.stderr}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(
            f"{megapixels} MP: {rows[-1]['seconds']:.1f} s, peak {rows[-1]['peak_rss_mib']:.0f} MiB",
            flush=True,
        )
    return rows


def render_table(rows: list[dict[str, float | int]], preset: str) -> str:
    lines = [
        "| megapixels | size (HxW) | tile / overlap | seconds | RSS before restore (MiB) | peak RSS (MiB) |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['megapixels']:g} | {r['height']}x{r['width']} | {r['tile']} / {r['overlap']} | "
            f"{r['seconds']:.1f} | {r['rss_before_mib']:.0f} | {r['peak_rss_mib']:.0f} |"
        )
    note = (
        f"\nModel preset `{preset}`, {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__} with {torch.get_num_threads()} threads, {dt.date.today().isoformat()}. "
        "One process per size; synthetic image; `python benchmarks/tiled_memory.py` reproduces it.\n"
    )
    return "\n".join(lines) + "\n" + note


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.child:
        run_child(args)
        return
    table = render_table(run_sizes(args), args.model_preset)
    print(table)
    if not args.no_doc:
        update_section(args.doc, SECTION, table)
        print(f"updated {args.doc}")


if __name__ == "__main__":
    main()
