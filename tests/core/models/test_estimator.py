"""DegradationEstimator: native crops, deterministic inference, small size."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.config import PROJECT_ROOT, load_config
from abair_core.models.backbone import count_parameters
from abair_core.models.estimator import (
    DegradationEstimator,
    EstimatorConfig,
    SpaceToDepth,
    crop_positions,
    crop_views,
    native_crops,
    spatial_std_mean,
)

CLASSES = ["clean", "rain", "haze", "noise", "blur", "low_light"]


def _photo(name: str = "astronaut", size: int = 160) -> torch.Tensor:
    image = getattr(data, name)()[:size, :size].astype(np.float32) / 255.0
    return torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


@pytest.fixture(scope="module")
def estimator() -> DegradationEstimator:
    torch.manual_seed(0)
    return DegradationEstimator(
        load_config(PROJECT_ROOT / "configs/estimator/default.yaml", EstimatorConfig), CLASSES
    ).eval()


def test_default_yaml_and_size(estimator: DegradationEstimator) -> None:
    assert estimator.config == EstimatorConfig()
    assert count_parameters(estimator) < 500_000


def test_forward_gives_logits_per_image(estimator: DegradationEstimator) -> None:
    crops = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert estimator(crops).shape == (3, len(CLASSES))


def test_predict_proba_is_deterministic_and_normalised(estimator: DegradationEstimator) -> None:
    x = torch.cat([_photo("astronaut"), _photo("coffee"), _photo("chelsea")])
    with torch.no_grad():
        first = estimator.predict_proba(x)
        second = estimator.predict_proba(x)
    assert first.shape == (3, len(CLASSES))
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    torch.testing.assert_close(first.sum(dim=1), torch.ones(3))


def test_predict_proba_averages_the_logits_of_native_crops(estimator: DegradationEstimator) -> None:
    x = _photo("coffee", 150)
    with torch.no_grad():
        crops = [x[:, :, y : y + 64, c : c + 64] for y, c in [(0, 0), (0, 86), (86, 0), (86, 86)]]
        want = torch.stack([estimator(c) for c in crops]).mean(dim=0).softmax(dim=-1)
        torch.testing.assert_close(estimator.predict_logits(x).softmax(dim=-1), want)


def test_a_call_can_read_a_denser_grid_than_the_stored_corners(estimator: DegradationEstimator) -> None:
    """Production reads 16 crops of a whole photo (a 4 x 4 grid) instead of its 4 corners: the same estimator,
    its logits averaged over the grid, the gates reading the same crops."""
    x = _photo("coffee", 300)
    with torch.no_grad():
        grid = crop_positions(300, 300, 64, 16)
        assert sorted({y for y, _ in grid}) == [0, 79, 157, 236]  # the whole photo, not only its border
        want = torch.stack([estimator(x[:, :, y : y + 64, c : c + 64]) for y, c in grid]).mean(dim=0).softmax(-1)
        dense = estimator.predict_proba_gated(x, num_crops=16)
        torch.testing.assert_close(dense.raw, want)
        torch.testing.assert_close(estimator.predict_proba_gated(x).raw, estimator.predict_logits(x).softmax(-1))
        assert not torch.allclose(dense.raw, estimator.predict_proba_gated(x).raw)


@pytest.mark.parametrize(("tta", "views"), [("flip", 2), ("dihedral", 8)])
def test_test_time_views_average_the_logits_of_every_view_of_every_crop(tta: str, views: int) -> None:
    """tta averages the logits of each crop's mirror images and quarter turns (the geometry training draws its
    crops with), image by image: a batch of two photos gets the same answer as each photo alone."""
    torch.manual_seed(0)
    estimator = DegradationEstimator(EstimatorConfig(tta=tta), CLASSES).eval()
    x = torch.cat([_photo("coffee", 150), _photo("astronaut", 150)])
    corners = [(0, 0), (0, 86), (86, 0), (86, 86)]
    transforms = [lambda c: c, lambda c: c.flip(-1)]
    if tta == "dihedral":
        transforms = [lambda c, k=k, m=m: torch.rot90(c.flip(-1) if m else c, k, dims=(-2, -1))
                      for m in (0, 1) for k in range(4)]
    assert len(transforms) == views
    with torch.no_grad():
        for i in range(2):
            image = x[i : i + 1]
            want = torch.stack([estimator(t(image[:, :, y : y + 64, c : c + 64]))
                                for y, c in corners for t in transforms]).mean(dim=0)
            torch.testing.assert_close(estimator.predict_logits(x)[i : i + 1], want, atol=1e-5, rtol=1e-5)
        plain = estimator.predict_proba(x)
        estimator.config = estimator.config.model_copy(update={"tta": "none"})
        assert not torch.allclose(plain, estimator.predict_proba(x))  # the views change the answer


def test_crop_views_refuses_an_unknown_setting() -> None:
    with pytest.raises(ValueError, match="allowed: none, flip, dihedral"):
        crop_views(torch.zeros(1, 3, 8, 8), "rotations")


def test_crop_layout() -> None:
    assert crop_positions(100, 200, 64, 1) == [(18, 68)]
    assert crop_positions(100, 200, 64, 4) == [(0, 0), (0, 136), (36, 0), (36, 136)]
    five = crop_positions(100, 100, 64, 5)
    assert five[0] == (18, 18) and len(set(five)) == 5
    assert len(set(crop_positions(300, 300, 64, 9))) == 9


def test_native_crops_never_resize_and_pad_small_images() -> None:
    x = _photo("astronaut", 120)
    crops = native_crops(x, 64, 4)
    assert crops.shape == (1, 4, 3, 64, 64)
    torch.testing.assert_close(crops[0, 0], x[0, :, :64, :64], rtol=0, atol=0)
    small = native_crops(x[:, :, :40, :50], 64, 2)
    assert small.shape == (1, 2, 3, 64, 64)
    tiny = native_crops(x[:, :, :5, :5], 64, 1)  # too small to reflect: replicate
    assert tiny.shape == (1, 1, 3, 64, 64)


def test_random_crops_follow_the_generator() -> None:
    x = _photo("chelsea", 150)
    a = native_crops(x, 32, 3, torch.Generator().manual_seed(7))
    b = native_crops(x, 32, 3, torch.Generator().manual_seed(7))
    c = native_crops(x, 32, 3, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_statistics_and_hidden_layer_are_optional() -> None:
    plain = DegradationEstimator(EstimatorConfig(statistics=False, hidden=0), CLASSES).eval()
    assert plain.statistics_norm is None and isinstance(plain.classifier, torch.nn.Linear)
    assert plain(torch.rand(2, 3, 64, 64)).shape == (2, len(CLASSES))


def test_spatial_std_mean_matches_torch_std_mean() -> None:
    f = torch.randn(4, 6, 17, 9) * 3 + 1
    std, mean = spatial_std_mean(f)
    ref_std, ref_mean = torch.std_mean(f, dim=(2, 3), unbiased=False)
    torch.testing.assert_close(std, ref_std)
    torch.testing.assert_close(mean, ref_mean)


def test_space_to_depth_stem_sees_every_pixel_at_half_resolution() -> None:
    x = torch.rand(2, 3, 9, 8)
    blocks = SpaceToDepth()(x)
    assert blocks.shape == (2, 12, 5, 4)
    torch.testing.assert_close(blocks[:, :, :4], torch.nn.functional.pixel_unshuffle(x[:, :, :8], 2))
    model = DegradationEstimator(EstimatorConfig(stem="space_to_depth"), CLASSES).eval()
    assert model.stem[1].in_channels == 12
    assert model(torch.rand(2, 3, 64, 64)).shape == model(torch.rand(2, 3, 33, 47)).shape == (2, len(CLASSES))
    full = DegradationEstimator(EstimatorConfig(), CLASSES)
    assert sum(p.numel() for p in model.parameters()) > sum(p.numel() for p in full.parameters())


def test_class_names_must_start_with_clean() -> None:
    with pytest.raises(ValueError, match="clean"):
        DegradationEstimator(EstimatorConfig(), ["rain", "clean"])
    with pytest.raises(ValueError, match="duplicates"):
        DegradationEstimator(EstimatorConfig(), ["clean", "rain", "rain"])


def test_estimator_learns_to_separate_noise_from_clean() -> None:
    """A few optimisation steps on real photo crops: noisy vs clean becomes separable."""
    torch.manual_seed(0)
    model = DegradationEstimator(EstimatorConfig(width=8, depth=2), ["clean", "noise"])
    gen = torch.Generator().manual_seed(0)
    photos = torch.cat([_photo(n, 128) for n in ("astronaut", "coffee", "chelsea")])
    crops = native_crops(photos, 32, 4, gen).reshape(-1, 3, 32, 32)
    noisy = (crops + 0.1 * torch.randn(crops.shape, generator=gen)).clamp(0, 1)
    x = torch.cat([crops, noisy])
    y = torch.cat([torch.zeros(len(crops)), torch.ones(len(crops))]).long()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    for _ in range(60):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
    with torch.no_grad():
        accuracy = (model(x).argmax(dim=1) == y).float().mean()
    assert accuracy > 0.9
