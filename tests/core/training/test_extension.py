"""Adding a degradation, core side: spec files, plugin checks, derived recipes, the union estimator, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from abair_core.bundle import load_bundle, save_bundle
from abair_core.components import ensure_adapter_slots, load_backbone, save_adapter, save_backbone
from abair_core.config import ConfigError
from abair_core.data.dataset import (
    finish_dataset,
    plan_dataset,
    plan_sources,
    read_source_rows,
    synthesize_chunk,
    write_source_plan,
)
from abair_core.degradations.registry import list_degradations, unregister_degradation
from abair_core.evaluation.suite import load_suite
from abair_core.models.abair import ABAIR
from abair_core.models.estimator import DegradationEstimator
from abair_core.models.factory import build_model
from abair_core.models.lora import add_adapter
from abair_core.training.config import TrainConfig
from abair_core.training.extension import (
    ADDED_GROUP,
    build_extension_report,
    check_added_degradation,
    check_photo,
    check_removal,
    compare_scores,
    count_parameters,
    extension_configs,
    find_task,
    load_added_degradation,
    load_union_patches,
    missing_manifests,
    parameter_budget,
    partner_specs,
    reduced_config,
    register_added_degradation,
    removed_task_spec,
    render_extension_report,
    suite_with_task,
    train_extended_estimator_file,
    training_spec,
    worst_changes,
    write_spec_file,
)

ROOT = Path(__file__).resolve().parents[3]
SPECS = str(ROOT / "configs/degradations/train.yaml")
PLUGIN = "tests.plugins_example.speckle"
RECIPE = {
    "name": "ext", "model": "tiny", "degradations": ["noise", "blur"],
    "synthesis": {"patch_size": 40, "counts": {"composite": 2, "single": 3, "sequence": 2, "clean": 2}},
    "phase2": {"steps": 2, "batch_size": 2, "patch_size": 32, "warmup_steps": 1, "log_every": 1},
    "phase3": {"steps": 2, "batch_size": 4, "patch_size": 32, "warmup_steps": 1, "log_every": 1},
}


@pytest.fixture(autouse=True)
def _importable_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(ROOT))  # `tests.plugins_example` whatever way pytest was started


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    from skimage import data

    return data.astronaut()[100:228, 100:228].astype(np.float32) / 255


def test_spec_files_wrapped_or_bare(tmp_path: Path) -> None:
    jpeg = load_added_degradation(ROOT / "configs/degradations/added/jpeg.yaml")
    assert jpeg.degradation == {"type": "jpeg", "quality": [10, 40]} and jpeg.evaluation["quality"] == 20
    bare = tmp_path / "bare.yaml"
    bare.write_text("type: snow\ndensity: 0.002\n")
    assert load_added_degradation(bare).degradation == {"type": "snow", "density": 0.002}
    broken = tmp_path / "broken.yaml"
    broken.write_text("degradation: {quality: 20}\n")
    with pytest.raises(ConfigError, match="degradation.type"):
        load_added_degradation(broken)
    assert training_spec("jpeg", None, SPECS) == {"type": "jpeg", "quality": [10, 40]}
    assert training_spec("jpeg", jpeg, "unused.yaml") == jpeg.degradation
    with pytest.raises(ConfigError, match="no training range for degradation 'speckle'"):
        training_spec("speckle", None, SPECS)


def test_builtins_and_a_dotted_plugin_pass_the_check(photo: np.ndarray) -> None:
    assert check_added_degradation("jpeg", {"type": "jpeg", "quality": [10, 40]}, photo, ["noise"]).name == "jpeg"
    spec = {"type": f"{PLUGIN}:Speckle", "amount": [0.1, 0.3]}
    speckle = check_added_degradation("speckle", spec, photo, ["noise"])
    assert speckle.name == "speckle" and type(speckle).__module__ == PLUGIN
    try:
        register_added_degradation("speckle", spec)
        assert "speckle" in list_degradations()
        register_added_degradation("speckle", spec)  # idempotent
    finally:
        unregister_degradation("speckle")


@pytest.mark.parametrize(("cls", "message"), [
    ("Flaky", "not deterministic"),
    ("Cropper", "changed the shape"),
    ("Brightener", r"leave \[0, 1\]"),
    ("Anonymous", "does not declare its id"),
])
def test_broken_plugins_are_refused_with_a_reason(photo: np.ndarray, cls: str, message: str) -> None:
    name = {"Anonymous": "anonymous"}.get(cls, cls.lower())
    with pytest.raises(ValueError, match=message):
        check_added_degradation(name, {"type": f"{PLUGIN}:{cls}"}, photo, ["noise"])


def test_ids_are_checked_against_the_base(photo: np.ndarray) -> None:
    jpeg = {"type": "jpeg", "quality": 30}
    with pytest.raises(ValueError, match="already has an adapter 'jpeg'; retrain it with --replace"):
        check_added_degradation("jpeg", jpeg, photo, ["jpeg"])
    with pytest.raises(ValueError, match="cannot replace adapter 'jpeg'"):
        check_added_degradation("jpeg", jpeg, photo, ["noise"], replace=True)
    assert check_added_degradation("jpeg", jpeg, photo, ["jpeg"], replace=True).name == "jpeg"
    with pytest.raises(ValueError, match="the id and the type must agree"):
        check_added_degradation("jpeg_strong", jpeg, photo, [])
    with pytest.raises(ValueError, match="snake_case"):
        check_added_degradation("Jpeg", jpeg, photo, [])
    with pytest.raises(ValueError, match="unknown degradation type 'nope'"):
        check_added_degradation("nope", {"type": "nope"}, photo, [])
    with pytest.raises(ValueError, match="cannot import module"):
        check_added_degradation("gone", {"type": "tests.plugins_example.missing:Gone"}, photo, [])


def test_check_photo_is_a_real_centre_crop(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("not a photo")
    Image.fromarray(np.full((300, 200, 3), 128, np.uint8)).save(tmp_path / "z.png")
    crop = check_photo(str(tmp_path), size=64)
    assert crop.shape == (64, 64, 3) and crop.dtype == np.float32 and abs(float(crop.mean()) - 128 / 255) < 1e-6
    with pytest.raises(ValueError, match="no decodable photo"):
        check_photo(str(tmp_path / "empty"))


def test_extension_configs_new_type_only_then_all_adapters(tmp_path: Path) -> None:
    base = TrainConfig.model_validate({**RECIPE, "data": {"source": "photos", "degradation_specs": SPECS}})
    specs = write_spec_file(tmp_path / "jpeg.yaml", {"type": "jpeg", "quality": [10, 40]})
    new_only, extended = extension_configs(base, "jpeg", specs)
    assert new_only.degradations == ["jpeg"] and new_only.data.degradation_specs == specs
    assert new_only.synthesis.counts.composite == 0 and new_only.synthesis.counts.sequence == 0
    assert new_only.synthesis.counts.single == 3 and new_only.synthesis.counts.clean == 2
    assert extended.degradations == ["noise", "blur", "jpeg"] and extended.data.degradation_specs == SPECS
    assert new_only.model == extended.model == "tiny" and new_only.phase2 == base.phase2
    _, replaced = extension_configs(base, "noise", specs)
    assert replaced.degradations == ["noise", "blur"]
    overrides = base.model_copy(update={"phase2": base.phase2.model_copy(update={"steps": 7}), "model": "small"})
    new_only, extended = extension_configs(base, "jpeg", specs, overrides)
    assert new_only.phase2.steps == 7 and extended.model == "tiny"  # the base backbone's preset always
    assert plan_dataset(new_only, str(tmp_path / "w")).label_names == ["clean", "jpeg"]


def test_each_retraining_keeps_the_identity_shares_of_its_own_adapters(tmp_path: Path) -> None:
    shares = {"noise": 0.0, "blur": 0.3}
    base = TrainConfig.model_validate({**RECIPE, "data": {"source": "photos", "degradation_specs": SPECS},
                                       "phase2": {**RECIPE["phase2"], "clean_fraction_by_type": shares}})
    specs = write_spec_file(tmp_path / "jpeg.yaml", {"type": "jpeg", "quality": [10, 40]})
    new_only, extended = extension_configs(base, "jpeg", specs)
    assert new_only.phase2.clean_fraction_by_type == {} and extended.phase2.clean_fraction_by_type == shares
    new_only, _ = extension_configs(base, "noise", specs)  # a replaced adapter keeps its own share
    assert new_only.phase2.identity_share("noise") == 0.0
    assert reduced_config(base, "noise").phase2.clean_fraction_by_type == {"blur": 0.3}


def test_new_type_sequences_pair_it_with_each_old_type(tmp_path: Path) -> None:
    base = TrainConfig.model_validate({**RECIPE, "data": {"source": "photos", "degradation_specs": SPECS}})
    partners = partner_specs(SPECS, ["noise", "blur", "no_such_type"])
    assert list(partners) == ["noise", "blur"] and partners["noise"]["sigma"] == [10, 50]
    specs = write_spec_file(tmp_path / "jpeg.yaml", [{"type": "jpeg", "quality": [10, 40]}, *partners.values()])
    new_only, _ = extension_configs(base, "jpeg", specs, partners=list(partners))
    assert new_only.degradations == ["jpeg"] and new_only.sequence_partners == ["noise", "blur"]
    assert new_only.synthesis.counts.sequence == 2 and new_only.synthesis.counts.composite == 0
    plan = plan_dataset(new_only, str(tmp_path / "w"))
    assert plan.label_names == ["clean", "jpeg", "noise", "blur"] and plan.partners == ["noise", "blur"]
    assert plan.recipe_hash != plan_dataset(new_only.model_copy(update={"sequence_partners": []}),
                                            str(tmp_path / "w")).recipe_hash
    # a recipe without partners keeps its hash (datasets synthesized before partners existed stay valid)
    assert plan_dataset(base, str(tmp_path / "w")).to_dict()["partners"] == []

    from abair_core.data.synthesis import synthesize_patches
    from abair_core.degradations.specs import load_degradation_specs

    built = load_degradation_specs(specs)
    photo = np.random.default_rng(0).random((96, 96, 3)).astype(np.float32)
    config = new_only.synthesis.model_copy(update={"counts": new_only.synthesis.counts.model_copy(
        update={"sequence": 40})})
    patches = synthesize_patches(photo, "a.png", {"jpeg": built["jpeg"]}, plan.label_names, config,
                                 {n: built[n] for n in plan.partners})
    pairs = [patches.names[i].split("+") for i in patches.indices(("sequence",))]
    assert len(pairs) == 40 and all("jpeg" in p and len(set(p)) == 2 for p in pairs)
    assert {p[0] for p in pairs} == {"jpeg", "noise", "blur"}  # both orders
    assert {n for p in pairs for n in p} == {"jpeg", "noise", "blur"}
    assert len(patches.indices(("single",), ("jpeg",))) == 3 and not len(patches.indices(("single",), ("noise",)))
    with pytest.raises(ValueError, match="sequence_partners must be distinct"):
        new_only.model_validate({**new_only.model_dump(), "sequence_partners": ["jpeg"]})


def _dataset(config: TrainConfig, photos: Path, root: Path) -> str:
    plan = plan_dataset(config, str(root))
    uri, pending = write_source_plan(plan_sources(str(photos), "**/*", plan, exclude=()), plan)
    return finish_dataset(uri, synthesize_chunk(read_source_rows(uri, pending), config, plan), plan)["manifest_uri"]


def test_estimator_trains_on_the_union_of_old_and_new_datasets(tmp_path: Path) -> None:
    torch.manual_seed(0)
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype(np.uint8)).save(photos / "a.png")
    base = TrainConfig.model_validate({**RECIPE, "data": {"source": str(photos), "degradation_specs": SPECS}})
    specs = write_spec_file(tmp_path / "specs" / "jpeg.yaml", {"type": "jpeg", "quality": [10, 40]})
    new_only, extended = extension_configs(base, "jpeg", specs)
    old_manifest = _dataset(base, photos, tmp_path / "store")
    new_manifest = _dataset(new_only, photos, tmp_path / "store")

    union = load_union_patches([old_manifest, new_manifest, old_manifest], ["clean", "noise", "blur", "jpeg"])
    assert union.label_names == ["clean", "noise", "blur", "jpeg"]
    singles = {n: len(union.indices(("single",), (n,))) for n in ("noise", "blur", "jpeg")}
    assert singles == {"noise": 3, "blur": 3, "jpeg": 3} and len(union.indices(("clean",))) == 4
    jpeg = union.indices(("single",), ("jpeg",))
    assert set(np.unique(union.labels[jpeg])) == {3}  # re-indexed from ["clean", "jpeg"]

    backbone = build_model("tiny")
    save_backbone(str(tmp_path / "backbone.safetensors"), backbone)
    backbone, fp = load_backbone(str(tmp_path / "backbone.safetensors"))
    ensure_adapter_slots(backbone, extended.adapter)
    paths = {}
    for name in extended.degradations:
        add_adapter(backbone, name)
        paths[name] = str(tmp_path / f"adapter-{name}.safetensors")
        save_adapter(paths[name], backbone, name, extended.adapter, fp)
    summary = train_extended_estimator_file(extended, [old_manifest, new_manifest], paths,
                                            str(tmp_path / "estimator.safetensors"))
    assert summary["steps"] == 2 and summary["patches"] == len(union) and len(summary["dataset_hashes"]) == 2
    assert extended.phase3.balance_classes is None and summary["balance_classes"] is True  # a union: balanced
    assert summary["base_distillation"] == 0.0  # no base estimator to keep
    base_estimator = str(tmp_path / "estimator.safetensors")
    kept = train_extended_estimator_file(extended, [old_manifest, new_manifest], paths,
                                         str(tmp_path / "kept.safetensors"), base_estimator_path=base_estimator)
    assert extended.phase3.base_distillation is None and kept["base_distillation"] == 1.0
    assert "distillation" in kept["metrics"]
    off = extended.model_copy(update={"phase3": extended.phase3.model_copy(update={"base_distillation": 0.0})})
    plain = train_extended_estimator_file(off, [old_manifest, new_manifest], paths,
                                          str(tmp_path / "plain.safetensors"), base_estimator_path=base_estimator)
    assert plain["base_distillation"] == 0.0 and "distillation" not in plain["metrics"]
    assert plain["trainable"] == "all" and plain["trained_classes"] is None
    _only_an_expert_trains(tmp_path, extended, [old_manifest, new_manifest], paths)
    from abair_core.bundle import assemble_bundle

    model = assemble_bundle(tmp_path / "bundle", str(tmp_path / "backbone.safetensors"), paths,
                            str(tmp_path / "estimator.safetensors"))
    assert model.class_names == ["clean", "noise", "blur", "jpeg"]
    with pytest.raises(ValueError, match=r"hold no single patches of \['jpeg'\]"):
        train_extended_estimator_file(extended, [old_manifest], paths, str(tmp_path / "e2.safetensors"))
    assert missing_manifests([old_manifest, None, str(tmp_path / "gone.parquet")]) == \
        ["None", str(tmp_path / "gone.parquet")]


def _only_an_expert_trains(tmp_path: Path, extended: TrainConfig, manifests: list[str],
                           paths: dict[str, str]) -> None:
    """``phase3.trainable: new_classes`` from a base that lacks jpeg: an expert gates the base, kept as it is."""
    from abair_core.components import load_estimator, save_estimator

    torch.manual_seed(5)
    base = DegradationEstimator(extended.estimator, ["clean", "noise", "blur"]).eval()
    save_estimator(str(tmp_path / "base3.safetensors"), base, {})
    experts = extended.model_copy(update={"phase3": extended.phase3.model_copy(
        update={"warm_start": "base", "trainable": "new_classes", "expert_steps": 3})})
    grown = train_extended_estimator_file(experts, manifests, paths, str(tmp_path / "grown.safetensors"),
                                          base_estimator_path=str(tmp_path / "base3.safetensors"))
    assert grown["trained_classes"] == ["jpeg"] and grown["warm_start"]["classes"] == ["clean", "noise", "blur"]
    assert grown["steps"] == 3 and "distillation" in grown["metrics"]  # phase3.expert_steps, not phase3.steps
    loaded = load_estimator(str(tmp_path / "grown.safetensors"))
    assert loaded.expert_classes == {"jpeg": ["clean", "noise", "blur", "jpeg"]}
    assert loaded.class_names == ["clean", "noise", "blur", "jpeg"]
    assert grown["trainable_parameters"] == sum(p.numel() for p in loaded.experts["jpeg"].parameters())
    x = torch.rand(4, 3, 32, 32)
    with torch.no_grad():
        old, new = base(x).softmax(1), loaded(x).softmax(1)
        q = loaded.experts["jpeg"](x).softmax(1)[:, 3]
    assert torch.allclose(new[:, 3], q, atol=1e-5)  # the expert's probability of jpeg
    assert torch.allclose(new[:, :3], old * (1 - q[:, None]), atol=1e-5)  # the base's, scaled by 1 - q
    # a removal trains nothing: the base's weights without the removed class's row, the expert kept
    shrunk = experts.model_copy(update={"degradations": ["noise", "jpeg"]})
    kept = train_extended_estimator_file(shrunk, manifests, {n: paths[n] for n in ("noise", "jpeg")},
                                         str(tmp_path / "shrunk.safetensors"),
                                         base_estimator_path=str(tmp_path / "grown.safetensors"))
    assert kept["steps"] == 0 and kept["trained_classes"] == [] and kept["trainable_parameters"] == 0
    assert kept["warm_start"] == {"from": "base", "classes": ["clean", "noise", "jpeg"]}  # kept, not from scratch
    with torch.no_grad():
        out = load_estimator(str(tmp_path / "shrunk.safetensors"))(x)
        assert torch.allclose(out[:, :2], loaded(x)[:, :2], atol=1e-5)  # clean and noise: the base's rows
    assert torch.allclose(out.softmax(1)[:, 2], q, atol=1e-5)  # jpeg: still its expert's probability
    # a recipe whose estimator changed shape since the base was trained (the demo's stem of 2026-12-07) still
    # extends it: the new estimator keeps the base's shape
    restemmed = experts.model_copy(update={"estimator": experts.estimator.model_copy(update={"stem": "space_to_depth"})})
    train_extended_estimator_file(restemmed, manifests, paths, str(tmp_path / "restemmed.safetensors"),
                                  base_estimator_path=str(tmp_path / "base3.safetensors"))
    assert base.config.stem == "full" and load_estimator(str(tmp_path / "restemmed.safetensors")).config.stem == "full"
    no_base = experts.model_copy(update={"phase3": experts.phase3.model_copy(update={"warm_start": "scratch"})})
    with pytest.raises(ValueError, match="needs the base bundle's estimator"):
        train_extended_estimator_file(no_base, manifests, paths, str(tmp_path / "none.safetensors"))


def test_parameter_budget_counts_every_component(tmp_path: Path) -> None:
    backbone = build_model("tiny")
    ensure_adapter_slots(backbone, TrainConfig.model_validate({"name": "x"}).adapter)
    for name in ("noise", "jpeg"):
        add_adapter(backbone, name)
    from abair_core.models.estimator import EstimatorConfig

    estimator = DegradationEstimator(EstimatorConfig(), ["clean", "noise", "jpeg"])
    save_bundle(ABAIR(backbone, estimator, ["noise", "jpeg"]), tmp_path / "b")
    budget = parameter_budget(tmp_path / "b", ["jpeg"])
    model = load_bundle(tmp_path / "b")
    every = sum(p.numel() for p in model.parameters())
    assert budget["whole_model"] == every
    assert budget["estimator"] == sum(p.numel() for p in model.estimator.parameters())
    assert budget["trainable"] == budget["adapters"]["jpeg"] + budget["estimator"] < budget["whole_model"]
    expert = parameter_budget(tmp_path / "b", ["jpeg"], estimator_trained=1000)  # the jpeg expert alone
    assert expert["trainable"] == budget["adapters"]["jpeg"] + 1000
    assert expert["trained_components"] == ["adapter.jpeg", "the new class's expert estimator"]
    assert budget["adapters"]["jpeg"] == budget["adapters"]["noise"] > 0
    assert count_parameters(tmp_path / "b" / "backbone.safetensors") == budget["backbone"]


def test_suite_gets_a_task_only_when_it_has_none(tmp_path: Path) -> None:
    demo = load_suite(ROOT / "configs/benchmark/demo.yaml")
    assert find_task(demo, "jpeg") == ("unseen", "jpeg_q20")
    same, group, task = suite_with_task(demo, "jpeg", {"type": "jpeg", "quality": 20})
    assert same is demo and (group, task) == ("unseen", "jpeg_q20")
    spec = {"type": f"{PLUGIN}:Speckle", "amount": 0.2}
    extended, group, task = suite_with_task(demo, "speckle", spec)
    assert (group, task) == (ADDED_GROUP, "speckle") and find_task(extended, "speckle") == (ADDED_GROUP, "speckle")
    added = extended.groups[ADDED_GROUP][0]
    assert added.oracle_components() == ["speckle"] and added.true_label() == "speckle"
    assert ADDED_GROUP not in demo.groups  # the original is untouched


def _scores(values: dict[str, dict[str, float | None]]) -> dict:
    return {"suite": "t", "groups": {"known": ["noise_s25", "blur"], "unseen": ["jpeg_q20"]},
            "scores": {t: {m: {"psnr": v} for m, v in row.items() if v is not None} for t, row in values.items()}}


def test_report_arithmetic_and_markdown() -> None:
    before = _scores({"noise_s25": {"oh": 28.0, "sw": 28.2, "oracle": 28.5}, "blur": {"oh": 25.0, "sw": 25.1},
                      "jpeg_q20": {"input": 27.0, "oh": 27.5, "sw": 27.6, "oracle": None}})
    after = _scores({"noise_s25": {"oh": 27.9, "sw": 28.3, "oracle": 28.5}, "blur": {"oh": 24.7, "sw": 25.1},
                     "jpeg_q20": {"input": 27.0, "oh": 29.0, "sw": 28.9, "oracle": 29.2}})
    comparison = compare_scores(before, after, "jpeg_q20")
    new = comparison["new_task"]
    assert new["group"] == "unseen" and new["methods"]["oh"]["gain"] == pytest.approx(1.5)
    assert new["methods"]["oracle"] == {"before": None, "after": 29.2, "gain": None}
    assert comparison["tasks"]["blur"]["methods"]["oh"]["change"] == pytest.approx(-0.3)
    assert "jpeg_q20" not in comparison["tasks"]
    report = build_extension_report(
        name="jpeg", action="add", base={"version": "1", "components": {"backbone": "1", "adapter.noise": "1",
                                                                         "estimator": "1"}},
        new={"version": "2", "components": {"backbone": "1", "adapter.noise": "1", "adapter.jpeg": "1",
                                            "estimator": "2"}},
        comparison=comparison, budget={"trainable": 1500, "whole_model": 100_000, "trainable_share": 0.015,
                                       "trained_components": ["adapter.jpeg", "estimator"]},
        seconds=30.0, train_all_seconds=120.0, lineage={"mode": "reused", "manifests": ["m"], "missing": []},
        suite="t", partners=["noise"])
    assert report["unchanged_components"] == ["adapter.noise", "backbone"] and report["mixed_with"] == ["noise"]
    assert report["wall_share"] == 0.25
    assert report["old_tasks_worst_change_db"]["oh"] == pytest.approx(-0.3)
    assert report["old_tasks_within_tolerance"] == {"oh": False, "sw": True}
    assert report["known_tasks_worst_change_db"]["oh"] == pytest.approx(-0.3)  # both other tasks are known here
    assert report["known_tasks_within_tolerance"] == {"oh": False, "sw": True}
    json.dumps(report)
    markdown = render_extension_report(report)
    assert "abair v1 -> v2 (challenger)" in markdown and "1.5k** of 100.0k" in markdown
    assert "30 s** vs 120 s" in markdown and "| oh | 27.50 | 29.00 | +1.50 |" in markdown
    assert "| blur | known | 25.00 | 24.70 | -0.30 |" in markdown and "more than 0.2 dB lower" in markdown
    assert "Worst change of the known tasks: OH -0.30 dB (more than 0.2 dB lower), SW +0.00 dB (within 0.2 dB); " \
           "of all other tasks" in markdown
    assert "sequences of `jpeg` with noise (either order)" in markdown
    unknown = render_extension_report({**report, "train_all_seconds": None, "wall_share": None,
                                       "lineage": {"mode": "re-synthesized", "manifests": ["m"], "missing": ["x"]}})
    assert "vs the full `train_all`: unknown" in unknown and "re-synthesized deterministically" in unknown
    removed = render_extension_report({**report, "action": "remove"})
    assert "# Removed adapter `jpeg`" in removed and "before (v1, with the adapter) | after (v2, unseen)" in removed


def test_removal_is_checked_and_drops_the_adapter_from_the_recipe() -> None:
    base = TrainConfig.model_validate({**RECIPE, "data": {"source": "photos", "degradation_specs": SPECS}})
    reduced = reduced_config(base, "blur")
    assert reduced.degradations == ["noise"] and reduced.name == "ext-without-blur"
    assert reduced.synthesis == base.synthesis and reduced.model == base.model
    check_removal("blur", ["noise", "blur"], "3")
    with pytest.raises(ValueError, match=r"abair v3 has no such adapter \(adapters: noise, blur\)"):
        check_removal("rain", ["noise", "blur"], "3")
    with pytest.raises(ValueError, match="the only adapter"):
        check_removal("noise", ["noise"], "3")
    assert removed_task_spec("noise", None, SPECS)["sigma"] == [10, 50]
    assert removed_task_spec("speckle", None, SPECS) == {"type": "speckle"}



def test_the_known_verdict_ignores_clean_mild_and_mixed_rows() -> None:
    comparison = {"tasks": {
        "rain": {"group": "known", "methods": {"oh": {"change": 0.0}, "sw": {"change": -0.1}}},
        "clean": {"group": "clean", "methods": {"oh": {"change": -12.7}, "sw": {"change": -12.0}}},
        "blur_noise": {"group": "mixed", "methods": {"oh": {"change": -0.7}, "sw": {"change": None}}}}}
    assert worst_changes(comparison) == {"oh": pytest.approx(-12.7), "sw": pytest.approx(-12.0)}
    assert worst_changes(comparison, ("known",)) == {"oh": 0.0, "sw": pytest.approx(-0.1)}
    assert worst_changes(comparison, ("unseen",)) == {"oh": None, "sw": None}


def test_the_spec_files_photos_feed_the_new_type_only(tmp_path: Path) -> None:
    base = TrainConfig.model_validate({**RECIPE, "data": {"source": "photos", "degradation_specs": SPECS}})
    path = tmp_path / "jpeg.yaml"
    path.write_text("degradation: {type: jpeg, quality: [10, 40]}\nphotos: {source: /archive/jpegs, include: '*.png'}\n")
    added = load_added_degradation(path)
    assert added.photos.source == "/archive/jpegs" and added.photos.include == "*.png"
    specs = write_spec_file(tmp_path / "specs.yaml", dict(added.degradation))
    new_only, extended = extension_configs(base, "jpeg", specs, photos=added.photos)
    assert (new_only.data.source, new_only.data.include) == ("/archive/jpegs", "*.png")
    assert new_only.data.degradation_specs == specs
    assert extended.data == base.data  # the old types (and the estimator's lineage data) keep the base's photos
    path.write_text("degradation: {type: jpeg}\nphotos: {folder: /archive}\n")
    with pytest.raises(ConfigError, match=r"jpeg.yaml.*photos"):
        load_added_degradation(path)
