"""`ABAIR`: the backbone with its degradation adapters, steered by the degradation estimator.

Every mode is one code path differing only in the adapter weights ``p`` (N, K_adapters):
``sw`` uses the estimator's probabilities, ``oh`` their arg-max as one-hot rows, ``oracle`` the
weights a caller knows to be right, and an adapter id that adapter alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from abair_core.models.backbone import RestormerBackbone
from abair_core.models.clean_prior import apply_clean_weight
from abair_core.models.estimator import DegradationEstimator
from abair_core.models.lora import adapter_names as present_adapters
from abair_core.models.lora import blend, merge_adapters, unmerge_adapters

__all__ = ["ABAIR", "RESTORE_MODES"]

RESTORE_MODES = ("sw", "oh", "oracle")

OracleWeights = torch.Tensor | Sequence[float] | Mapping[str, float]


class ABAIR(nn.Module):
    """Backbone (with injected adapters) + estimator; build it with ``build_abair``."""

    def __init__(
        self, backbone: RestormerBackbone, estimator: DegradationEstimator, adapter_names: Sequence[str]
    ) -> None:
        super().__init__()
        names = list(adapter_names)
        present = present_adapters(backbone)
        missing = [n for n in names if n not in present]
        if missing:
            raise ValueError(f"adapters {missing} are not in the backbone (present: {present})")
        classes = estimator.class_names
        unknown = [n for n in names if n not in classes[1:]]
        if unknown:
            raise ValueError(f"adapters {unknown} are not estimator classes {classes}")
        if len(set(names)) != len(names) or any(n in RESTORE_MODES for n in names):
            raise ValueError(f"adapter names must be unique and not a mode name {RESTORE_MODES}: {names}")
        self.backbone = backbone
        self.estimator = estimator
        self.adapter_names = names
        self.class_names = list(classes)
        self._class_index = [classes.index(n) for n in names]

    def forward_blended(self, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Backbone output with adapters blended per sample by p (N, K_adapters); differentiable in p."""
        if not self.adapter_names:
            return self.backbone(x)
        with blend(self.backbone, self.adapter_names, p):
            return self.backbone(x)

    forward = forward_blended

    def _oracle(self, oracle_weights: OracleWeights | None, n: int, like: torch.Tensor) -> torch.Tensor:
        if oracle_weights is None:
            raise ValueError("mode 'oracle' needs oracle_weights")
        if isinstance(oracle_weights, Mapping):
            unknown = sorted(set(oracle_weights) - set(self.adapter_names))
            if unknown:
                raise KeyError(f"oracle weights for unknown adapters {unknown} (known: {self.adapter_names})")
            oracle_weights = [float(oracle_weights.get(name, 0.0)) for name in self.adapter_names]
        w = torch.as_tensor(oracle_weights, dtype=like.dtype, device=like.device)
        if w.ndim == 1:
            w = w[None, :]
        k = len(self.adapter_names)
        if w.ndim != 2 or w.shape[1] != k or w.shape[0] not in (1, n):
            raise ValueError(f"oracle_weights must be ({n}, {k}) or ({k},), got {tuple(w.shape)}")
        return w.expand(n, k)

    def _plan(
        self, x: torch.Tensor, mode: str, oracle_weights: OracleWeights | None, clean_weight: float = 1.0
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Adapter weights (N, K_adapters) and the identity-path weight p_clean (N,) or None."""
        n, k = x.shape[0], len(self.adapter_names)
        if mode == "oracle":
            return self._oracle(oracle_weights, n, x), None
        if mode in self.adapter_names:
            w = torch.zeros(n, k, dtype=x.dtype, device=x.device)
            w[:, self.adapter_names.index(mode)] = 1.0
            return w, None
        if mode not in ("sw", "oh"):
            raise ValueError(
                f"unknown restore mode {mode!r} (allowed: {', '.join([*RESTORE_MODES, *self.adapter_names])})"
            )
        probs = apply_clean_weight(self.estimator.predict_proba(x).to(x.dtype), clean_weight)
        return self.plan_from_probabilities(probs, mode)

    def plan_from_probabilities(self, probs: torch.Tensor, mode: str) -> tuple[torch.Tensor, torch.Tensor]:
        """Blind (``sw``/``oh``) adapter weights (N, K_adapters) and identity weight p_clean (N,) from the
        estimator's probabilities (N, K), so a caller that already has them does not run the estimator twice."""
        if mode not in ("sw", "oh"):
            raise ValueError(f"a plan from probabilities needs a blind mode ('sw' or 'oh'), got {mode!r}")
        k = len(self.adapter_names)
        q = probs[:, self._class_index]
        if mode == "sw":
            # Clean as the arg-max passes the image through untouched (as the batch Restorer does);
            # otherwise the clean probability weights the identity path.
            p_clean = torch.where(probs.argmax(dim=1) == 0, torch.ones_like(probs[:, 0]), probs[:, 0])
            # sw_sharpness 1: the paper's soft weights; larger leans toward oh (scaled by the largest first,
            # so a high power cannot underflow every weight to 0)
            q = (q / q.amax(dim=1, keepdim=True).clamp_min(1e-12)) ** self.estimator.config.sw_sharpness
            return q / q.sum(dim=1, keepdim=True).clamp_min(1e-12), p_clean
        one_hot = torch.zeros_like(q)
        if k:
            one_hot.scatter_(1, q.argmax(dim=1, keepdim=True), 1.0)
        return one_hot, (probs.argmax(dim=1) == 0).to(probs.dtype)

    def weights_for(
        self, x: torch.Tensor, mode: str, oracle_weights: OracleWeights | None = None
    ) -> torch.Tensor:
        """Adapter weights (N, K_adapters) that ``restore(x, mode)`` applies, in ``adapter_names`` order.

        ``sw``: the estimator's non-clean probabilities of the adapter classes raised to the estimator's
        ``sw_sharpness`` (1: as they are) and renormalised to sum 1;
        ``oh``: one-hot of their arg-max; ``oracle``: the given weights (a (K,) or (N, K) tensor or a
        ``{adapter: weight}`` mapping); an adapter id: one-hot on it.
        """
        return self._plan(x, mode, oracle_weights)[0]

    @torch.no_grad()
    def restore(
        self,
        x: torch.Tensor,
        mode: str = "sw",
        oracle_weights: OracleWeights | None = None,
        merge: bool = True,
        clean_weight: float = 1.0,
    ) -> torch.Tensor:
        """Restore x (N, 3, H, W) in [0, 1], blindly (``sw``/``oh``) or with known weights; clamped to [0, 1].

        The ``clean`` class drives an identity path, so clean inputs are not harmed (do-no-harm: a
        restoration network always alters an image a little, and an archive holds many clean photos):
        ``sw`` returns x unchanged when ``clean`` is the arg-max, else ``p_clean * x + (1 - p_clean) *
        model(x)``; ``oh`` returns x unchanged when ``clean`` is the arg-max. ``oracle`` and a named adapter
        never take the identity path. ``clean_weight`` is the archive's prior on clean (blind modes only;
        :mod:`abair_core.models.clean_prior`).
        With ``merge`` and one weight row shared by every sample that needs the network (e.g. N=1),
        the adapters are folded into the weights for the pass (the bare backbone's cost) and unfolded.
        """
        weights, p_clean = self._plan(x, mode, oracle_weights, clean_weight)
        if p_clean is None:
            p_clean = torch.zeros(x.shape[0], dtype=x.dtype, device=x.device)
        needs_model = p_clean < 1.0
        out = x.clone()
        if bool(needs_model.any()):
            idx = needs_model.nonzero().flatten()
            xs, ws = x[idx], weights[idx]
            if merge and self.adapter_names and bool((ws == ws[:1]).all()):
                merge_adapters(self.backbone, self.adapter_names, ws[0])
                try:
                    ys = self.backbone(xs)
                finally:
                    unmerge_adapters(self.backbone)
            else:
                ys = self.forward_blended(xs, ws)
            pc = p_clean[idx][:, None, None, None]
            out[idx] = pc * xs + (1.0 - pc) * ys
        return out.clamp_(0.0, 1.0)
