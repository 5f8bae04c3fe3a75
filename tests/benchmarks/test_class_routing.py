"""benchmarks/class_routing.py on an untrained tiny bundle: every input is counted once per estimator."""

from __future__ import annotations

from pathlib import Path

import pytest

SUITE = {
    "name": "routing", "images": None, "max_images": 2, "crop": 48, "seeds": [0, 1],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}}],
        "clean": [{"id": "clean"}],
    },
}


def test_counts_the_inputs_each_estimator_sends_to_the_target(load_script, untrained_bundle: Path,
                                                             suite_on_holdout) -> None:
    script = load_script("class_routing")
    suite, photos = script.suite_photos(str(suite_on_holdout(SUITE)), None)
    estimator = script.load_estimator(str(script.estimator_file(str(untrained_bundle))))
    same = script.load_estimator(str(untrained_bundle / "estimator.safetensors"))
    counts = script.count_routes({"bundle": estimator, "file": same}, "noise", suite, photos)

    assert sorted(counts) == ["clean", "noise_s25"]
    for row in counts.values():
        assert row["inputs"] == 4 and row["bundle"] == row["file"] and 0 <= row["bundle"] <= 4
        assert row["before"]["bundle"] == row["before"]["file"] and 0 <= row["before"]["bundle"] <= 4
    table = script.render(counts, ["bundle", "file"], "noise")
    last = table.splitlines()[-1].split("|")
    assert last[1].strip().startswith("every other task") and int(last[2]) == 4  # the clean task's inputs
    assert last[3].strip() == script._cell(counts["clean"]["bundle"], counts["clean"]["before"]["bundle"])


def test_a_cell_shows_the_count_before_the_gates_only_where_they_changed_it(load_script) -> None:
    script = load_script("class_routing")
    counts = {"noise_s50": {"inputs": 44, "v20": 0, "before": {"v20": 10}},
              "jpeg_q20": {"inputs": 44, "v20": 43, "before": {"v20": 43}}}
    lines = script.render(counts, ["v20"], "jpeg").splitlines()
    assert lines[2] == "| noise_s50 | 44 | 0 (10) |" and lines[3] == "| jpeg_q20 | 44 | 43 |"
    assert lines[-1] == "| every other task (claimed by mistake) | 44 | 0 (10) |"


def test_an_estimator_without_the_target_class_is_refused(load_script, untrained_bundle: Path) -> None:
    script = load_script("class_routing")
    with pytest.raises(SystemExit, match="have no class 'snow'"):
        script.main(["--target", "snow", "--estimator", f"base={untrained_bundle}", "--no-write"])
