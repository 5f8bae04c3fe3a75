"""Region composites with label maps, and sequential application."""

from __future__ import annotations

import json

import numpy as np
import pytest

from abair_core.config import ConfigError, validate_config
from abair_core.degradations import (
    CLEAN,
    CompositeConfig,
    apply_sequence,
    build_degradation,
    compose_regions,
    list_degradations,
)

NAMES = list_degradations()
LABELS = [CLEAN, *NAMES]


@pytest.fixture(scope="module")
def degradations() -> dict:
    return {n: build_degradation({"type": n}) for n in NAMES}


def test_labels_cover_several_classes_and_clean_pixels_are_clean(cat: np.ndarray, degradations: dict) -> None:
    config = CompositeConfig(min_regions=3, max_regions=5, clean_probability=0.2)
    seen: set[int] = set()
    for seed in range(6):
        result = compose_regions(cat, degradations, LABELS, np.random.default_rng(seed), config)
        assert result.image.dtype == np.float32 and result.image.shape == cat.shape
        assert result.labels.dtype == np.int64 and result.labels.shape == cat.shape[:2]
        assert 0 <= result.labels.min() and result.labels.max() < len(LABELS)
        assert len(np.unique(result.labels)) >= 2
        clean = result.labels == 0
        assert np.array_equal(result.image[clean], cat[clean])
        for label in np.unique(result.labels[~clean]):  # degraded regions really differ somewhere
            region = result.labels == label
            assert np.abs(result.image[region] - cat[region]).max() > 0
        assert len(result.params) >= 3 and json.dumps(result.params)
        assert {p["type"] for p in result.params} <= set(LABELS)
        seen.update(np.unique(result.labels).tolist())
    assert len(seen) >= 6


def test_composite_is_deterministic(cat: np.ndarray, degradations: dict) -> None:
    a = compose_regions(cat, degradations, LABELS, np.random.default_rng(9))
    b = compose_regions(cat, degradations, LABELS, np.random.default_rng(9))
    assert (
        a.image.tobytes() == b.image.tobytes() and np.array_equal(a.labels, b.labels) and a.params == b.params
    )


def test_blobs_and_rectangles_both_occur(cat: np.ndarray, degradations: dict) -> None:
    shapes = set()
    for seed in range(4):
        shapes |= {
            p["shape"] for p in compose_regions(cat, degradations, LABELS, np.random.default_rng(seed)).params
        }
    assert shapes == {"blob", "rectangle"}


def test_all_clean_config_leaves_the_image_alone(cat: np.ndarray, degradations: dict) -> None:
    result = compose_regions(
        cat, degradations, LABELS, np.random.default_rng(0), CompositeConfig(clean_probability=1)
    )
    assert np.array_equal(result.image, cat) and not result.labels.any()


def test_bad_label_names_are_refused(cat: np.ndarray, degradations: dict) -> None:
    with pytest.raises(ValueError, match="clean"):
        compose_regions(cat, degradations, NAMES, np.random.default_rng(0))
    with pytest.raises(ValueError, match="not in label_names"):
        compose_regions(cat, degradations, [CLEAN, "rain"], np.random.default_rng(0))


def test_composite_config_validation() -> None:
    with pytest.raises(ConfigError, match="key 'max_regions'.*min_regions"):
        validate_config({"min_regions": 4, "max_regions": 2}, CompositeConfig)
    with pytest.raises(ConfigError, match="key 'region_scale'"):
        validate_config({"region_scale": [0.5, 1.5]}, CompositeConfig)
    with pytest.raises(ConfigError, match="key 'clean_probability'"):
        validate_config({"clean_probability": 2}, CompositeConfig)
    with pytest.raises(ConfigError, match="key 'regions'"):
        validate_config({"regions": 2}, CompositeConfig)


def test_apply_sequence_order_matters(cat: np.ndarray) -> None:
    blur = build_degradation({"type": "blur", "kind": "gaussian", "sigma": 2.0})
    noise = build_degradation({"type": "noise", "sigma": 25})
    blur_then_noise = apply_sequence(cat, [blur, noise], np.random.default_rng(0))
    noise_then_blur = apply_sequence(cat, [noise, blur], np.random.default_rng(0))
    assert blur_then_noise.params == [
        {"type": "blur", "params": {"kind": "gaussian", "sigma": 2.0}},
        {"type": "noise", "params": {"sigma": 25.0}},
    ]
    assert [p["type"] for p in noise_then_blur.params] == ["noise", "blur"]
    assert not np.allclose(blur_then_noise.image, noise_then_blur.image, atol=0.01)
    # noise last keeps high-frequency energy; blur last removes it
    hf = [float(np.abs(np.diff(r.image, axis=1)).mean()) for r in (blur_then_noise, noise_then_blur)]
    assert hf[0] > 2 * hf[1]
    direct = noise.apply(blur.apply(cat, np.random.default_rng(0)).image, np.random.default_rng(0))
    assert blur_then_noise.image.dtype == np.float32 and direct.image.shape == cat.shape


def test_apply_sequence_empty_is_a_copy(cat: np.ndarray) -> None:
    result = apply_sequence(cat, [], np.random.default_rng(0))
    assert (
        np.array_equal(result.image, cat) and result.params == [] and not np.shares_memory(result.image, cat)
    )
