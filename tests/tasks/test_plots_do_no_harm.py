"""The radar plot has axes for the clean row and the mild group when a suite lists them."""

from __future__ import annotations

import math

from tasks.plots import CLEAN_AXIS_CEILING, radar_axes, render_radar


def _scores() -> dict:
    psnr = {
        "noise_s25": {"input": 20.2, "sw": 28.0, "oracle": 28.5},
        "clean": {"input": 100.0, "sw": 46.0, "oracle": 44.0},
        "noise_s5": {"input": 34.2, "sw": 35.0},
        "jpeg_q75": {"input": 36.0, "sw": 36.2},
    }
    return {"suite": "t", "suite_hash": "h", "methods": ["input", "sw", "oracle"],
            "groups": {"known": ["noise_s25"], "clean": ["clean"], "mild": ["noise_s5", "jpeg_q75"]},
            "scores": {t: {m: {"psnr": v, "ssim": 0.9} for m, v in ms.items()} for t, ms in psnr.items()}}


def test_radar_axes_include_clean_and_mild_with_the_clean_axis_capped():
    labels, values = radar_axes(_scores())
    assert labels == ["noise_s25\n(known)", "clean", "noise_s5\n(mild)", "jpeg_q75\n(mild)"]
    # clean axis: input (100 dB, counted as 50) outermost; sw 46 and oracle 44 still apart
    assert CLEAN_AXIS_CEILING == 50.0
    assert values["input"][1] == 1.0 and values["oracle"][1] == 0.4
    assert 0.4 < values["sw"][1] < 1.0
    assert math.isnan(values["oracle"][2])  # N/A on a mild task without an oracle number


def test_render_radar_writes_a_png(tmp_path):
    path = render_radar(_scores(), str(tmp_path / "radar.png"))
    assert (tmp_path / "radar.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.endswith("radar.png")
