"""benchmarks/adapter_learnability.py: a new type's adapter (or the whole backbone) trained and scored on held-out crops."""

from __future__ import annotations

from abair_core.models.lora import adapter_names, lora_modules


def test_a_bare_backbone_drops_the_old_adapters_and_wraps_the_asked_convolutions(load_script, untrained_bundle) -> None:
    script = load_script("adapter_learnability")
    backbone = script.bare_backbone(str(untrained_bundle), 8, None,
                                    ["qkv", "project_in", "project_out", "patch_embed", "output"])
    wrapped = lora_modules(backbone)
    assert adapter_names(backbone) == []
    assert {"patch_embed", "output"} <= set(wrapped)
    assert {module.rank for module in wrapped.values()} == {8}


def test_adapter_and_full_fine_tuning_rows_land_in_their_section(load_script, untrained_bundle, photos_and_holdout,
                                                                  tmp_path, capsys) -> None:
    script = load_script("adapter_learnability")
    photos, holdout = photos_and_holdout
    doc = tmp_path / "BENCHMARKS.md"
    common = ["--bundle", str(untrained_bundle), "--photos", str(photos), "--holdout", str(holdout),
              "--types", "jpeg", "--steps", "0", "4", "--crops-per-image", "1", "--doc", str(doc)]
    assert script.main([*common, "--section", "Adapter"]) == 0
    assert script.main([*common, "--full", "--section", "Full"]) == 0
    text = doc.read_text()
    assert "## Adapter" in text and "## Full" in text and "every backbone weight fine-tuned" in text
    full = text.split("## Full")[1]
    rows = [line.split("|")[1:-1] for line in full.splitlines() if line.startswith("| jpeg |")]
    assert [int(r[2]) for r in rows] == [0, 4]
    assert float(rows[0][5]) == float(rows[0][4])  # zero steps: the untouched backbone
    assert float(rows[1][5]) != float(rows[1][4])  # four steps of fine-tuning moved every weight's output
    capsys.readouterr()
