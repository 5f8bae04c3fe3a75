"""Scalar-or-range parameters: validation bounds, draws and strengths."""

from __future__ import annotations

import numpy as np
import pytest

from abair_core.config import ConfigError
from abair_core.degradations import build_degradation
from abair_core.degradations.ranges import draw, draw_choice, strength_value


def test_scalar_is_fixed_and_range_is_drawn_inside() -> None:
    rng = np.random.default_rng(0)
    assert draw(25.0, rng) == 25.0
    values = [draw((10.0, 20.0), rng) for _ in range(200)]
    assert all(10.0 <= v <= 20.0 for v in values) and len(set(values)) > 100
    ints = {draw((4, 7), rng) for _ in range(200)}
    assert ints == {4, 5, 6, 7}
    assert all(type(draw((4, 7), rng)) is int for _ in range(5))


def test_draw_choice() -> None:
    rng = np.random.default_rng(0)
    assert draw_choice("motion", rng) == "motion"
    assert {draw_choice(("gaussian", "motion"), rng) for _ in range(50)} == {"gaussian", "motion"}


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"type": "jpeg", "quality": 0}, "quality"),
        ({"type": "jpeg", "quality": [5, 101]}, "quality"),
        ({"type": "haze", "t_mean": 0.01}, "t_mean"),
        ({"type": "noise", "sigma": [50, 10]}, "sigma"),
        ({"type": "noise", "sigma": 150}, "sigma"),
        ({"type": "bit_depth", "bits": 9}, "bits"),
        ({"type": "bit_depth", "bits": 4.5}, "bits"),
        ({"type": "blur", "kind": "box"}, "kind"),
        ({"type": "blur", "kind": []}, "kind"),
        ({"type": "rain", "streaks": 5}, "streaks"),
    ],
)
def test_bad_params_fail_at_build_time_naming_the_field(spec: dict, field: str) -> None:
    with pytest.raises(ConfigError, match=f"key '{field}"):
        build_degradation(spec)


def test_yaml_lists_become_ranges_and_scalars_fix() -> None:
    d = build_degradation({"type": "noise", "sigma": [15, 25]})
    assert d.params.sigma == (15.0, 25.0)
    assert build_degradation({"type": "noise", "sigma": 25}).params.sigma == 25.0


def test_strength_value_follows_the_severity_direction() -> None:
    assert strength_value((10, 40), {"lo": 1, "hi": 100, "stronger": "lower"}, 1.0) == 10
    assert strength_value((0.0, 50.0), {"lo": 0, "hi": 100, "stronger": "higher"}, 0.5) == 25.0
    assert strength_value((-20.0, 20.0), {"lo": -80, "hi": 80, "stronger": "none"}, 1.0) == 0.0
    assert strength_value(7.0, {"lo": 0, "hi": 100, "stronger": "higher"}, 1.0) == 7.0
