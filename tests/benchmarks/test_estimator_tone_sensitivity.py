"""benchmarks/estimator_tone_sensitivity.py on an untrained tiny bundle: every photo answered under every tone."""

from __future__ import annotations

from pathlib import Path

SUITE = {"name": "tones", "images": None, "crop": 48, "seeds": [0],
         "groups": {"clean": [{"id": "clean"}]}}


def test_every_photo_is_answered_under_every_tone_and_counted(load_script, untrained_bundle: Path,
                                                             suite_on_holdout, capsys) -> None:
    script = load_script("estimator_tone_sensitivity")
    suite_path = suite_on_holdout(SUITE)
    restorer = script.Restorer(script.load_bundle(untrained_bundle), estimator_crops=4)
    photos = script.load_images(script.load_suite(str(suite_path)).images)
    found = script.answers(restorer, photos)
    assert sorted(Path(k).stem for k in found) == ["astronaut", "chelsea"]
    names = restorer.model.class_names
    for row in found.values():
        assert list(row) == list(script.TONES)
        assert all(top in names and 0 < p <= 1 for top, p in row.values())
    counts = script.summary(found)
    assert counts["photos"] == 2
    assert counts["clean under every change"] <= counts["clean as is"] <= 2
    table = script.photo_table(found)
    assert len(table.splitlines()) == 2 + 2 and "contrast 0.85" in table.splitlines()[0]

    assert script.main(["--models", str(untrained_bundle), "--suite", str(suite_path), "--no-write"]) == 0
    printed = capsys.readouterr().out
    assert "clean under every change" in printed and printed.count("| astronaut |") == 1


def test_tone_changes_do_what_they_name(load_script) -> None:
    import torch

    script = load_script("estimator_tone_sensitivity")
    x = 0.2 + 0.6 * torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    weights = torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)
    luma = (x * weights).sum(1, keepdim=True)
    mean = luma.mean()
    torch.testing.assert_close(script.TONES["contrast 0.85"](x) - mean, 0.85 * (x - mean))  # about the mean luma
    torch.testing.assert_close(script.TONES["as is"](x), x)
    paler = script.TONES["saturation 0.7"](x)
    torch.testing.assert_close((paler * weights).sum(1, keepdim=True), luma)  # luma kept, colour reduced
    torch.testing.assert_close(paler - luma, 0.7 * (x - luma))
    torch.testing.assert_close(script.TONES["gamma 0.8"](x), x ** 0.8)
