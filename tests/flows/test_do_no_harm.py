"""Do no harm, end to end: clean photos through restore_archive and a promotion that harms them.

Real Prefect flow runs (``prefect_harness``), a real threaded Dask cluster, local file storage and a
real sqlite MLflow store. The micro-bundle's estimator is pinned to chosen probabilities (classifier
weights zeroed, biases set), so the expected action of every image is known beforehand.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image
from skimage import data

from abair_core.bundle import Restorer, load_bundle, save_bundle
from abair_core.metrics import psnr
from abair_core.models.plausibility import PlausibilityConfig

FAST = {"chunk_size": 2, "tile": 64, "overlap": 8}
PINS = {"backbone": "1", "estimator": "1", "adapter.noise": "1", "adapter.blur": "1"}
CLEAN_PHOTOS = {  # held-out crops, never trained on by the micro-bundle (rocket, hubble)
    "astronaut.png": data.astronaut()[40:104, 180:260],
    "people/coffee.png": data.coffee()[100:164, 200:264],
    "chelsea.png": data.chelsea()[60:124, 100:172],
}
SUITE = {
    "name": "harm", "images": "samples://holdout", "max_images": 2, "crop": 48, "seeds": [0],
    "estimator_groups": ["known", "clean", "mild"],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}}],
        "clean": [{"id": "clean"}],
        "mild": [{"id": "noise_s5", "degradation": {"type": "noise", "sigma": 5}, "label": "clean"}],
    },
}


def pinned_bundle(source: Path, dst: Path, logits: list[float], perturb: float = 0.0, gates: bool = False) -> Path:
    """A copy of ``source`` whose estimator always returns softmax(``logits``) (clean, noise, blur).

    The plausibility gates are off unless ``gates``: these tests pin the probabilities.
    """
    model = load_bundle(source)
    model.estimator.config.plausibility = PlausibilityConfig(enabled=gates)
    with torch.no_grad():
        model.estimator.output_layer.weight.zero_()
        model.estimator.output_layer.bias.copy_(torch.tensor(logits))
        generator = torch.Generator().manual_seed(0)
        for name, p in model.backbone.named_parameters():
            if perturb and "lora_" not in name and p.numel() > 1:
                p.add_(perturb * p.std() * torch.randn(p.shape, generator=generator))
    save_bundle(model, dst)
    return dst


@pytest.fixture(scope="module")
def setup(mlflow_store, micro_bundle_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict]:
    from distributed import LocalCluster

    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("do-no-harm")
    src = root / "archive"
    for key, pixels in CLEAN_PHOTOS.items():
        (src / key).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels).save(src / key)
    pipeline = root / "pipeline.yaml"
    pipeline.write_text(yaml.safe_dump(mlflow_store.model_dump(mode="json")))
    (root / "restore.yaml").write_text(yaml.safe_dump(FAST))
    (root / "suite.yaml").write_text(yaml.safe_dump(SUITE))
    bundles = {
        "clean": pinned_bundle(micro_bundle_dir, root / "b-clean", [20.0, 0.0, 0.0]),          # p_clean ~ 1
        "leaning": pinned_bundle(micro_bundle_dir, root / "b-leaning", [1.0, 0.6, 0.2]),       # clean wins at ~0.46
        "uncertain": pinned_bundle(micro_bundle_dir, root / "b-uncertain", [0.0, 1.0, 0.5]),   # noise wins at ~0.51
        "gated": pinned_bundle(micro_bundle_dir, root / "b-gated", [0.0, 1.0, 0.5], gates=True),  # noise vetoed
    }
    with LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster:
        yield {"root": root, "src": src, "pipeline": str(pipeline), "restore": str(root / "restore.yaml"),
               "suite": str(root / "suite.yaml"), "bundles": bundles, "dask": cluster.scheduler_address}


def _run(setup: dict, bundle: str, dst: str, **kwargs: Any) -> tuple[dict, dict[str, dict], Path]:
    from flows.restore_archive import restore_archive

    out = setup["root"] / dst
    summary = restore_archive(str(setup["src"]), str(out), model=str(setup["bundles"][bundle]),
                              pipeline=setup["pipeline"], restore_config=setup["restore"],
                              dask_address=setup["dask"], **kwargs)
    rows = {r["key"]: r for r in pq.read_table(out / "_abair" / "manifest.parquet").to_pylist()}
    assert set(rows) == set(CLEAN_PHOTOS) and all(r["status"] == "ok" for r in rows.values())
    for row in rows.values():
        probs = json.loads(row["probabilities"])
        assert set(probs) == {"clean", "noise", "blur"} and sum(probs.values()) == pytest.approx(1.0, abs=1e-6)
        assert row["top_class"] == max(probs, key=probs.get)
    return summary, rows, out


def _pixels(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def test_clean_photos_pass_through_byte_exact_when_clean_wins(prefect_harness: None, setup: dict):
    for bundle in ("clean", "leaning"):  # clean certain, and clean winning at only ~46%
        summary, rows, out = _run(setup, bundle, f"dst-{bundle}")
        assert summary["by_action"]["passed_through_clean"] == len(CLEAN_PHOTOS), bundle
        assert summary["by_action"]["restored"] == 0 and summary["by_action"]["low_confidence"] == 0
        for key, row in rows.items():
            assert row["action"] == "passed_through_clean" and row["top_class"] == "clean"
            assert (out / key).read_bytes() == (setup["src"] / key).read_bytes()  # untouched: infinite PSNR
        report = (out / "_abair" / "report.md").read_text()
        assert f"| passed_through_clean | {len(CLEAN_PHOTOS)} |" in report and "| restored | 0 |" in report


def test_an_image_the_estimator_calls_degraded_is_restored_with_its_clean_share_kept(
    prefect_harness: None, setup: dict
):
    summary, rows, out = _run(setup, "uncertain", "dst-uncertain")
    assert summary["by_action"]["restored"] == len(CLEAN_PHOTOS)
    restorer = Restorer(load_bundle(setup["bundles"]["uncertain"]), "sw", FAST["tile"], FAST["overlap"])
    for key, row in rows.items():
        probs = json.loads(row["probabilities"])
        assert row["action"] == "restored" and max(probs, key=probs.get) != "clean"
        source = _pixels(setup["src"] / key)
        expected = restorer(source)  # p_clean * x + (1 - p_clean) * model(x): the identity share of p_clean
        assert expected.action == "restored"
        assert np.abs(_pixels(out / key) - expected.rgb).max() <= 1.0 / 255 + 1e-6
        # the identity path bounds the harm: the output stays at least as close to the input as the
        # network's own output, shrunk by (1 - p_clean)
        bare = Restorer(load_bundle(setup["bundles"]["uncertain"]), "noise", FAST["tile"], FAST["overlap"])
        assert psnr(expected.rgb, source) >= psnr(bare(source).rgb, source) - 0.5


def test_the_noise_gate_overrules_the_estimator_on_clean_photos_and_the_manifest_says_so(
    prefect_harness: None, setup: dict
):
    summary, rows, out = _run(setup, "gated", "dst-gated")
    noise = float(torch.tensor([0.0, 1.0, 0.5]).softmax(0)[1])  # what the estimator said before the gate
    smooth = {"people/coffee.png", "chelsea.png"}  # robust noise level 1.8 and 3.9 (8-bit): below the 5.5 bar
    for key, row in rows.items():
        gated, probs = json.loads(row["gated"]), json.loads(row["probabilities"])
        if key in smooth:
            assert set(gated) == {"noise"} and gated["noise"] == pytest.approx(noise, abs=1e-4)
            assert probs["noise"] == 0.0 and row["action"] == "passed_through_clean"
            assert row["top_before_gates"] == "noise"
            assert (out / key).read_bytes() == (setup["src"] / key).read_bytes()
        else:  # the astronaut crop's texture reads 5.6-6.1: noise stays plausible, the estimator decides
            assert gated == {} and row["action"] == "restored" and probs["noise"] > 0.5
    assert summary["plausibility_gates"] == {"overruled": len(smooth), "by_class": {"noise": len(smooth)}}
    report = (out / "_abair" / "report.md").read_text()
    assert f"was physically implausible and was overruled: {len(smooth)}." in report
    # without the gates the same estimator restores them (the "uncertain" bundle's rows carry no gate)
    _, plain, _ = _run(setup, "uncertain", "dst-ungated")
    assert all(r["gated"] == "{}" and r["action"] == "restored" for r in plain.values())


def test_an_archive_prior_on_clean_passes_the_uncertain_images_through(prefect_harness: None, setup: dict):
    """clean_weight 5: the estimator's 0.19 clean against 0.51 noise becomes 0.54 clean: passed through."""
    summary, rows, out = _run(setup, "uncertain", "dst-prior", clean_weight=5.0)
    raw = torch.tensor([0.0, 1.0, 0.5]).softmax(0)
    clean = float(5 * raw[0] / (5 * raw[0] + raw[1] + raw[2]))
    assert summary["by_action"]["passed_through_clean"] == len(CLEAN_PHOTOS)
    for key, row in rows.items():
        probs = json.loads(row["probabilities"])
        assert probs["clean"] == pytest.approx(clean, abs=1e-4) and row["top_class"] == "clean"
        assert probs["noise"] / probs["blur"] == pytest.approx(float(raw[1] / raw[2]), rel=1e-4)
        assert (out / key).read_bytes() == (setup["src"] / key).read_bytes()


def test_min_confidence_passes_uncertain_images_through_and_flags_them(prefect_harness: None, setup: dict):
    summary, rows, out = _run(setup, "uncertain", "dst-review", min_confidence=0.99)
    assert summary["by_action"]["low_confidence"] == len(CLEAN_PHOTOS) and summary["by_action"]["restored"] == 0
    for key, row in rows.items():
        assert row["action"] == "low_confidence" and max(json.loads(row["probabilities"]).values()) < 0.99
        assert (out / key).read_bytes() == (setup["src"] / key).read_bytes()
    assert f"| low_confidence | {len(CLEAN_PHOTOS)} |" in (out / "_abair" / "report.md").read_text()


def test_a_promotion_that_harms_clean_images_is_refused(prefect_harness: None, setup: dict):
    from flows.promote import promote
    from tasks.registry import get_alias_version, register_bundle

    root = setup["root"]
    champion = register_bundle(setup["bundles"]["clean"], PINS).version  # first: becomes champion
    assert get_alias_version("abair", "champion") == champion
    harmful = pinned_bundle(setup["bundles"]["clean"], root / "b-harmful", [-20.0, 1.0, 0.0], perturb=0.5)
    challenger = register_bundle(harmful, PINS).version
    result = promote(suite=setup["suite"], pipeline=setup["pipeline"])
    assert result["promoted"] is False and get_alias_version("abair", "champion") == champion
    assert "clean" in result["failing_tasks"]
    assert any(f.startswith("clean: harms clean images") for f in result["failures"])
    assert challenger != champion


def test_the_tone_check_passes_through_what_a_contrast_change_reads_as_clean(prefect_harness: None, setup: dict):
    """The astronaut crop's noise level (5.6-6.1) clears the noise gate's 5.5 bar; at contrast 0.85 it does not, so
    the gated estimator reads that version as clean: with the tone check the photo is copied and flagged for review.
    The smooth photos are clean as they are (gated) and pass through as before."""
    summary, rows, out = _run(setup, "gated", "dst-tone-check", tone_check=True)
    for key, row in rows.items():
        want = "passed_through_clean" if key in {"people/coffee.png", "chelsea.png"} else "low_confidence"
        assert row["action"] == want, key
        assert (out / key).read_bytes() == (setup["src"] / key).read_bytes()
    assert summary["by_action"]["low_confidence"] == 1 and summary["by_action"]["restored"] == 0
    assert "| low_confidence | 1 |" in (out / "_abair" / "report.md").read_text()
