"""Image loading: listed splits, and the paired degraded/clean folder path (the paper's datasets)."""

import numpy as np
import pytest
from PIL import Image

from abair_core.degradations import build_degradation
from abair_core.evaluation import BenchmarkTask, evaluate_pairs, load_images, load_pairs, run_benchmark
from abair_core.evaluation.suite import BenchmarkSuite


def write(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.rint(array * 255), 0, 255).astype(np.uint8)).save(path)


@pytest.fixture()
def paired(tmp_path, photos):
    noise = build_degradation({"type": "noise", "sigma": 25})
    for i, (name, photo) in enumerate(photos.items()):
        crop = photo[:64, :64]
        write(tmp_path / "clean" / f"{name}.png", crop)
        write(tmp_path / "noisy" / f"{name}.png", noise.apply(crop, np.random.default_rng(i)).image)
    (tmp_path / "clean" / "README.txt").write_text("not an image")
    return tmp_path


def test_listed_split_and_missing_file(paired):
    uri = (paired / "clean").as_uri()
    assert list(load_images(uri)) == ["astronaut.png", "chelsea.png"]
    assert list(load_images(uri, files=["chelsea.png"])) == ["chelsea.png"]
    with pytest.raises(FileNotFoundError, match="missing"):
        load_images(uri, files=["nope.png"])


def test_paired_folders_evaluate(paired, tiny_model):
    pairs = load_pairs((paired / "noisy").as_uri(), (paired / "clean").as_uri())
    assert [p[0] for p in pairs] == ["astronaut", "chelsea"]
    task = BenchmarkTask(id="bsd68_s25", paired={"degraded": "x", "clean": "y"}, oracle=["noise"])
    result = evaluate_pairs(tiny_model, task, pairs)
    inputs = [r for r in result.rows if r["method"] == "input"]
    from abair_core.metrics import psnr
    assert inputs[0]["psnr"] == pytest.approx(psnr(pairs[0][1], pairs[0][2]))
    assert set(result.scores["bsd68_s25"]) == {"input", "backbone", "oh", "sw", "oracle"}
    assert result.confusion_labels == ["noise"] and sum(result.confusion[0]) == 2


def test_unmatched_pair_is_an_error(paired):
    write(paired / "noisy" / "extra.png", np.zeros((8, 8, 3)))
    with pytest.raises(FileNotFoundError, match="extra"):
        load_pairs((paired / "noisy").as_uri(), (paired / "clean").as_uri())


def test_run_benchmark_with_a_paired_task(paired, tiny_model, tmp_path):
    from abair_core.bundle import save_bundle
    save_bundle(tiny_model, tmp_path / "bundle")
    suite = BenchmarkSuite.model_validate({"name": "paired", "images": None, "groups": {"known": [
        {"id": "bsd68_s25", "paired": {"degraded": (paired / "noisy").as_uri(), "clean": (paired / "clean").as_uri()},
         "oracle": ["noise"]}]}})
    out = run_benchmark(tmp_path / "bundle", suite, sample_dir=tmp_path / "samples", threads=1)
    assert out["samples_per_task"] == {"bsd68_s25": 2} and (tmp_path / "samples" / "bsd68_s25" / "sw.png").is_file()
    with pytest.raises(ValueError, match="no image folder"):
        run_benchmark(tmp_path / "bundle", "configs/benchmark/small.yaml")
