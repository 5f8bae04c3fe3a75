"""Phase II batches: the adapter's own degradation, a clean identity share and a mild share of its own type."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from abair_core.data.patches import PatchSet
from abair_core.training.batches import adapter_batches
from abair_core.training.config import TrainConfig

#: every patch is one flat grey level, so a drawn sample names its source after any crop or flip
LEVELS = {("single", "noise"): 40, ("single", "blur"): 80, ("clean", "clean"): 120,
          ("mild", "noise"): 160, ("mild", "blur"): 200}


def _flat_patches(copies: int = 3) -> PatchSet:
    keys = [k for k in LEVELS for _ in range(copies)]
    degraded = np.stack([np.full((16, 16, 3), LEVELS[k], np.uint8) for k in keys])
    return PatchSet(degraded=degraded, clean=np.zeros_like(degraded), labels=np.zeros((len(keys), 16, 16), np.uint8),
                    kinds=[k[0] for k in keys], names=[k[1] for k in keys],
                    label_names=["clean", "noise", "blur"])


def _drawn(steps: int, **kwargs) -> list[tuple[str, str]]:
    by_level = {v: k for k, v in LEVELS.items()}
    drawn = []
    for _, batch in zip(range(steps), adapter_batches(_flat_patches(), "noise", 16, 8, 5, **kwargs)):
        levels = torch.round(batch.degraded[:, 0, 0, 0] * 255).int().tolist()
        drawn += [by_level[v] for v in levels]
    return drawn


def test_the_mild_share_draws_only_the_adapters_own_type_at_its_share():
    drawn = _drawn(50, clean_fraction=0.1, mild_fraction=0.2)  # 800 samples
    share = {k: drawn.count(k) / len(drawn) for k in set(drawn)}
    assert set(share) == {("single", "noise"), ("clean", "clean"), ("mild", "noise")}  # never blur, single or mild
    assert abs(share[("clean", "clean")] - 0.1) < 0.04
    assert abs(share[("mild", "noise")] - 0.2) < 0.05
    assert abs(share[("single", "noise")] - 0.7) < 0.06


def test_no_mild_share_draws_exactly_what_the_recipes_before_it_drew():
    patches = _flat_patches()
    patches.degraded = np.stack([np.full((16, 16, 3), i, np.uint8) for i in range(len(patches))])  # level = index
    own, clean = patches.indices(("single",), ("noise",)), patches.indices(("clean",))
    for step, batch in zip(range(20), adapter_batches(patches, "noise", 16, 8, 5, 0.15, mild_fraction=0.0)):
        rng = np.random.default_rng([5, step])  # the draw before the mild share existed, step by step
        n_clean = int(rng.binomial(16, 0.15))
        expected = np.concatenate([rng.choice(own, 16 - n_clean), rng.choice(clean, n_clean)])
        assert torch.round(batch.degraded[:, 0, 0, 0] * 255).int().tolist() == expected.tolist()
    assert ("mild", "noise") not in _drawn(20, clean_fraction=0.15)


def test_a_share_with_no_mild_patches_of_the_type_draws_none_and_shares_must_fit():
    patches = _flat_patches()
    keep = [i for i, k in enumerate(patches.kinds) if k != "mild"]
    no_mild = PatchSet(patches.degraded[keep], patches.clean[keep], patches.labels[keep],
                       [patches.kinds[i] for i in keep], [patches.names[i] for i in keep], patches.label_names)
    _, batch = next(zip(range(1), adapter_batches(no_mild, "noise", 16, 8, 5, 0.0, mild_fraction=0.5)))
    assert set(torch.round(batch.degraded[:, 0, 0, 0] * 255).int().tolist()) == {40}
    with pytest.raises(ValueError, match="clean_fraction \\+ mild_fraction must be <= 1"):
        TrainConfig.model_validate({"name": "m", "phase2": {"clean_fraction": 0.6, "mild_fraction": 0.5}})


def test_an_adapters_own_identity_share_replaces_the_recipes_and_is_checked():
    schedule = TrainConfig.model_validate({"name": "m", "degradations": ["noise", "blur"], "phase2": {
        "clean_fraction": 0.15, "clean_fraction_by_type": {"noise": 0.0}}}).phase2
    assert (schedule.identity_share("noise"), schedule.identity_share("blur")) == (0.0, 0.15)
    with pytest.raises(ValueError, match=r"clean_fraction_by_type names \['snow'\].*allowed: noise, blur"):
        TrainConfig.model_validate({"name": "m", "degradations": ["noise", "blur"],
                                    "phase2": {"clean_fraction_by_type": {"snow": 0.0}}})
    with pytest.raises(ValueError, match=r"clean_fraction_by_type.blur must be within \[0, 1\], got 1.5"):
        TrainConfig.model_validate({"name": "m", "phase2": {"clean_fraction_by_type": {"blur": 1.5}}})
    with pytest.raises(ValueError, match=r"clean_fraction_by_type.blur \+ mild_fraction must be <= 1"):
        TrainConfig.model_validate({"name": "m", "phase2": {"clean_fraction_by_type": {"blur": 0.8},
                                                            "mild_fraction": 0.3}})


def test_phase_two_draws_each_adapters_batches_at_its_own_identity_share(monkeypatch):
    from abair_core.components import ensure_adapter_slots
    from abair_core.models.factory import build_model
    from abair_core.models.lora import add_adapter
    from abair_core.training import phase2

    config = TrainConfig.model_validate({"name": "m", "degradations": ["noise", "blur"], "phase2": {
        "clean_fraction": 0.15, "clean_fraction_by_type": {"noise": 0.0}}})
    backbone = build_model("tiny")
    ensure_adapter_slots(backbone, config.adapter)
    for name in config.degradations:
        add_adapter(backbone, name)
    shares = {}
    monkeypatch.setattr(phase2, "adapter_batches", lambda patches, name, *args: shares.setdefault(name, args[3]))
    monkeypatch.setattr(phase2, "run_training", lambda *args: args[4](0))  # draw the first batches, train nothing
    for name in config.degradations:
        phase2.train_adapter(backbone, name, _flat_patches(), config.phase2)
    assert shares == {"noise": 0.0, "blur": 0.15}
