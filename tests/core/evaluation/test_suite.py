"""Suite configs: validation, task helpers, hashing, and the shipped benchmark files."""

import pytest

from abair_core.config import ConfigError
from abair_core.evaluation import BenchmarkSuite, BenchmarkTask, load_suite, suite_hash


def suite(**over):
    base = {"name": "t", "groups": {"known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}}]}}
    return BenchmarkSuite.model_validate({**base, **over})


def test_task_helpers():
    single = BenchmarkTask(id="noise_s25", degradation={"type": "noise", "sigma": 25})
    mixed = BenchmarkTask(id="blur_noise", sequence=[{"type": "blur", "sigma": 1.0}, {"type": "noise", "sigma": 5}])
    clean = BenchmarkTask(id="clean")
    assert single.oracle_components() == ["noise"] and single.true_label() == "noise"
    assert mixed.oracle_components() == ["blur", "noise"] and mixed.true_label() is None
    assert clean.is_clean and clean.true_label() == "clean" and clean.oracle_components() == []


def test_invalid_tasks_fail_at_load():
    with pytest.raises(ValueError, match="at most one"):
        BenchmarkTask(id="x", degradation={"type": "noise"}, sequence=[{"type": "blur"}])
    with pytest.raises((KeyError, ValueError)):
        BenchmarkTask(id="x", degradation={"type": "no_such_degradation"})
    with pytest.raises(ValueError, match="listed twice"):
        suite(groups={"a": [{"id": "n", "degradation": {"type": "noise"}}],
                      "b": [{"id": "n", "degradation": {"type": "noise"}}]})


def test_hash_changes_with_what_defines_the_numbers():
    base = suite()
    assert suite_hash(base) == suite_hash(suite())
    assert suite_hash(base) != suite_hash(suite(seeds=[1]))
    assert suite_hash(base) != suite_hash(base.with_images("file:///elsewhere"))
    assert suite_hash(base) == suite_hash(suite(description="words only"))


@pytest.mark.parametrize("name", ["demo", "small", "small_dense", "full"])
def test_shipped_suites_load_with_the_fixed_task_ids(name):
    s = load_suite(f"configs/benchmark/{name}.yaml")
    ids = {t.id for _, t in s.tasks()}
    allowed = {"rain", "haze", "noise_s15", "noise_s25", "noise_s50", "blur", "low_light", "jpeg_q20",
               "bit_depth_4", "snow", "blur_noise", "blur_jpeg", "haze_snow",
               "clean", "noise_s5", "jpeg_q75", "blur_s05", "haze_t09"}
    assert ids <= allowed
    assert {t.id for t in s.groups["clean"]} == {"clean"}
    assert {t.id for t in s.groups["mild"]} == {"noise_s5", "jpeg_q75", "blur_s05", "haze_t09"}
    if name != "demo":
        assert ids == allowed and set(s.groups) == {"known", "unseen", "mixed", "clean", "mild"}
    if name in ("small", "small_dense"):
        assert s.files and len(s.files) == len(set(s.files))


def test_the_dense_suite_is_the_small_suite_with_more_crops_and_seeds():
    """small_dense.yaml copies small.yaml's photos and tasks; only the inputs per photo differ."""
    small, dense = (load_suite(f"configs/benchmark/{n}.yaml") for n in ("small", "small_dense"))
    assert dense.model_dump(exclude={"name", "description", "crops_per_image", "seeds"}) == \
        small.model_dump(exclude={"name", "description", "crops_per_image", "seeds"})
    assert set(small.seeds) < set(dense.seeds) and dense.crops_per_image > small.crops_per_image


def test_unknown_key_names_the_field(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: t\ncrops: 3\ngroups: {known: [{id: n, degradation: {type: noise}}]}\n")
    with pytest.raises(ConfigError, match="crops"):
        load_suite(path)
