"""Proof that the three phases learn, on real photos, in a short CPU run (issue: model library).

Training photos and held-out photos are disjoint scikit-image samples; every number is measured on
held-out crops the training never saw.
"""

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.degradations import KNOWN_DEGRADATIONS, build_degradation
from abair_core.degradations.specs import load_degradation_specs
from abair_core.metrics import psnr
from abair_core.models.lora import blend
from abair_core.training.config import TrainConfig
from abair_core.training.recipe import run_adapter, run_estimator, run_pretrain, synthesize_pool


def _rgb(image: np.ndarray) -> np.ndarray:
    image = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
    return image[..., :3].astype(np.float32) / 255.0


TRAIN = {"rocket": data.rocket, "hubble": data.hubble_deep_field, "ihc": data.immunohistochemistry,
         "brick": data.brick, "grass": data.grass, "moto": lambda: data.stereo_motorcycle()[0]}
CONFIG = {
    "name": "learning-test", "model": "tiny", "degradations": list(KNOWN_DEGRADATIONS),
    "synthesis": {"patch_size": 56, "counts": {"composite": 24, "single": 10, "sequence": 4, "clean": 6}},
    "phase1": {"steps": 500, "batch_size": 8, "patch_size": 48, "lr": 2e-3, "warmup_steps": 20},
    "phase2": {"steps": 200, "batch_size": 8, "patch_size": 48, "lr": 2e-3, "warmup_steps": 10},
    "phase3": {"steps": 300, "batch_size": 32, "patch_size": 48, "lr": 2e-3, "warmup_steps": 20},
}


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None]


def _to_image(x: torch.Tensor) -> np.ndarray:
    return x.clamp(0, 1)[0].permute(1, 2, 0).numpy()


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(2)
    config = TrainConfig.model_validate(CONFIG)
    specs = load_degradation_specs("configs/degradations/train.yaml")
    patches = synthesize_pool({k: _rgb(f()) for k, f in TRAIN.items()}, specs, config)
    backbone, _ = run_pretrain(config, patches)
    frozen = {k: v.clone() for k, v in backbone.state_dict().items()}
    run_adapter(config, backbone, "noise", patches)
    estimator, _ = run_estimator(config, list(KNOWN_DEGRADATIONS), patches)
    held_out = [_rgb(data.astronaut())[96:224, 160:288], _rgb(data.chelsea())[60:188, 150:278],
                _rgb(data.coffee())[120:248, 220:348]]
    return backbone, frozen, estimator, held_out, specs


def test_noise_adapter_raises_psnr_and_beats_the_frozen_backbone(trained):
    backbone, frozen, _, held_out, _ = trained
    noise = build_degradation({"type": "noise", "sigma": 25})
    rng = np.random.default_rng(0)
    noisy = [noise.apply(image, rng).image for image in held_out]
    with torch.no_grad():
        backbone_only = [_to_image(backbone(_to_tensor(x))) for x in noisy]
        with blend(backbone, ["noise"], torch.ones(1, 1)):
            adapted = [_to_image(backbone(_to_tensor(x))) for x in noisy]
    psnr_in = np.mean([psnr(c, x) for c, x in zip(held_out, noisy)])
    psnr_backbone = np.mean([psnr(c, y) for c, y in zip(held_out, backbone_only)])
    psnr_adapter = np.mean([psnr(c, y) for c, y in zip(held_out, adapted)])
    print(f"noise sigma 25 held-out PSNR: input {psnr_in:.2f}, backbone {psnr_backbone:.2f}, "
          f"backbone+noise adapter {psnr_adapter:.2f}")
    assert psnr_adapter > psnr_in + 1.0
    assert psnr_adapter > psnr_backbone + 0.3
    assert all(torch.equal(v, frozen[k.replace(".base.", ".")]) for k, v in backbone.state_dict().items()
               if ".lora_" not in k), "Phase II changed a backbone weight"


def test_estimator_recognises_the_five_known_degradations(trained):
    _, _, estimator, held_out, specs = trained
    rng = np.random.default_rng(1)
    correct = total = 0
    for index, name in enumerate(KNOWN_DEGRADATIONS):
        for image in held_out:
            probs = estimator.predict_proba(_to_tensor(specs[name].apply(image, rng).image))[0]
            correct += int(int(probs[1:].argmax()) == index)
            total += 1
    accuracy = correct / total
    print(f"estimator accuracy on held-out single degradations: {accuracy:.2f} (chance 0.20)")
    assert accuracy >= 0.5
