"""Fixtures shared by the estimator training tests."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data

from abair_core.data.synthesis import PatchCounts, SynthesisConfig, synthesize_patches
from abair_core.degradations.specs import load_degradation_specs

#: The classes of the small estimator datasets: three old types' base plus jpeg, the type added.
FOUR_CLASSES = ["clean", "noise", "blur", "jpeg"]


@pytest.fixture(scope="module")
def patches():
    """8 single patches of noise, blur and jpeg each and 4 clean ones, cut from one real photo."""
    specs = load_degradation_specs("configs/degradations/train.yaml")
    config = SynthesisConfig(patch_size=48, counts=PatchCounts(composite=0, single=8, sequence=0, clean=4))
    photo = data.astronaut()[:256, :256].astype(np.float32) / 255
    chosen = {n: specs[n] for n in ("noise", "blur", "jpeg")}
    return synthesize_patches(photo, "astronaut.png", chosen, FOUR_CLASSES, config)
