"""The MLflow pyfunc "model from code" behind the registered model ``abair``.

MLflow stores this file itself, not a pickle, next to the bundle directory (the safetensors files
and ``bundle.json``), so ``mlflow.pyfunc.load_model("models:/abair@champion")`` rebuilds the model
from code plus tensors. ``abair_core`` must be importable where the model is loaded.
``predict`` takes one HWC RGB image or an NHWC batch (uint8, uint16 or float in [0, 1]) and
params ``{"mode": "sw" | "oh" | <adapter id>}``, and returns the same shape and dtype.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np

DEFAULT_MODE = "sw"
TILE, OVERLAP = 256, 32


class AbairBundleModel(mlflow.pyfunc.PythonModel):
    """Restores RGB arrays with an ABAIR bundle; one ``Restorer`` per mode, built on first use."""

    def load_context(self, context: Any) -> None:
        """Load the bundle once per process (CUDA when present) and read its adapter ids."""
        import torch

        from abair_core.bundle import load_bundle

        bundle_dir = Path(context.artifacts["bundle"])
        manifest = json.loads((bundle_dir / "bundle.json").read_text(encoding="utf-8"))
        self.adapters: list[str] = list(manifest.get("adapters", []))
        self.model = load_bundle(bundle_dir, device="cuda" if torch.cuda.is_available() else "cpu")
        self.restorers: dict[str, Any] = {}

    def predict(
        self, context: Any, model_input: np.ndarray, params: dict[str, Any] | None = None
    ) -> np.ndarray:
        """Restore an HWC image or an NHWC batch; output has the input's shape and dtype."""
        mode = str((params or {}).get("mode") or DEFAULT_MODE)
        restorer = self._restorer(mode)
        array = np.asarray(model_input)
        if array.ndim == 3:
            return _restore_image(restorer, array)
        if array.ndim == 4:
            return np.stack([_restore_image(restorer, image) for image in array])
        raise ValueError(f"expected an HWC image or NHWC batch of RGB images, got shape {array.shape}")

    def _restorer(self, mode: str) -> Any:
        allowed = ["sw", "oh", *self.adapters]
        if mode not in allowed:
            raise ValueError(f"unknown mode {mode!r} (allowed: {', '.join(allowed)})")
        if mode not in self.restorers:
            from abair_core.bundle import Restorer
            from abair_core.restore.plan import RestoreSettings

            self.restorers[mode] = Restorer(self.model, mode=mode, tile=TILE, overlap=OVERLAP,
                                            estimator_crops=RestoreSettings().estimator_crops)
        return self.restorers[mode]


def _restore_image(restorer: Any, image: np.ndarray) -> np.ndarray:
    """Convert one image to float32 [0, 1], restore it and convert back to the input's dtype."""
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
    if np.issubdtype(image.dtype, np.integer):
        if image.dtype not in (np.uint8, np.uint16):
            raise ValueError(f"unsupported integer dtype {image.dtype} (allowed: uint8, uint16, float)")
        scale = float(np.iinfo(image.dtype).max)
        rgb = image.astype(np.float32) / scale
    elif np.issubdtype(image.dtype, np.floating):
        scale = None
        rgb = np.clip(image.astype(np.float32), 0.0, 1.0)
    else:
        raise ValueError(f"unsupported dtype {image.dtype} (allowed: uint8, uint16, float)")
    restored = np.clip(np.asarray(restorer.restore_array(rgb).rgb, dtype=np.float32), 0.0, 1.0)
    if scale is None:
        return restored.astype(image.dtype)
    return np.rint(restored * scale).astype(image.dtype)


mlflow.models.set_model(AbairBundleModel())
