"""The shared loop: resumed training equals uninterrupted training; Phase II trains only its adapter."""

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.components import ensure_adapter_slots
from abair_core.data.synthesis import PatchCounts
from abair_core.degradations.specs import load_degradation_specs
from abair_core.models.lora import adapter_parameters, add_adapter
from abair_core.training.batches import estimator_batches, pretrain_batches
from abair_core.training.config import TrainConfig
from abair_core.training.loop import learning_rate
from abair_core.training.phase2 import freeze_for_adapter
from abair_core.training.recipe import run_adapter, run_pretrain, synthesize_pool


@pytest.fixture(scope="module")
def small_pool():
    config = TrainConfig.model_validate({
        "name": "unit", "model": "tiny", "degradations": ["noise", "blur"],
        "synthesis": {"patch_size": 40, "counts": PatchCounts(composite=4, single=3, sequence=2, clean=2).model_dump()},
        "phase1": {"steps": 6, "batch_size": 2, "patch_size": 32, "checkpoint_every": 3, "warmup_steps": 2},
        "phase2": {"steps": 4, "batch_size": 2, "patch_size": 32, "warmup_steps": 1},
    })
    photos = {"astronaut": data.astronaut()[:200, :200].astype(np.float32) / 255}
    patches = synthesize_pool(photos, load_degradation_specs("configs/degradations/train.yaml"), config)
    return config, patches


def test_batches_are_deterministic_per_step(small_pool):
    _, patches = small_pool
    a = next(pretrain_batches(patches, 4, 32, seed=3, single_fraction=0.5, start_step=7))
    b = next(pretrain_batches(patches, 4, 32, seed=3, single_fraction=0.5, start_step=7))
    assert torch.equal(a.degraded, b.degraded) and torch.equal(a.labels, b.labels)
    e = next(estimator_batches(patches, ["clean", "noise", "blur"], 8, 32, 0, 0.5, 0.2))
    torch.testing.assert_close(e.targets.sum(1), torch.ones(8))


def test_resume_matches_uninterrupted_run(small_pool, tmp_path):
    config, patches = small_pool
    straight, _ = run_pretrain(config, patches, seed=0)
    resume = str(tmp_path / "resume.safetensors")
    half = config.model_copy(update={"phase1": config.phase1.model_copy(update={"steps": 3})})
    run_pretrain(half, patches, resume_path=resume, seed=0)
    resumed, result = run_pretrain(config, patches, resume_path=resume, seed=1)
    assert result.resumed_from == 3
    for (name, a), (_, b) in zip(straight.state_dict().items(), resumed.state_dict().items()):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5, msg=name)


def test_phase2_trains_only_the_adapter(small_pool):
    config, patches = small_pool
    backbone, _ = run_pretrain(config, patches)
    ensure_adapter_slots(backbone, config.adapter)
    add_adapter(backbone, "noise")
    before = {k: v.clone() for k, v in backbone.state_dict().items()}
    run_adapter(config, backbone, "noise", patches)
    own = adapter_parameters(backbone, "noise")
    assert sum(p.requires_grad for p in backbone.parameters()) == len(own)
    changed = [k for k, v in backbone.state_dict().items() if k in before and not torch.equal(v, before[k])]
    assert changed and all(".lora_" in k and ".noise." in k for k in changed)
    with pytest.raises(KeyError, match="not in the model"):
        freeze_for_adapter(backbone, "rain")


def test_learning_rate_warms_up_then_decays():
    config = TrainConfig(name="lr").phase1.model_copy(update={"steps": 100, "warmup_steps": 10, "lr": 1e-3})
    rates = [learning_rate(s, config) for s in range(100)]
    assert rates[0] < rates[9] == pytest.approx(1e-3) and rates[-1] < 1e-4


def test_class_balanced_estimator_batches_draw_each_label_equally_often(small_pool):
    """A union of datasets (add-degradation) holds many more patches of the new type: balancing evens the classes."""
    from abair_core.data.patches import PatchSet

    _, patches = small_pool
    noise, blur = patches.indices(("single",), ("noise",)), patches.indices(("single",), ("blur",))
    keep = np.concatenate([np.repeat(noise, 12), blur[:1]])  # noise outnumbers blur about 36 to 1
    lopsided = PatchSet(*(field[keep] for field in (patches.degraded, patches.clean, patches.labels)),
                        label_names=patches.label_names, kinds=[patches.kinds[i] for i in keep],
                        names=[patches.names[i] for i in keep], lineage=[patches.lineage[i] for i in keep])

    def blur_share(balance: bool) -> float:
        batches = estimator_batches(lopsided, ["clean", "noise", "blur"], 64, 32, 0, 0.0, 0.0,
                                    balance_classes=balance)
        targets = torch.cat([next(batches).targets for _ in range(5)])
        return float(targets[:, 2].mean())

    assert blur_share(False) < 0.1
    assert 0.4 < blur_share(True) < 0.6


def test_balanced_clean_samples_follow_the_photos_of_the_degraded_ones(small_pool):
    """A new type synthesized from other photos must not teach "these photos are clean" (add-degradation)."""
    from abair_core.data.patches import PatchSet

    _, patches = small_pool

    def photo(indices: np.ndarray, key: str, repeat: int, blank: bool) -> PatchSet:
        keep = np.repeat(indices, repeat)
        degraded, clean = patches.degraded[keep].copy(), patches.clean[keep].copy()
        if blank:  # photo B is black, so a sample shows which photo it came from
            degraded[:], clean[:] = 0, 0
        return PatchSet(degraded, clean, patches.labels[keep], label_names=patches.label_names,
                        kinds=[patches.kinds[i] for i in keep], names=[patches.names[i] for i in keep],
                        lineage=[{**patches.lineage[i], "source_key": key} for i in keep])

    clean = patches.indices(("clean",))
    union = PatchSet.concatenate([
        photo(np.concatenate([patches.indices(("single",), ("noise",)), clean]), "A", 12, blank=False),
        photo(np.concatenate([patches.indices(("single",), ("blur",)), clean[:1]]), "B", 1, blank=True),
    ])

    def clean_share_from_b(balance: bool) -> float:
        batches = estimator_batches(union, ["clean", "noise", "blur"], 64, 32, 0, 0.0, 0.5, balance_classes=balance)
        rows = [(b.targets[:, 0] == 1, b.degraded.flatten(1).amax(1) == 0) for b in (next(batches) for _ in range(8))]
        is_clean, from_b = (torch.cat(column) for column in zip(*rows))
        return float(from_b[is_clean].float().mean())

    assert clean_share_from_b(False) < 0.15  # photo A's many patches: clean would mean "photo A"
    assert 0.35 < clean_share_from_b(True) < 0.65  # as often as B's blur among the degraded samples
