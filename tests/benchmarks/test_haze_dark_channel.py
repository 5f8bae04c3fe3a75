"""benchmarks/haze_dark_channel.py: haze raises the gate's statistic of every crop above its clean original's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data


def test_hazed_crops_read_higher_than_their_clean_originals(load_script, tmp_path: Path, capsys) -> None:
    script = load_script("haze_dark_channel")
    photos = {"coffee": data.coffee().astype(np.float32) / 255, "chelsea": data.chelsea().astype(np.float32) / 255}
    values = script.measure(photos, crops=2)
    clean, weakest = np.asarray(values["clean"]), np.asarray(values["weakest training haze (t 0.8, A 0.7)"])
    assert (weakest > clean).all()  # airlight only adds
    assert weakest.min() >= 0.1 > clean.min()  # the weakest training haze clears the 0.1 bar; some clean crops do not
    for name in ("coffee", "chelsea"):
        Image.fromarray(getattr(data, name)()).save(tmp_path / f"{name}.png")
    assert script.main(["--photos", str(tmp_path), "--crops", "1", "--no-write"]) == 0
    assert "| clean | 2 |" in capsys.readouterr().out
