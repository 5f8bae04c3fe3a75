"""Mild patches: drawn below the training ranges, labelled clean, restored toward the true clean crop."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.config import ConfigError, load_config
from abair_core.data.patches import PatchSet, estimator_class
from abair_core.data.synthesis import (
    DEFAULT_MILD_SPECS,
    PatchCounts,
    SynthesisConfig,
    build_mild_degradations,
    check_mild_below_training,
    synthesize_patches,
)
from abair_core.degradations.specs import DegradationSetConfig, load_degradation_specs
from abair_core.metrics import psnr
from abair_core.training.batches import class_targets, estimator_batches, pretrain_batches
from abair_core.training.config import TrainConfig

LABELS = ["clean", "noise", "blur", "haze"]
TRAIN = "configs/degradations/train.yaml"
MILD = "configs/degradations/mild.yaml"


def _patches(mild: int, **over) -> PatchSet:
    specs = load_degradation_specs(TRAIN)
    config = SynthesisConfig(patch_size=48, counts=PatchCounts(composite=2, single=1, sequence=1, clean=2, mild=mild),
                             **over)
    photo = data.astronaut().astype(np.float32) / 255
    return synthesize_patches(photo, "astronaut.png", {n: specs[n] for n in LABELS[1:]}, LABELS, config)


def test_mild_file_matches_the_built_in_default_and_a_path_is_inlined():
    from_file = load_config(MILD, DegradationSetConfig).degradations
    assert from_file == [dict(s) for s in DEFAULT_MILD_SPECS]
    assert SynthesisConfig().mild_specs == from_file
    config = SynthesisConfig(mild_specs=MILD)
    assert config.mild_specs == from_file  # inlined: the recipe hash covers the values, not the path
    again = SynthesisConfig.model_validate(config.model_dump(mode="json"))
    assert again == config
    recipe = TrainConfig.model_validate({"name": "m", "synthesis": {"mild_specs": MILD, "counts": {"mild": 3}}})
    assert recipe.synthesis.counts.mild == 3 and recipe.synthesis.mild_specs == from_file
    # every shipped mild range lies below the training range of its type
    check_mild_below_training(build_mild_degradations(config), load_degradation_specs(TRAIN))


def test_bad_mild_specs_fail_at_load():
    with pytest.raises(ValueError, match="listed twice"):
        SynthesisConfig(mild_specs=[{"type": "noise", "sigma": 2}, {"type": "noise", "sigma": 3}])
    with pytest.raises(ValueError, match="no_such"):
        SynthesisConfig(mild_specs=[{"type": "no_such"}])
    with pytest.raises((ValueError, ConfigError), match="sigma"):
        SynthesisConfig(mild_specs=[{"type": "noise", "sigma": 500}])


def test_mild_patches_are_clean_class_below_the_threshold_and_do_not_change_the_others():
    base = _patches(0)
    with_mild = _patches(7)
    n = len(base)
    assert len(with_mild) == n + 7
    assert np.array_equal(with_mild.degraded[:n], base.degraded[:n])  # drawn last: other patches unchanged
    idx = with_mild.indices(("mild",))
    assert idx.tolist() == list(range(n, n + 7))
    names = [with_mild.names[i] for i in idx]
    assert set(names) == {s["type"] for s in DEFAULT_MILD_SPECS}  # types in turn: all five appear in 7
    assert (with_mild.labels[idx] == 0).all()
    changed = 0
    for i in idx:
        record = with_mild.lineage[i]
        assert record["kind"] == "mild" and record["name"] == with_mild.names[i]
        degraded, clean = with_mild.degraded[i] / 255.0, with_mild.clean[i] / 255.0
        changed += not np.array_equal(degraded, clean)
        assert np.array_equal(degraded, clean) or psnr(degraded, clean) > 20.0  # mild: a light change
        if with_mild.names[i] == "noise":
            assert record["params"]["sigma"] <= 6.0
        if with_mild.names[i] == "jpeg":
            assert record["params"]["quality"] >= 75
    assert changed >= 5  # the target is the true clean crop, not the (mildly degraded) input
    assert np.array_equal(_patches(7).degraded, with_mild.degraded)  # deterministic


def test_a_mild_range_overlapping_training_is_refused():
    training = load_degradation_specs(TRAIN)
    overlapping = SynthesisConfig(mild_specs=[{"type": "noise", "sigma": [2.0, 12.0]}])
    with pytest.raises(ValueError, match="overlaps its training range"):
        check_mild_below_training(build_mild_degradations(overlapping), training)
    with pytest.raises(ValueError, match="overlaps"):
        _patches(2, mild_specs=[{"type": "noise", "sigma": [2.0, 12.0]}])
    with pytest.raises(ValueError, match="mild_specs"):
        _patches(2, mild_specs=[])
    # a type without a training range (jpeg here) needs no check
    check_mild_below_training(build_mild_degradations(SynthesisConfig()), {"noise": training["noise"]})


def test_estimator_targets_mild_as_clean_and_batches_draw_them():
    patches = _patches(6)
    mild = patches.indices(("mild",))
    targets = class_targets(patches, mild, LABELS)
    assert torch.equal(targets, torch.eye(len(LABELS))[[0] * len(mild)])
    assert estimator_class("mild", "noise") == ["clean"] and estimator_class("sequence", "blur+noise") == ["blur", "noise"]
    # Phase III: the clean share comes from clean and mild patches, with clean targets
    batch = next(estimator_batches(patches, LABELS, batch_size=64, crop=32, seed=0, mixed_fraction=0.0,
                                   clean_fraction=1.0))
    assert torch.equal(batch.targets.argmax(1), torch.zeros(64, dtype=torch.long))
    drawn_mild = sum(not torch.equal(d, c) for d, c in zip(batch.degraded, batch.clean))
    assert drawn_mild > 0  # some of the clean-class samples are mild (degraded input, clean target)
    # ... and some are the clean originals of patches of any kind (composites, singles: input = original)
    originals = [i for i, (d, c) in enumerate(zip(batch.degraded, batch.clean)) if torch.equal(d, c)]
    assert len(originals) > 10
    # Phase I: mild patches join the whole-patch share with all-clean label maps
    labels_seen = []
    for step, b in zip(range(6), pretrain_batches(patches, 16, 32, seed=1, single_fraction=1.0)):
        labels_seen.append(b.labels)
    assert any((lb == 0).all() for lbs in labels_seen for lb in lbs)


def test_estimator_batches_show_a_greyscale_share_of_every_class_with_unchanged_targets():
    patches = _patches(4)
    common = {"batch_size": 64, "crop": 32, "seed": 3, "mixed_fraction": 0.2, "clean_fraction": 0.3}
    colour = next(estimator_batches(patches, LABELS, **common))
    mixed = next(estimator_batches(patches, LABELS, **common, greyscale_fraction=0.5))
    assert torch.equal(colour.targets, mixed.targets)  # same draws: only the colour changes
    grey = (mixed.degraded[:, 0] == mixed.degraded[:, 1]).flatten(1).all(1) & \
        (mixed.degraded[:, 1] == mixed.degraded[:, 2]).flatten(1).all(1)
    assert 16 <= int(grey.sum()) <= 48
    assert set(mixed.targets[grey].argmax(1).tolist()) == set(range(len(LABELS)))  # every class, not only clean
    # a greyscale sample is the Rec. 601 luma of the colour one (input and target alike)
    luma = (colour.degraded * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1)
    assert torch.allclose(mixed.degraded[grey][:, 0], luma[grey], atol=1e-6)
    assert torch.equal(mixed.degraded[~grey], colour.degraded[~grey])


def _sample_kinds(labels: torch.Tensor) -> list[str]:
    """clean (label map all clean), single (one degradation everywhere) or composite, per sample."""
    kinds = []
    for lb in labels:
        values = lb.unique()
        kinds.append("clean" if values.tolist() == [0] else "single" if len(values) == 1 else "composite")
    return kinds


def test_phase1_clean_fraction_gives_identity_samples_their_own_share():
    patches = _patches(4)
    kinds: list[str] = []
    for _, b in zip(range(25), pretrain_batches(patches, 16, 32, seed=2, single_fraction=0.3, clean_fraction=0.1)):
        kinds += _sample_kinds(b.labels)
    share = {k: kinds.count(k) / len(kinds) for k in ("single", "clean", "composite")}
    assert abs(share["single"] - 0.3) < 0.06 and abs(share["clean"] - 0.1) < 0.04  # 400 draws
    # None keeps the pooled draw of the recipes before the knob: clean and mild take most of that share here
    pooled: list[str] = []
    for _, b in zip(range(25), pretrain_batches(patches, 16, 32, seed=2, single_fraction=0.3)):
        pooled += _sample_kinds(b.labels)
    assert pooled.count("single") < pooled.count("clean")  # 1 single patch beside 2 clean + 4 mild
    with pytest.raises(ValueError, match="single_fraction \\+ clean_fraction must be <= 1"):
        TrainConfig.model_validate({"name": "m", "phase1": {"single_fraction": 0.8, "clean_fraction": 0.3}})
