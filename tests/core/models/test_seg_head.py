"""SegmentationHead: per-pixel logits at the feature map's resolution."""

from __future__ import annotations

import pytest
import torch

from abair_core.models.seg_head import SegmentationHead


def test_logits_shape_and_gradient() -> None:
    head = SegmentationHead(in_channels=16, num_classes=6)
    features = torch.randn(2, 16, 12, 20, requires_grad=True)
    logits = head(features)
    assert logits.shape == (2, 6, 12, 20)
    labels = torch.randint(0, 6, (2, 12, 20), generator=torch.Generator().manual_seed(0))
    torch.nn.functional.cross_entropy(logits, labels).backward()
    assert features.grad is not None and torch.isfinite(features.grad).all()


def test_rejects_a_single_class() -> None:
    with pytest.raises(ValueError, match="num_classes"):
        SegmentationHead(8, 1)
