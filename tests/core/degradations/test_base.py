"""The Degradation contract, checked for every registered degradation."""

from __future__ import annotations

import json

import numpy as np
import pytest

from abair_core.degradations import Degradation, DegradationResult, build_degradation, list_degradations
from abair_core.degradations.base import check_image, to_builtin

NAMES = list_degradations()


@pytest.fixture(params=NAMES)
def degradation(request: pytest.FixtureRequest) -> Degradation:
    return build_degradation({"type": request.param})


def test_registry_has_the_eight_fixed_ids() -> None:
    assert set(NAMES) >= {"rain", "haze", "noise", "blur", "low_light", "jpeg", "bit_depth", "snow"}


def test_same_seed_gives_identical_bytes(degradation: Degradation, photo: np.ndarray) -> None:
    a = degradation.apply(photo, np.random.default_rng(7))
    b = degradation.apply(photo, np.random.default_rng(7))
    assert a.image.tobytes() == b.image.tobytes()
    assert a.params == b.params


def test_different_seeds_give_different_outputs(degradation: Degradation, photo: np.ndarray) -> None:
    outputs = {degradation.apply(photo, np.random.default_rng(s)).image.tobytes() for s in range(1, 6)}
    assert len(outputs) > 1


def test_output_contract_and_input_untouched(degradation: Degradation, photo: np.ndarray) -> None:
    writable = photo.copy()
    before = writable.copy()
    result = degradation.apply(writable, np.random.default_rng(0))
    assert isinstance(result, DegradationResult)
    assert result.image.dtype == np.float32 and result.image.shape == photo.shape
    assert result.image.min() >= 0.0 and result.image.max() <= 1.0
    assert np.array_equal(writable, before)
    assert not np.shares_memory(result.image, writable)
    json.dumps(result.params)
    assert not np.array_equal(result.image, photo)


def test_read_only_and_float64_inputs_are_accepted(degradation: Degradation, photo: np.ndarray) -> None:
    a = degradation.apply(photo, np.random.default_rng(3))
    b = degradation.apply(photo.astype(np.float64), np.random.default_rng(3))
    assert np.array_equal(a.image, b.image)


def test_to_spec_rebuilds_the_same_degradation(degradation: Degradation, photo: np.ndarray) -> None:
    spec = json.loads(json.dumps(degradation.to_spec()))
    rebuilt = build_degradation(spec)
    a = degradation.apply(photo, np.random.default_rng(5)).image
    assert np.array_equal(a, rebuilt.apply(photo, np.random.default_rng(5)).image)


def test_at_strength_fixes_every_range(degradation: Degradation) -> None:
    for level in (0.0, 0.5, 1.0):
        fixed = degradation.at_strength(level)
        for name, value in fixed.params.model_dump().items():
            if name != "kind":
                assert not isinstance(value, tuple), (degradation.name, name, value)


def test_at_strength_orders_by_severity(photo: np.ndarray) -> None:
    jpeg = build_degradation({"type": "jpeg", "quality": [10, 40]})
    assert jpeg.at_strength(0.0).params.quality == 40 and jpeg.at_strength(1.0).params.quality == 10
    noise = build_degradation({"type": "noise", "sigma": [0, 50]})
    errors = [
        float(np.abs(noise.at_strength(lv).apply(photo, np.random.default_rng(0)).image - photo).mean())
        for lv in (0.0, 0.5, 1.0)
    ]
    assert errors[0] < errors[1] < errors[2]
    with pytest.raises(ValueError, match="strength level"):
        noise.at_strength(1.5)


@pytest.mark.parametrize(
    ("bad", "error", "match"),
    [
        (np.zeros((8, 8), np.float32), ValueError, "HWC RGB"),
        (np.zeros((8, 8, 4), np.float32), ValueError, "HWC RGB"),
        (np.zeros((8, 8, 3), np.uint8), TypeError, "float"),
        (np.full((8, 8, 3), 2.0, np.float32), ValueError, r"\[0, 1\]"),
        ([[0.0]], TypeError, "numpy array"),
    ],
)
def test_bad_images_are_refused(bad: object, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        check_image(bad)


def test_rng_must_be_a_generator(photo: np.ndarray) -> None:
    with pytest.raises(TypeError, match="Generator"):
        build_degradation({"type": "noise"}).apply(photo, 0)  # type: ignore[arg-type]


def test_to_builtin_converts_numpy_values() -> None:
    out = to_builtin({"a": np.float32(1.5), "b": (np.int64(2), 3), "c": np.arange(2)})
    assert out == {"a": 1.5, "b": [2, 3], "c": [0, 1]}
    assert type(out["a"]) is float and type(out["b"][0]) is int
