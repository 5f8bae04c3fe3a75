"""The optimisation loop every phase shares: device, bf16 autocast, AdamW, warm-up + cosine, resume, callback."""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from abair_core.checkpoints import load_checkpoint, save_checkpoint
from abair_core.io.storage import exists
from abair_core.training.batches import Batch
from abair_core.training.config import OptimizerSchedule

log = logging.getLogger(__name__)

MetricsCallback = Callable[[int, dict[str, float]], None]
LossFn = Callable[[Batch], tuple[torch.Tensor, dict[str, float]]]
RESUME_KIND = "resume-state"


@dataclass
class TrainResult:
    """What a phase reports when it ends: steps run, the last logged metrics and wall time."""

    steps: int
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    resumed_from: int = 0
    device: str = "cpu"


def select_device(preference: str = "auto") -> torch.device:
    """CUDA when present (or asked for), else CPU."""
    if preference == "cuda" or (preference == "auto" and torch.cuda.is_available()):
        return torch.device("cuda")
    return torch.device("cpu")


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA; plain float32 on CPU (bf16 on this CPU is slower, not faster)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def learning_rate(step: int, schedule: OptimizerSchedule) -> float:
    """Linear warm-up then cosine decay from ``lr`` to ``min_lr`` over ``steps``."""
    if step < schedule.warmup_steps:
        return schedule.lr * (step + 1) / schedule.warmup_steps
    span = max(1, schedule.steps - schedule.warmup_steps)
    progress = min(1.0, (step - schedule.warmup_steps) / span)
    return schedule.min_lr + 0.5 * (schedule.lr - schedule.min_lr) * (1 + math.cos(math.pi * progress))


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    state = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, Any] = {}
    for idx, entry in state["state"].items():
        for key, value in entry.items():
            if torch.is_tensor(value):
                tensors[f"optim/{idx}/{key}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{idx}/{key}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _restore_optimizer(optimizer: torch.optim.Optimizer, tensors: Mapping[str, torch.Tensor],
                       meta: Mapping[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("optim/"):
            _, idx, key = name.split("/", 2)
            state.setdefault(int(idx), {})[key] = value
    for name, value in meta["scalars"].items():
        idx, key = name.split("/", 1)
        state.setdefault(int(idx), {})[key] = value
    optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


def save_resume_state(path: str, modules: Mapping[str, nn.Module], optimizer: torch.optim.Optimizer,
                      step: int, phase: str) -> None:
    """Everything needed to continue a phase: module weights, optimizer moments and the step."""
    tensors = {f"module/{prefix}/{k}": v.detach().cpu().contiguous()
               for prefix, module in modules.items() for k, v in module.state_dict().items()}
    optim_tensors, optim_meta = _flatten_optimizer(optimizer)
    tensors.update(optim_tensors)
    save_checkpoint(path, tensors, {"kind": RESUME_KIND, "phase": phase, "step": step, "optimizer": optim_meta})


def load_resume_state(path: str, modules: Mapping[str, nn.Module], optimizer: torch.optim.Optimizer,
                      phase: str) -> int:
    """Restore a state saved by :func:`save_resume_state`; returns the step to continue from."""
    tensors, meta = load_checkpoint(path, expect={"kind": RESUME_KIND, "phase": phase})
    for prefix, module in modules.items():
        head = f"module/{prefix}/"
        module.load_state_dict({k[len(head):]: v for k, v in tensors.items() if k.startswith(head)})
    _restore_optimizer(optimizer, tensors, meta["optimizer"])
    return int(meta["step"])


def run_training(
    phase: str,
    parameters: list[nn.Parameter],
    modules: Mapping[str, nn.Module],
    loss_fn: LossFn,
    make_batches: Callable[[int], Iterator[Batch]],
    schedule: OptimizerSchedule,
    device: torch.device,
    callback: MetricsCallback | None = None,
    resume_path: str | None = None,
) -> TrainResult:
    """Optimise ``parameters`` for ``schedule.steps`` steps, resuming from ``resume_path`` when it exists.

    ``make_batches(start_step)`` must yield the batch of each step deterministically, so a resumed run
    sees the same data as an uninterrupted one. Metrics (mean over the log window) go to ``callback``.
    """
    if not parameters:
        raise ValueError(f"{phase}: nothing to train (no trainable parameters)")
    optimizer = torch.optim.AdamW(parameters, lr=schedule.lr, weight_decay=schedule.weight_decay)
    start = 0
    if resume_path and exists(resume_path):
        start = load_resume_state(resume_path, modules, optimizer, phase)
        log.info("%s: resuming from step %d (%s)", phase, start, resume_path)
    for module in modules.values():
        module.train()
    window: dict[str, float] = {}
    count = 0
    last: dict[str, float] = {}
    began = time.perf_counter()
    window_began = began
    batches = make_batches(start)
    step = start
    for step in range(start, schedule.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, schedule)
        batch = next(batches).to(device)
        with autocast(device):
            loss, metrics = loss_fn(batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"{phase}: loss became {loss.item()} at step {step}")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(parameters, schedule.grad_clip)
        optimizer.step()
        metrics = {"loss": float(loss.detach()), **metrics}
        for key, value in metrics.items():
            window[key] = window.get(key, 0.0) + value
        count += 1
        done = step + 1
        if done % schedule.log_every == 0 or done == schedule.steps:
            now = time.perf_counter()
            last = {k: v / count for k, v in window.items()}
            last["lr"] = optimizer.param_groups[0]["lr"]
            last["steps_per_second"] = count / max(now - window_began, 1e-9)
            if callback is not None:
                callback(done, dict(last))
            window, count, window_began = {}, 0, now
        if resume_path and (done % schedule.checkpoint_every == 0 or done == schedule.steps):
            save_resume_state(resume_path, modules, optimizer, done, phase)
    for module in modules.values():
        module.eval()
    return TrainResult(steps=schedule.steps, metrics=last, seconds=time.perf_counter() - began,
                       resumed_from=start, device=device.type)
