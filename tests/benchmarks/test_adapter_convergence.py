"""benchmarks/adapter_convergence.py: one adapter retrained at several Phase II settings on a trained backbone."""

from __future__ import annotations

from abair_core.config import PROJECT_ROOT, load_yaml

DEMO = str(PROJECT_ROOT / "configs/train/demo.yaml")


def test_a_setting_replaces_phase2_steps_and_lr_only(load_script) -> None:
    script = load_script("adapter_convergence")
    base = script.setting_config(DEMO, load_yaml(DEMO)["phase2"]["steps"], load_yaml(DEMO)["phase2"]["lr"], None)
    other = script.setting_config(DEMO, 1000, 0.002, seed=5)
    assert (other.phase2.steps, other.phase2.lr, other.phase2.seed) == (1000, 0.002, 5)
    assert other.phase2.model_dump(exclude={"steps", "lr", "seed"}) == base.phase2.model_dump(exclude={"steps", "lr", "seed"})
    assert other.model_dump(exclude={"phase2"}) == base.model_dump(exclude={"phase2"})


def test_trains_each_setting_and_scores_the_adapters_own_task(load_script, photos_and_holdout, tmp_path, capsys) -> None:
    ablation, script = load_script("do_no_harm_ablation"), load_script("adapter_convergence")
    photos, holdout = photos_and_holdout
    out = tmp_path / "out"
    assert ablation.main(["train", "--variants", "with", "--config", DEMO, "--photos", str(photos), "--out",
                          str(out), "--quick", "--workers", "1"]) == 0
    manifest = next((out / "with" / "store").rglob("manifest-*.parquet"))
    capsys.readouterr()
    assert script.main(["--config", DEMO, "--backbone", str(out / "with/components/backbone.safetensors"),
                        "--manifest", str(manifest), "--adapter", "noise", "--steps", "3", "--lr", "0.002", "0.05",
                        "--suite", str(PROJECT_ROOT / "configs/benchmark/demo.yaml"), "--images", holdout.as_uri(),
                        "--no-write"]) == 0
    rows = [line.split("|")[1:-1] for line in capsys.readouterr().out.splitlines() if line.startswith("| 3 |")]
    rows = rows[len(rows) // 2:]  # the rows printed as each setting finishes come first, then the table
    assert [(r[1].strip(), r[2].strip()) for r in rows] == [("0.002", "noise_s25"), ("0.05", "noise_s25")]
    inputs, alone = {float(r[3]) for r in rows}, {float(r[4]) for r in rows}
    adapted = [float(r[5]) for r in rows]
    assert len(inputs) == 1 and len(alone) == 1  # the same inputs and the same frozen backbone for every setting
    assert adapted[0] != adapted[1]  # the learning rate changed what the adapter learned
