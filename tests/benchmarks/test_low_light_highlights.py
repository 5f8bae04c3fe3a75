"""benchmarks/low_light_highlights.py: under-exposure lowers the gate's statistic below the training range's ceiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def test_under_exposed_crops_read_darker_than_their_clean_originals(load_script, tmp_path: Path, capsys) -> None:
    script = load_script("low_light_highlights")
    photos = {"coffee": data.coffee().astype(np.float32) / 255, "chelsea": data.chelsea().astype(np.float32) / 255}
    values = script.measure(photos, crops=2, specs=script.LOW_LIGHT, statistic=script.brightest_crop_highlights)
    clean = np.asarray(values["clean"])
    corner = np.asarray(values["brightest training corner (exposure 0.4, gamma 1)"])
    training = np.asarray(values["training range (exposure 0.1-0.4)"])
    assert (corner < clean).all() and (training <= corner + 0.02).all()  # darker, and the corner is the brightest
    assert corner.max() <= 0.42  # under the shipped bar (0.5): it never gates the training range
    for name in ("coffee", "chelsea"):
        Image.fromarray(getattr(data, name)()).save(tmp_path / f"{name}.png")
    assert script.main(["--photos", str(tmp_path), "--crops", "1", "--no-write"]) == 0
    printed = capsys.readouterr().out
    assert "| clean | 2 |" in printed and "share > 0.5" in printed
