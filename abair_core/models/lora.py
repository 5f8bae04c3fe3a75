"""LoRA adapters for convolutions: inject, add/remove, blend per sample, merge/unmerge.

One :class:`LoRAConv2d` wraps one frozen ``nn.Conv2d`` and owns one (A, B) pair per adapter in
``ModuleDict``s keyed by the adapter (degradation) name. A has the base kernel (in -> rank), B is a
1x1 (rank -> out) initialised to zero, so a fresh adapter changes nothing. Outside a
:func:`blend` context the wrapper computes the base convolution only. Inside it, every wrapper
adds ``sum_k p[n, k] * s_k * B_k(A_k(x))`` with all K adapters concatenated into one low-rank
path, which is exact (a convolution is linear in its weights) and differentiable in ``p``.
A batch sharing one weight vector may instead :func:`merge_adapters` into the base weight.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Mapping, Sequence

import torch
import torch.nn.functional as F
from pydantic import Field, PositiveInt
from torch import nn

from abair_core.config import StrictConfig

__all__ = [
    "AdapterConfig",
    "LoRAConv2d",
    "adapter_names",
    "adapter_parameters",
    "adapter_state_dict",
    "add_adapter",
    "blend",
    "freeze_all_but",
    "inject_adapters",
    "load_adapter_state_dict",
    "lora_modules",
    "merge_adapters",
    "remove_adapter",
    "unmerge_adapters",
]


class AdapterConfig(StrictConfig):
    """Where and how large the LoRA adapters are (shared by every adapter of one model)."""

    rank: PositiveInt = Field(4, le=256, description="Low-rank width r (paper: 4 was best).")
    alpha: float = Field(4.0, gt=0.0, description="Scaling numerator: the update is (alpha / rank) * B A.")
    targets: list[str] = Field(
        default_factory=lambda: ["qkv", "project_in", "project_out"],
        min_length=1,
        description="Conv names to wrap: a full dotted name or its last component(s).",
    )
    exclude: list[str] = Field(
        default_factory=list, description="Names (full, suffix or prefix of a dotted path) never wrapped."
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout on the adapter path's input.")

    @property
    def scaling(self) -> float:
        """The factor s = alpha / rank applied to every adapter's B A."""
        return self.alpha / self.rank


class LoRAConv2d(nn.Module):
    """A frozen ``nn.Conv2d`` plus named low-rank adapters; see the module docstring."""

    def __init__(self, base: nn.Conv2d, config: AdapterConfig) -> None:
        super().__init__()
        if base.groups != 1:
            raise ValueError(f"LoRA cannot wrap a grouped/depthwise conv (groups={base.groups})")
        if base.padding_mode != "zeros":
            raise ValueError(f"LoRA supports padding_mode='zeros' only, got {base.padding_mode!r}")
        self.base = base
        self.rank = config.rank
        self.alpha = config.alpha
        self.lora_a = nn.ModuleDict()
        self.lora_b = nn.ModuleDict()
        self.scaling: dict[str, float] = {}
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        self.base.weight.requires_grad_(False)
        if self.base.bias is not None:
            self.base.bias.requires_grad_(False)
        self._blend_names: tuple[str, ...] | None = None
        self._blend_p: torch.Tensor | None = None
        self._merged: list[tuple[str, float]] = []
        self._weight_backup: torch.Tensor | None = None

    def add(self, name: str) -> None:
        """Add adapter ``name``: A Kaiming-uniform with the base kernel, B zero (a no-op until trained)."""
        if name in self.lora_a:
            raise ValueError(f"adapter {name!r} already exists")
        base = self.base
        weight = base.weight
        a = nn.Conv2d(
            base.in_channels,
            self.rank,
            base.kernel_size,
            stride=base.stride,
            padding=base.padding,
            dilation=base.dilation,
            bias=False,
            device=weight.device,
            dtype=weight.dtype,
        )
        nn.init.kaiming_uniform_(a.weight, a=math.sqrt(5))
        b = nn.Conv2d(self.rank, base.out_channels, 1, bias=False, device=weight.device, dtype=weight.dtype)
        nn.init.zeros_(b.weight)
        self.lora_a[name] = a
        self.lora_b[name] = b
        self.scaling[name] = self.alpha / self.rank

    def remove(self, name: str) -> None:
        """Delete adapter ``name`` (refused while it is merged into the base weight)."""
        if any(n == name for n, _ in self._merged):
            raise RuntimeError(f"adapter {name!r} is merged; unmerge first")
        self._check_names([name])
        del self.lora_a[name]
        del self.lora_b[name]
        del self.scaling[name]

    @property
    def names(self) -> list[str]:
        """Adapter names in insertion order."""
        return list(self.lora_a.keys())

    @property
    def merged(self) -> bool:
        """True while adapters are folded into the base weight."""
        return bool(self._merged)

    def _check_names(self, names: Sequence[str]) -> None:
        missing = [n for n in names if n not in self.lora_a]
        if missing:
            raise KeyError(f"unknown adapter(s) {missing} (present: {self.names})")

    def set_blend(self, names: Sequence[str] | None, p: torch.Tensor | None) -> None:
        """Set (or clear with ``None``) the per-sample adapter weights; use :func:`blend` instead."""
        if names is not None:
            self._check_names(names)
        self._blend_names = None if names is None else tuple(names)
        self._blend_p = p

    def delta_weight(self, name: str) -> torch.Tensor:
        """The dense weight update s * B A of one adapter, shaped like the base weight."""
        a = self.lora_a[name].weight  # (r, C_in, kh, kw)
        b = self.lora_b[name].weight[:, :, 0, 0]  # (C_out, r)
        return self.scaling[name] * torch.einsum("or,rikl->oikl", b, a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self._blend_names is None or not self._blend_names:
            return out
        if self._merged:
            raise RuntimeError("cannot blend adapters while adapters are merged into the base weight")
        names = self._blend_names
        p = self._blend_p
        assert p is not None
        p = p.to(x.device)  # weights given as a list or made on the CPU work for a model on the GPU
        if p.shape[0] not in (1, x.shape[0]):
            raise ValueError(f"blend weights have {p.shape[0]} rows for a batch of {x.shape[0]}")
        a = torch.cat([self.lora_a[n].weight for n in names])  # (K*r, C_in, kh, kw)
        b = torch.cat([self.lora_b[n].weight for n in names], dim=1)  # (C_out, K*r, 1, 1)
        scaling = torch.tensor([self.scaling[n] for n in names], dtype=p.dtype, device=p.device)
        base = self.base
        z = F.conv2d(self.dropout(x), a, stride=base.stride, padding=base.padding, dilation=base.dilation)
        z = z * (p * scaling).to(z.dtype).repeat_interleave(self.rank, dim=1)[:, :, None, None]
        return out + F.conv2d(z, b)

    @torch.no_grad()
    def merge(self, names: Sequence[str], weights: Sequence[float]) -> None:
        """Fold ``W + sum_k w_k s_k B_k A_k`` into the base weight, keeping a copy to unmerge."""
        if self._merged:
            raise RuntimeError(f"adapters {[n for n, _ in self._merged]} are already merged; unmerge first")
        self._check_names(names)
        delta = sum(float(w) * self.delta_weight(n) for n, w in zip(names, weights, strict=True))
        if not isinstance(delta, torch.Tensor):
            return
        if not torch.isfinite(delta).all():
            raise ValueError(f"merging {list(names)} gives non-finite weights")
        self._weight_backup = self.base.weight.detach().clone()
        self.base.weight.add_(delta.to(self.base.weight.dtype))
        self._merged = [(n, float(w)) for n, w in zip(names, weights, strict=True)]

    @torch.no_grad()
    def unmerge(self) -> None:
        """Restore the saved base weight bit-identically (no-op when nothing is merged)."""
        if self._weight_backup is not None:
            self.base.weight.copy_(self._weight_backup)
        self._weight_backup = None
        self._merged = []

    def extra_repr(self) -> str:
        return f"rank={self.rank}, alpha={self.alpha}, adapters={self.names}"


def _matches_suffix(name: str, pattern: str) -> bool:
    return name == pattern or name.endswith("." + pattern)


def _is_excluded(name: str, patterns: Sequence[str]) -> bool:
    return any(_matches_suffix(name, p) or name.startswith(p + ".") for p in patterns)


def lora_modules(model: nn.Module) -> dict[str, LoRAConv2d]:
    """Every LoRA wrapper of ``model`` by its dotted module name (in module order)."""
    return {name: mod for name, mod in model.named_modules() if isinstance(mod, LoRAConv2d)}


def _wrappers(model: nn.Module) -> dict[str, LoRAConv2d]:
    found = lora_modules(model)
    if not found:
        raise ValueError("model has no LoRA wrappers; call inject_adapters first")
    return found


def inject_adapters(model: nn.Module, config: AdapterConfig) -> list[str]:
    """Replace every target ``nn.Conv2d`` of ``model`` by a :class:`LoRAConv2d`; return their names.

    Raises ``ValueError`` when a target is depthwise/grouped, when the model already has wrappers,
    or when nothing matched (listing the conv names seen); ``TypeError`` when a target is not a Conv2d.
    """
    if lora_modules(model):
        raise ValueError("model already has LoRA wrappers; inject once and use add_adapter")
    chosen: list[str] = []
    seen: set[str] = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Conv2d):
            seen.add(name.rsplit(".", 1)[-1])
        if not name or not any(_matches_suffix(name, t) for t in config.targets):
            continue
        if _is_excluded(name, config.exclude):
            continue
        if not isinstance(module, nn.Conv2d):
            raise TypeError(f"target {name!r} is a {type(module).__name__}; LoRA supports nn.Conv2d only")
        if module.groups != 1:
            raise ValueError(
                f"target {name!r} is a grouped/depthwise conv (groups={module.groups}); "
                "LoRA needs dense convolutions: remove it from targets or add it to exclude"
            )
        chosen.append(name)
    if not chosen:
        raise ValueError(
            f"no module matched targets {config.targets} (exclude {config.exclude}); "
            f"conv names seen: {sorted(seen)}"
        )
    for name in chosen:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, LoRAConv2d(getattr(parent, child), config))
    return chosen


def add_adapter(model: nn.Module, name: str) -> None:
    """Add a fresh (zero-effect) adapter ``name`` to every wrapper."""
    for wrapper in _wrappers(model).values():
        wrapper.add(name)


def remove_adapter(model: nn.Module, name: str) -> None:
    """Remove adapter ``name`` from every wrapper."""
    for wrapper in _wrappers(model).values():
        wrapper.remove(name)


def adapter_names(model: nn.Module) -> list[str]:
    """Names of the adapters present (in insertion order); ``[]`` for a model without wrappers."""
    wrappers = list(lora_modules(model).values())
    if not wrappers:
        return []
    names = wrappers[0].names
    if any(w.names != names for w in wrappers[1:]):
        raise RuntimeError("LoRA wrappers disagree on their adapters")
    return names


def adapter_parameters(model: nn.Module, name: str) -> list[nn.Parameter]:
    """The A and B parameters of adapter ``name`` across every wrapper."""
    params: list[nn.Parameter] = []
    for wrapper in _wrappers(model).values():
        wrapper._check_names([name])
        params.append(wrapper.lora_a[name].weight)
        params.append(wrapper.lora_b[name].weight)
    return params


def adapter_state_dict(model: nn.Module, name: str) -> dict[str, torch.Tensor]:
    """Adapter ``name``'s tensors only, keyed ``<module>.lora_a`` / ``<module>.lora_b`` (no adapter name).

    Keys do not contain the adapter's name, so a file can be loaded under any name.
    """
    tensors: dict[str, torch.Tensor] = {}
    for module_name, wrapper in _wrappers(model).items():
        wrapper._check_names([name])
        tensors[f"{module_name}.lora_a"] = wrapper.lora_a[name].weight.detach().contiguous().clone()
        tensors[f"{module_name}.lora_b"] = wrapper.lora_b[name].weight.detach().contiguous().clone()
    return tensors


@torch.no_grad()
def load_adapter_state_dict(model: nn.Module, name: str, tensors: Mapping[str, torch.Tensor]) -> None:
    """Load tensors from :func:`adapter_state_dict` as adapter ``name`` (added first if missing).

    Refuses missing, unexpected or mis-shaped keys before copying anything.
    """
    wrappers = _wrappers(model)
    expected = {f"{m}.lora_{ab}": (m, ab) for m in wrappers for ab in ("a", "b")}
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise KeyError(
            f"adapter tensors do not fit this model: missing {missing[:5]}, unexpected {unexpected[:5]}"
        )
    rank = next(iter(wrappers.values())).rank
    for key, (module_name, ab) in expected.items():
        wrapper = wrappers[module_name]
        base = wrapper.base
        want = (rank, base.in_channels, *base.kernel_size) if ab == "a" else (base.out_channels, rank, 1, 1)
        if tuple(tensors[key].shape) != want:
            raise ValueError(f"{key}: shape {tuple(tensors[key].shape)}, expected {want}")
    for wrapper in wrappers.values():
        if name not in wrapper.lora_a:
            wrapper.add(name)
    for key, (module_name, ab) in expected.items():
        layer = wrappers[module_name].lora_a[name] if ab == "a" else wrappers[module_name].lora_b[name]
        layer.weight.copy_(tensors[key])


def _as_blend_weights(p: torch.Tensor | Sequence[float], k: int) -> torch.Tensor:
    p = torch.as_tensor(p, dtype=torch.float32) if not isinstance(p, torch.Tensor) else p
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[1] != k:
        raise ValueError(f"blend weights must be (N, {k}) or ({k},), got {tuple(p.shape)}")
    return p


@contextlib.contextmanager
def blend(model: nn.Module, names: Sequence[str], p: torch.Tensor | Sequence[float]) -> Iterator[None]:
    """Within the context every wrapper adds ``sum_k p[n, k] s_k B_k A_k`` (p: (N, K) or (K,)).

    The previous blend (if any, for nesting) is restored on exit, also on error.
    """
    names = list(names)
    weights = _as_blend_weights(p, len(names))
    wrappers = list(_wrappers(model).values())
    for wrapper in wrappers:
        wrapper._check_names(names)
    previous = [(w._blend_names, w._blend_p) for w in wrappers]
    try:
        for wrapper in wrappers:
            wrapper.set_blend(names, weights)
        yield
    finally:
        for wrapper, (old_names, old_p) in zip(wrappers, previous, strict=True):
            wrapper.set_blend(old_names, old_p)


def merge_adapters(
    model: nn.Module, names: Sequence[str], weights: torch.Tensor | Sequence[float] | None = None
) -> None:
    """Fold ``W + sum_k w_k s_k B_k A_k`` into every wrapped base weight (weights: (K,), default ones)."""
    names = list(names)
    if weights is None:
        weights = [1.0] * len(names)
    values = [float(w) for w in torch.as_tensor(weights).reshape(-1).tolist()]
    if len(values) != len(names):
        raise ValueError(f"{len(values)} merge weights for {len(names)} adapters {names}")
    wrappers = list(_wrappers(model).values())
    if any(wrapper.merged for wrapper in wrappers):
        raise RuntimeError("adapters are already merged; call unmerge_adapters first")
    for wrapper in wrappers:
        wrapper._check_names(names)
    try:
        for wrapper in wrappers:
            wrapper.merge(names, values)
    except Exception:
        for wrapper in wrappers:
            wrapper.unmerge()
        raise


def unmerge_adapters(model: nn.Module) -> None:
    """Restore every wrapped base weight to its saved pre-merge copy (bit-identical)."""
    for wrapper in lora_modules(model).values():
        wrapper.unmerge()


def freeze_all_but(model: nn.Module, params: Sequence[nn.Parameter]) -> int:
    """Freeze every parameter of ``model`` except ``params``; return how many scalars stay trainable."""
    keep = {id(p) for p in params}
    own = {id(p) for p in model.parameters()}
    foreign = keep - own
    if foreign:
        raise ValueError(f"{len(foreign)} parameter(s) to keep trainable are not in the model")
    total = 0
    for param in model.parameters():
        trainable = id(param) in keep
        param.requires_grad_(trainable)
        total += param.numel() if trainable else 0
    return total
