"""benchmarks/clean_weight_sweep.py on the micro-bundle: a larger prior on clean passes more inputs through."""

from __future__ import annotations

from pathlib import Path

from abair_core.config import PROJECT_ROOT

SUITE = {
    "name": "sweep", "images": None, "max_images": 2, "crop": 48, "seeds": [0],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}}],
        "clean": [{"id": "clean"}],
        "mild": [{"id": "noise_s5", "degradation": {"type": "noise", "sigma": 5}, "label": "clean"}],
    },
}


def test_sweep_rows_follow_the_weight(load_script, untrained_bundle: Path, suite_on_holdout, capsys) -> None:
    script = load_script("clean_weight_sweep")
    micro_bundle_dir = untrained_bundle
    suite = suite_on_holdout(SUITE)
    assert script.main(["--model", str(micro_bundle_dir), "--suite", str(suite), "--weights", "0.001", "1000",
                        "--no-write"]) == 0
    printed = capsys.readouterr().out
    rows = [line for line in printed.splitlines() if line.startswith(("| 0.001 ", "| 1000 "))]
    low, high = (row.split("|")[1:-1] for row in rows)
    assert low[3].strip() == "0/2" and high[3].strip() == "2/2"  # known inputs passed as clean
    assert float(high[4]) == 100.0 and float(high[5]) == 100.0  # clean returned untouched
    assert float(high[6]) == 0.0  # the mild input returned as it came: no worse than its input
    assert "Command: `python benchmarks/clean_weight_sweep.py" in printed and str(PROJECT_ROOT) not in printed


def test_one_network_pass_equals_restore_at_every_weight(load_script, untrained_bundle: Path) -> None:
    """The sweep's shortcut (one adapter blend per mode, only the identity share moving with the weight) gives
    what ``ABAIR.restore(x, mode, clean_weight=w)`` gives, on inputs clean wins at some weights and not others."""
    import torch

    from abair_core.bundle import load_bundle

    script = load_script("clean_weight_sweep")
    model = load_bundle(untrained_bundle)
    x = torch.rand(2, 3, 48, 48, generator=torch.Generator().manual_seed(0))
    weights = [0.001, 0.5, 1.0, 3.0, 1000.0]
    fast = script.restore_at_weights(model, x, weights)
    clean_top = [bool((script.apply_clean_weight(model.estimator.predict_proba(x), w).argmax(1) == 0).all())
                 for w in weights]
    assert not clean_top[0] and clean_top[-1]  # both regimes are exercised
    with torch.no_grad():
        for w in weights:
            for mode in ("sw", "oh"):
                torch.testing.assert_close(fast[w][mode], model.restore(x, mode, clean_weight=w), atol=1e-5, rtol=0)
