"""benchmarks/mild_routing.py on an untrained tiny bundle: every clean and mild input is counted under its route."""

from __future__ import annotations

from pathlib import Path

SUITE = {
    "name": "routing", "images": None, "max_images": 2, "crop": 48, "seeds": [0, 1],
    "groups": {
        "known": [{"id": "noise_s25", "degradation": {"type": "noise", "sigma": 25}}],
        "clean": [{"id": "clean"}],
        "mild": [{"id": "noise_s5", "degradation": {"type": "noise", "sigma": 5}, "label": "clean"}],
    },
}


def test_routes_count_every_clean_and_mild_input_and_price_them(load_script, untrained_bundle: Path,
                                                                 suite_on_holdout) -> None:
    script = load_script("mild_routing")
    suite_path = suite_on_holdout(SUITE)
    model = script.load_bundle(untrained_bundle).eval()
    suite, photos = script.suite_photos(str(suite_path), None)
    rows = script.measure(model, suite, photos)

    assert sorted({r["task"] for r in rows}) == ["clean", "noise_s5"]  # known inputs are not routed here
    assert sum(r["task"] == "clean" for r in rows) == 4 == sum(r["task"] == "noise_s5" for r in rows)
    for r in rows:
        assert r["top"] in model.estimator.class_names and 0 < r["p_top"] <= 1
        if r["top"] == "clean":  # passed through untouched: exactly the input's PSNR
            assert r["sw"] == r["input"]
    table = script.route_table(rows)
    counted = [line.split("|")[3].strip() for line in table.splitlines()[2:]]
    per_task: dict[str, int] = {}
    for line, count in zip(table.splitlines()[2:], counted, strict=True):
        task = line.split("|")[1].strip()
        taken, total = map(int, count.split("/"))
        assert total == 4
        per_task[task] = per_task.get(task, 0) + taken
    assert per_task == {"clean": 4, "noise_s5": 4}
    assert len(script.worst_table(rows, count=3).splitlines()) == 2 + 3 + 3  # three per task
