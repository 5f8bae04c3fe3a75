"""`SegmentationHead`: per-pixel degradation logits from the backbone's full-resolution features.

Phase I trains it beside the restoration loss so the backbone learns to tell degradations apart
(the paper's ablation: +0.08 dB). It is dropped after pre-training.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["SegmentationHead"]


class SegmentationHead(nn.Module):
    """3x3 conv + GELU + 1x1 conv: features (N, C, H, W) -> logits (N, num_classes, H, W)."""

    def __init__(self, in_channels: int, num_classes: int, hidden_channels: int | None = None) -> None:
        super().__init__()
        if in_channels < 1 or num_classes < 2:
            raise ValueError(f"need in_channels >= 1 and num_classes >= 2, got {in_channels}, {num_classes}")
        hidden = hidden_channels or in_channels
        self.num_classes = num_classes
        self.conv = nn.Conv2d(in_channels, hidden, kernel_size=3, padding=1)
        self.classify = nn.Conv2d(hidden, num_classes, kernel_size=1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.classify(F.gelu(self.conv(features)))
