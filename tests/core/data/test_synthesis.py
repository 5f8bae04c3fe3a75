"""Patch synthesis is deterministic per photo, labels every kind, and shards round-trip exactly."""

import numpy as np
from skimage import data

from abair_core.data.shards import read_shard, read_shards, write_shard
from abair_core.data.synthesis import PatchCounts, SynthesisConfig, synthesize_patches
from abair_core.degradations.specs import load_degradation_specs

LABELS = ["clean", "noise", "blur", "haze"]


def _setup():
    specs = load_degradation_specs("configs/degradations/train.yaml")
    degradations = {n: specs[n] for n in LABELS[1:]}
    config = SynthesisConfig(patch_size=48, counts=PatchCounts(composite=3, single=2, sequence=2, clean=1))
    return degradations, config


def test_same_photo_same_key_gives_identical_patches():
    degradations, config = _setup()
    photo = data.astronaut().astype(np.float32) / 255
    a = synthesize_patches(photo, "astronaut.png", degradations, LABELS, config)
    b = synthesize_patches(photo, "astronaut.png", degradations, LABELS, config)
    c = synthesize_patches(photo, "other.png", degradations, LABELS, config)
    assert np.array_equal(a.degraded, b.degraded) and np.array_equal(a.labels, b.labels)
    assert not np.array_equal(a.degraded, c.degraded)
    assert len(a) == 3 + 2 * 3 + 2 + 1
    assert a.kinds.count("single") == 6 and a.kinds.count("clean") == 1
    clean_idx = a.indices(("clean",))
    assert np.array_equal(a.degraded[clean_idx], a.clean[clean_idx])
    single = a.indices(("single",), ("haze",))
    assert (a.labels[single] == LABELS.index("haze")).all()
    assert all(r["source_key"] == "astronaut.png" and "params" in r for r in a.lineage)


def test_shards_round_trip(tmp_path):
    degradations, config = _setup()
    photo = data.coffee().astype(np.float32) / 255
    patches = synthesize_patches(photo, "coffee.png", degradations, LABELS, config)
    uri = str(tmp_path / "shard-0.safetensors")
    write_shard(uri, patches)
    back = read_shard(uri)
    assert np.array_equal(back.degraded, patches.degraded) and back.names == patches.names
    assert back.lineage == patches.lineage
    both = read_shards([uri, uri])
    assert len(both) == 2 * len(patches)


def test_a_greyscale_share_of_crops_is_degraded_in_black_and_white():
    degradations, config = _setup()
    photo = data.astronaut().astype(np.float32) / 255
    colour = synthesize_patches(photo, "astronaut.png", degradations, LABELS, config)
    greyed = synthesize_patches(photo, "astronaut.png", degradations, LABELS,
                                config.model_copy(update={"greyscale_fraction": 0.5}))
    flags = ["greyscale" in r for r in greyed.lineage]
    assert 0 < sum(flags) < len(flags) and not any("greyscale" in r for r in colour.lineage)
    for i, flagged in enumerate(flags):
        c = greyed.clean[i].astype(int)
        is_grey = (c[..., 0] == c[..., 1]).all() and (c[..., 1] == c[..., 2]).all()
        assert is_grey == flagged  # the clean target is the black-and-white crop
    noisy = [i for i in greyed.indices(("single",), ("noise",)) if flags[i]]
    if noisy:  # noise is added after the conversion: colour noise on a greyscale photo
        d = greyed.degraded[noisy[0]].astype(int)
        assert not (d[..., 0] == d[..., 1]).all()
    # off by default, and then the patches are exactly the colour recipe's (no random draw is spent)
    again = synthesize_patches(photo, "astronaut.png", degradations, LABELS,
                               config.model_copy(update={"greyscale_fraction": 0.0}))
    assert np.array_equal(again.degraded, colour.degraded)
