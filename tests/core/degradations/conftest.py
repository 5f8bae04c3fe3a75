"""Shared fixtures: small real photo crops from scikit-image's bundled data."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data


@pytest.fixture(scope="session")
def photo() -> np.ndarray:
    """A 64x80 float32 RGB crop of the astronaut photo (face, flag, flat background)."""
    img = data.astronaut()[120:248:2, 160:320:2].astype(np.float32) / 255.0
    img.setflags(write=False)
    return img


@pytest.fixture(scope="session")
def cat() -> np.ndarray:
    """A 96x96 float32 RGB crop of chelsea the cat (fur texture)."""
    img = data.chelsea()[50:146, 150:246].astype(np.float32) / 255.0
    img.setflags(write=False)
    return img
