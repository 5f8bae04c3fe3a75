"""The CUDA path checked and timed: CPU vs CUDA agreement, bf16 error, merged == unmerged, step times.

Usage: ``python benchmarks/cuda_check.py [--presets tiny small paper] [--json OUT.json]`` on a machine with a
CUDA GPU (CI and the development machine have none; the GPU path is otherwise never exercised).

1. Agreement: each preset's backbone (with two random LoRA adapters blended 0.7/0.3) runs the same
   128x128 input on the CPU in float32 and on the GPU in float32 and under the bf16 autocast the training
   loop uses; the table gives ||gpu - cpu|| / ||cpu||.
2. LoRA on the GPU: blended (unmerged) output vs the adapters merged into the weights, max |diff|; and a
   backbone saved from the GPU, loaded on the CPU, gives the CPU output bit for bit.
3. Speed: one training step (batch 8, 64x64, AdamW, bf16 autocast, as Phase I runs) and restoring a
   256x256 image (batch 1 and 8), medians over timed repeats after warm-up, with device synchronisation.
Prints a Markdown table; ``--json`` writes the numbers (the caller copies them into docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from abair_core.bundle import Restorer
from abair_core.components import load_backbone, save_backbone
from abair_core.models.estimator import EstimatorConfig
from abair_core.models.factory import (
    build_abair,
    build_model,
)
from abair_core.models.lora import (
    AdapterConfig,
    add_adapter,
    blend,
    inject_adapters,
    lora_modules,
    merge_adapters,
    unmerge_adapters,
)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["tiny", "small", "paper"])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--render", type=Path, default=None, help="print the table of a saved --json file")
    parser.add_argument("--device", default="cuda", help="cpu runs the same code as a smoke test")
    return parser.parse_args(argv)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.double().cpu() - ref.double()).norm() / ref.double().norm())


def synchronize() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def timed(fn, repeats: int) -> float:
    """Median seconds of ``fn`` after three warm-up calls, synchronising the GPU around each call."""
    for _ in range(3):
        fn()
    synchronize()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def backbone_with_adapters(preset: str) -> torch.nn.Module:
    """A seeded backbone with two adapters whose B matrices are random (fresh LoRA is an exact no-op)."""
    torch.manual_seed(0)
    model = build_model(preset)
    inject_adapters(model, AdapterConfig())
    for name in ("a", "b"):
        add_adapter(model, name)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_b." in name:
                param.normal_(0, 0.02)
    return model.eval()


def check_restorer(preset: str, device: str) -> float:
    """Max |difference| between the batch Restorer (estimator, SW merge, tiling) on ``device`` and on the CPU."""
    torch.manual_seed(0)
    model = build_abair(preset, AdapterConfig(), EstimatorConfig(), ["a", "b"], ["clean", "a", "b"])
    with torch.no_grad():
        for name, param in model.named_parameters():
            if ".lora_b." in name:
                param.normal_(0, 0.02)
    rgb = np.random.default_rng(2).random((300, 260, 3), dtype=np.float32)
    on_cpu = Restorer(model, mode="sw", tile=128, overlap=16, device="cpu").restore_array(rgb)
    on_device = Restorer(model, mode="sw", tile=128, overlap=16, device=device).restore_array(rgb)
    return float(np.abs(on_device.rgb - on_cpu.rgb).max())


def check_preset(preset: str, repeats: int, device: str) -> dict[str, float]:
    cuda = torch.device(device)
    model = backbone_with_adapters(preset)
    x = torch.rand(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    weights = [0.7, 0.3]
    with torch.no_grad(), blend(model, ["a", "b"], weights):
        ref = model(x)
    model.to(cuda)
    xc = x.to(cuda)
    with torch.no_grad():
        with blend(model, ["a", "b"], weights):
            fp32 = model(xc)
            with torch.autocast(cuda.type, dtype=torch.bfloat16):
                bf16 = model(xc).float()
        no_adapter = model(xc)
        merge_adapters(model, ["a", "b"], weights)
        merged = model(xc)
        unmerge_adapters(model)
    row = {"fp32_rel_err": relative_error(fp32, ref), "bf16_rel_err": relative_error(bf16, ref),
           "merged_max_diff": float((merged - fp32).abs().max()),
           "adapter_effect": float((fp32 - no_adapter).abs().max())}
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "backbone.safetensors")
        plain = build_model(preset).to(cuda)
        save_backbone(path, plain)
        loaded, _ = load_backbone(path)
        with torch.no_grad():
            row["save_load_max_diff"] = float((loaded.eval()(x) - plain.cpu().eval()(x)).abs().max())
    row["lora_wrappers"] = len(lora_modules(model))
    row["restorer_max_diff"] = check_restorer(preset, device)
    print(f"{preset}: agreement checked", flush=True)

    train = build_model(preset).to(cuda).train()
    optimizer = torch.optim.AdamW(train.parameters(), lr=1e-3)
    batch = torch.rand(8, 3, 64, 64, device=cuda)
    target = torch.rand(8, 3, 64, 64, device=cuda)

    def step() -> None:
        with torch.autocast(cuda.type, dtype=torch.bfloat16):
            loss = F.l1_loss(train(batch).float(), target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    row["train_step_s"] = timed(step, repeats)
    model.eval()
    for n in (1, 8):
        image = torch.rand(n, 3, 256, 256, device=cuda)
        with torch.no_grad(), blend(model, ["a", "b"], weights):
            row[f"restore_256_b{n}_fp32_s"] = timed(lambda image=image: model(image), repeats)
            with torch.autocast(cuda.type, dtype=torch.bfloat16):
                row[f"restore_256_b{n}_bf16_s"] = timed(lambda image=image: model(image), repeats)
    return row


def render(info: dict[str, str], rows: dict[str, dict[str, float]]) -> str:
    """The Markdown table of one run (what the docs section holds)."""
    lines = [f"{info['device']}, torch {info['torch']}", "",
             ("| preset | fp32 vs CPU | bf16 vs CPU | merged - blended (adapter effect) | GPU save -> CPU load "
              "| Restorer GPU - CPU | train step (8x64²) | 256² b1 fp32 / bf16 | 256² b8 bf16 (images/s) |"),
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for preset, r in rows.items():
        lines.append(
            f"| {preset} | {r['fp32_rel_err']:.1e} | {r['bf16_rel_err']:.1e} | {r['merged_max_diff']:.1e} "
            f"({r['adapter_effect']:.1e}) | {r['save_load_max_diff']:.1e} | {r['restorer_max_diff']:.1e} "
            f"| {r['train_step_s'] * 1000:.1f} ms | {r['restore_256_b1_fp32_s'] * 1000:.1f} / "
            f"{r['restore_256_b1_bf16_s'] * 1000:.1f} ms | {8 / r['restore_256_b8_bf16_s']:.0f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        data = json.loads(args.render.read_text())
        print(render(data["info"], data["rows"]))
        return 0
    if args.device == "cuda" and not torch.cuda.is_available():
        print("no CUDA device: nothing to check (this script is for a GPU machine)")
        return 1
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else args.device
    info = {"torch": torch.__version__, "device": name}
    print(f"{info['device']}, torch {info['torch']}", flush=True)
    rows = {}
    for preset in args.presets:
        rows[preset] = check_preset(preset, args.repeats, args.device)
        print(f"{preset}: {json.dumps(rows[preset])}", flush=True)
        if args.json:
            args.json.write_text(json.dumps({"info": info, "rows": rows}, indent=2))
    print(render(info, rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
