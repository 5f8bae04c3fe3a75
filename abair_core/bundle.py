"""A bundle directory: the exact component files of one restorable ABAIR model, and its restorer.

Layout: ``backbone.safetensors``, ``adapter-<id>.safetensors`` per adapter, ``estimator.safetensors``
and ``bundle.json`` (adapter ids, class names, component versions). This is what an MLflow bundle
version stores as its artifact and what batch workers load once per process.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from abair_core.components import (
    backbone_fingerprint,
    load_adapter,
    load_backbone,
    load_estimator,
    save_adapter,
    save_backbone,
    save_estimator,
)
from abair_core.inference import restore_tiled
from abair_core.models.abair import ABAIR
from abair_core.models.clean_prior import apply_clean_weight
from abair_core.models.image_statistics import contrast_about_mean
from abair_core.models.lora import AdapterConfig, lora_modules, merge_adapters, unmerge_adapters
from abair_core.restore.chunk import RestoreOutput

BUNDLE_FILE = "bundle.json"
BACKBONE_FILE = "backbone.safetensors"
ESTIMATOR_FILE = "estimator.safetensors"


def adapter_file(adapter_id: str) -> str:
    """File name of one adapter inside a bundle directory."""
    return f"adapter-{adapter_id}.safetensors"


def save_bundle(model: ABAIR, directory: str | Path, versions: Mapping[str, str] | None = None,
                extra: Mapping[str, Any] | None = None) -> dict[str, str]:
    """Write every component of ``model`` into ``directory``; returns file name -> fingerprint."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    first = next(iter(lora_modules(model.backbone).values()), None)
    config = AdapterConfig(rank=first.rank, alpha=first.alpha) if first is not None else AdapterConfig()
    fps = {BACKBONE_FILE: save_backbone(str(directory / BACKBONE_FILE), model.backbone)}
    backbone_fp = backbone_fingerprint(model.backbone)
    adapter_fps = {}
    for name in model.adapter_names:
        fp = save_adapter(str(directory / adapter_file(name)), model.backbone, name, config, backbone_fp)
        fps[adapter_file(name)] = adapter_fps[name] = fp
    fps[ESTIMATOR_FILE] = save_estimator(str(directory / ESTIMATOR_FILE), model.estimator, adapter_fps)
    manifest = {"adapters": list(model.adapter_names), "class_names": list(model.class_names),
                "versions": dict(versions or {}), "fingerprints": fps, **(extra or {})}
    (directory / BUNDLE_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return fps


def assemble_bundle(directory: str | Path, backbone_uri: str, adapter_uris: Mapping[str, str],
                    estimator_uri: str, versions: Mapping[str, str] | None = None) -> ABAIR:
    """Copy component files (any fsspec URIs) into a bundle directory after checking they fit together."""
    model = load_components(backbone_uri, adapter_uris, estimator_uri)
    save_bundle(model, directory, versions)
    return model


def load_components(backbone_uri: str, adapter_uris: Mapping[str, str], estimator_uri: str,
                    device: str = "cpu") -> ABAIR:
    """Build an ABAIR from separate component files, checking every fingerprint link."""
    backbone, backbone_fp = load_backbone(backbone_uri)
    adapter_fps = {}
    for name, uri in adapter_uris.items():
        _, adapter_fps[name] = load_adapter(uri, backbone, backbone_fp, name=name)
    estimator = load_estimator(estimator_uri, adapter_fps)
    model = ABAIR(backbone, estimator, list(adapter_uris))
    return model.to(device).eval()


def read_bundle_manifest(directory: str | Path) -> dict[str, Any]:
    """The ``bundle.json`` of a bundle directory (a clear error when it is not one)."""
    path = Path(directory) / BUNDLE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{directory} is not an ABAIR bundle directory (no {BUNDLE_FILE})")
    return json.loads(path.read_text())


def load_bundle(directory: str | Path, device: str = "cpu") -> ABAIR:
    """Load the model stored in a bundle directory written by :func:`save_bundle`."""
    directory = Path(directory)
    manifest = read_bundle_manifest(directory)
    adapters = {name: str(directory / adapter_file(name)) for name in manifest["adapters"]}
    return load_components(str(directory / BACKBONE_FILE), adapters, str(directory / ESTIMATOR_FILE), device)


#: contrasts (about the mean luma) the tone check reads an image at besides its own: changes cameras and editors
#: make to clean photos (haze, even at the training range's weakest, also lifts the black level towards a bright
#: airlight; a contrast change about the mean does not)
TONE_CHECK_CONTRASTS: tuple[float, ...] = (0.85, 1.15)


class Restorer:
    """Restores one HWC image at a time with a loaded model: what each batch worker holds once.

    The estimator sees the whole image once (``estimator_crops`` native crops on a grid over it; None: the
    estimator's stored count); its adapter weights are folded into the backbone for that
    image (one weight row, so the cost is the bare backbone's) and the image is restored tile by tile.
    The ``clean`` probability drives the identity path: pure pass-through when ``clean`` wins.
    ``tone_check`` (blind modes): before restoring, the estimator also reads the image at each contrast of
    :data:`TONE_CHECK_CONTRASTS`; when any of those readings is ``clean``, the image is passed through untouched
    as ``low_confidence``: a decision that a camera's contrast setting would turn is not one to act on
    (docs/DO_NO_HARM.md, "``--tone-check``").
    """

    def __init__(self, model: ABAIR, mode: str = "sw", tile: int = 512, overlap: int = 32,
                 device: str | torch.device = "cpu", clean_weight: float = 1.0,
                 estimator_crops: int | None = None, tone_check: bool = False) -> None:
        self.model = model.eval()
        self.mode = mode
        self.clean_weight = float(clean_weight)
        self.estimator_crops = estimator_crops
        self.tone_check = bool(tone_check)
        self.tile = tile
        self.overlap = overlap
        self.device = torch.device(device)
        self.model.to(self.device)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> dict[str, float]:
        """The estimator's class probabilities for one image (1, 3, H, W)."""
        return self._estimate(x)[0]

    def _estimate(self, x: torch.Tensor) -> tuple[dict[str, float], dict[str, float], torch.Tensor, str]:
        """Probabilities (after the gates and the archive's ``clean_weight``), what the plausibility gates
        took from each vetoed class (classes that lost at least 0.005), the probability row on the model's
        device, and the estimator's top class before the gates."""
        probs, moved, raw = self.model.estimator.predict_proba_gated(x.to(self.device), num_crops=self.estimator_crops)
        probs = apply_clean_weight(probs, self.clean_weight)
        names = self.model.class_names
        probabilities = {name: float(p) for name, p in zip(names, probs[0].float().cpu())}
        gated = {name: round(float(m), 4) for name, m in zip(names, moved[0].float().cpu()) if float(m) >= 0.005}
        return probabilities, gated, probs, names[int(raw[0].argmax())]

    @torch.no_grad()
    def clean_under_another_tone(self, x: torch.Tensor) -> bool:
        """Whether the estimator (gates and ``clean_weight`` included) reads ``x`` (1, 3, H, W) as ``clean`` at
        any contrast of :data:`TONE_CHECK_CONTRASTS`."""
        for factor in TONE_CHECK_CONTRASTS:
            probabilities = self._estimate(contrast_about_mean(x, factor))[0]
            if max(probabilities, key=probabilities.get) == "clean":
                return True
        return False

    @torch.no_grad()
    def restore_array(self, rgb: np.ndarray) -> RestoreOutput:
        """Restore an HWC float32 RGB image in [0, 1]; returns the image, probabilities, gates and action."""
        x = torch.from_numpy(np.ascontiguousarray(rgb, dtype=np.float32)).permute(2, 0, 1)[None]
        probabilities, gated, probs, top_before_gates = self._estimate(x)
        blind = self.mode in ("sw", "oh")
        if blind and max(probabilities, key=probabilities.get) == "clean":
            return RestoreOutput(rgb=np.asarray(rgb, dtype=np.float32), probabilities=probabilities,
                                 action="passed_through_clean", gated=gated,
                                 top_before_gates=top_before_gates)
        if blind and self.tone_check and self.clean_under_another_tone(x):
            return RestoreOutput(rgb=np.asarray(rgb, dtype=np.float32), probabilities=probabilities,
                                 action="low_confidence", gated=gated, top_before_gates=top_before_gates)
        names = self.model.adapter_names
        if blind:  # the plan's identity weight: p_clean under sw, 0 under oh (clean lost the arg-max above)
            plan_weights, plan_clean = self.model.plan_from_probabilities(probs.to(x.dtype), self.mode)
            weights, p_clean = plan_weights[0], float(plan_clean[0])
        else:
            weights, p_clean = self.model.weights_for(x.to(self.device), self.mode)[0], 0.0
        backbone = self.model.backbone
        if names:
            merge_adapters(backbone, names, weights)
        try:
            restored = restore_tiled(backbone, x, tile=self.tile, overlap=self.overlap, device=self.device)
        finally:
            if names:
                unmerge_adapters(backbone)
        out = p_clean * x + (1.0 - p_clean) * restored
        out = out.clamp(0.0, 1.0)[0].permute(1, 2, 0).numpy()
        return RestoreOutput(rgb=np.ascontiguousarray(out, dtype=np.float32), probabilities=probabilities,
                             action="restored", gated=gated, top_before_gates=top_before_gates)

    __call__ = restore_array
