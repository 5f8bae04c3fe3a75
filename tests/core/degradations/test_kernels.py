"""Convolution helper and kernels against direct computation."""

from __future__ import annotations

import numpy as np
import pytest

from abair_core.degradations.kernels import capsule_mask, convolve, gaussian_kernel, line_kernel, smooth_noise


def _direct(image: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    ph, pw = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(image, ((ph, ph), (pw, pw), (0, 0)), mode="reflect")
    out = np.zeros_like(image, dtype=np.float64)
    flipped = kernel[::-1, ::-1]
    for i in range(kernel.shape[0]):
        for j in range(kernel.shape[1]):
            out += flipped[i, j] * padded[i : i + image.shape[0], j : j + image.shape[1]]
    return out


@pytest.mark.parametrize("kshape", [(3, 3), (5, 7), (11, 3)])
def test_fft_convolution_matches_direct_reflect_convolution(kshape: tuple[int, int]) -> None:
    rng = np.random.default_rng(0)
    image = rng.random((17, 23, 3)).astype(np.float32)
    kernel = rng.random(kshape)
    np.testing.assert_allclose(convolve(image, kernel), _direct(image, kernel), atol=1e-5)
    np.testing.assert_allclose(convolve(image[..., 0], kernel), _direct(image, kernel)[..., 0], atol=1e-5)


def test_even_kernels_are_refused() -> None:
    with pytest.raises(ValueError, match="odd"):
        convolve(np.zeros((8, 8), np.float32), np.ones((2, 2)))


def test_kernels_are_normalised_and_shaped() -> None:
    assert gaussian_kernel(0.0).shape == (1, 1)
    assert gaussian_kernel(1.5).sum() == pytest.approx(1.0)
    horizontal = line_kernel(9, 0.0)
    assert horizontal.sum() == pytest.approx(1.0)
    centre = horizontal.shape[0] // 2
    assert horizontal[centre].sum() == pytest.approx(1.0)  # all weight on the middle row
    vertical = line_kernel(9, 90.0)
    assert vertical[:, centre].sum() == pytest.approx(1.0)
    streak = capsule_mask(10, 90.0, 1.0)
    assert streak.max() == pytest.approx(1.0)
    assert streak[:, streak.shape[1] // 2].sum() > 3 * streak[streak.shape[0] // 2].sum()


def test_smooth_noise_is_deterministic_and_spans_unit_range() -> None:
    a = smooth_noise(40, 50, 4, np.random.default_rng(1))
    b = smooth_noise(40, 50, 4, np.random.default_rng(1))
    assert a.shape == (40, 50) and np.array_equal(a, b)
    assert a.min() == pytest.approx(0.0) and a.max() == pytest.approx(1.0)
    assert np.abs(np.diff(a, axis=1)).max() < 0.2  # smooth


def test_sparse_streaks_is_a_deterministic_layer_in_unit_range():
    import numpy as np

    from abair_core.degradations.kernels import capsule_mask, sparse_streaks

    kernel = capsule_mask(9.0, 90.0, 0.5)
    a = sparse_streaks((40, 50), 0.01, 0.3, kernel, np.random.default_rng(0))
    b = sparse_streaks((40, 50), 0.01, 0.3, kernel, np.random.default_rng(0))
    assert a.shape == (40, 50) and np.array_equal(a, b)
    assert 0.0 <= a.min() and a.max() <= 1.0 and a.max() > 0
    assert not sparse_streaks((40, 50), 0.0, 0.3, kernel, np.random.default_rng(0)).any()
