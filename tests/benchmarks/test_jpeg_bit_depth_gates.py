"""benchmarks/jpeg_bit_depth_gates.py: training-range JPEG and bit depth sit on the far side of the shipped bars."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

from abair_core.models.plausibility import PlausibilityConfig


def test_training_range_is_never_gated_and_clean_crops_read_on_the_other_side(load_script, tmp_path: Path,
                                                                               capsys) -> None:
    script = load_script("jpeg_bit_depth_gates")
    bars = PlausibilityConfig()
    photos = {"coffee": data.coffee().astype(np.float32) / 255, "chelsea": data.chelsea().astype(np.float32) / 255}
    blockiness = script.measure(photos, crops=2, specs=script.JPEG, statistic=script.median_blockiness)
    assert min(blockiness["training range (quality 10-40)"]) >= bars.jpeg_min_blockiness
    assert np.median(blockiness["clean"]) < np.median(blockiness["weakest training (quality 40)"])
    fill = script.measure(photos, crops=2, specs=script.BIT_DEPTH, statistic=script.median_level_fill)
    assert max(fill["training range (4-7 bits)"]) <= bars.bit_depth_max_level_fill
    assert min(fill["clean"]) > bars.bit_depth_max_level_fill
    for name in ("coffee", "chelsea"):
        Image.fromarray(getattr(data, name)()).save(tmp_path / f"{name}.png")
    assert script.main(["--photos", str(tmp_path), "--crops", "1", "--no-write"]) == 0
    printed = capsys.readouterr().out
    assert "| clean | 2 |" in printed and "share < 0.15" in printed and "share > 0.6" in printed
