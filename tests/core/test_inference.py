"""Tiled restoration: identity is exact, a small conv net equals untiled inference, odd sizes work."""

import importlib.util
import itertools
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from skimage import data

from abair_core.inference import blend_window, restore_tiled, tile_starts

ROOT = Path(__file__).resolve().parents[2]


def _photo(height: int, width: int) -> torch.Tensor:
    image = data.astronaut()[:height, :width].astype(np.float32) / 255.0
    return torch.from_numpy(image).permute(2, 0, 1)[None].contiguous()


def _conv_net(seed: int = 0) -> torch.nn.Module:
    """3 layers of 3x3 convs: receptive-field radius 3, within overlap // 4 for overlap >= 12."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.GELU(),
        torch.nn.Conv2d(8, 8, 3, padding=1),
        torch.nn.GELU(),
        torch.nn.Conv2d(8, 3, 3, padding=1),
    ).eval()


@pytest.mark.parametrize(("height", "width"), [(150, 201), (64, 64), (40, 300), (97, 131)])
def test_identity_gives_the_input(height: int, width: int) -> None:
    x = _photo(height, width)
    out = restore_tiled(lambda t: t, x, tile=64, overlap=16)
    assert out.shape == x.shape and out.dtype == torch.float32
    torch.testing.assert_close(out, x, rtol=0, atol=1e-6)


@pytest.mark.parametrize(("height", "width", "batch_size"), [(150, 201, 1), (192, 256, 4), (129, 136, 3)])
def test_conv_net_tiled_equals_untiled(height: int, width: int, batch_size: int) -> None:
    net = _conv_net()
    x = _photo(height, width)
    with torch.no_grad():
        reference = net(x)
    out = restore_tiled(net, x, tile=64, overlap=16, batch_size=batch_size)
    assert (out - reference).abs().max().item() < 1e-3


def test_tile_seams_would_show_without_the_zero_margin() -> None:
    """Plain averaging of tiles (no blend window) differs from untiled: the window is what makes it exact."""
    net = _conv_net()
    x = _photo(150, 201)
    with torch.no_grad():
        reference = net(x)
        naive = torch.zeros_like(reference)
        count = torch.zeros_like(reference)
        for y in tile_starts(150, 64, 16):
            for x0 in tile_starts(201, 64, 16):
                naive[..., y : y + 64, x0 : x0 + 64] += net(x[..., y : y + 64, x0 : x0 + 64])
                count[..., y : y + 64, x0 : x0 + 64] += 1
    assert ((naive / count) - reference).abs().max().item() > 1e-3


def test_small_images_go_straight_through_padded_to_the_multiple() -> None:
    seen: list[tuple[int, ...]] = []

    def record(t: torch.Tensor) -> torch.Tensor:
        seen.append(tuple(t.shape))
        return t * 0.5

    x = _photo(50, 61)
    out = restore_tiled(record, x, tile=64, overlap=16, multiple=8)
    assert seen == [(1, 3, 56, 64)]
    torch.testing.assert_close(out, x * 0.5)


def test_fn_sees_only_tile_sized_batches() -> None:
    shapes: set[tuple[int, ...]] = set()

    def record(t: torch.Tensor) -> torch.Tensor:
        shapes.add(tuple(t.shape))
        return t

    restore_tiled(record, _photo(300, 400), tile=128, overlap=32, batch_size=2)
    assert shapes == {(2, 3, 128, 128), (1, 3, 128, 128)} or shapes == {(2, 3, 128, 128)}


def test_layout_and_window() -> None:
    assert tile_starts(64, 64, 16) == [0]
    assert tile_starts(201, 64, 16) == [0, 48, 96, 137]
    starts = tile_starts(1000, 256, 32)
    assert starts[-1] == 1000 - 256 and all(b - a <= 256 - 32 for a, b in itertools.pairwise(starts))
    window = blend_window(64, 16, taper_start=True, taper_end=False)
    assert window[:4].sum() == 0 and window[12:].eq(1).all() and (window[4:12].diff() > 0).all()
    rising = window[:16]
    falling = blend_window(64, 16, taper_start=False, taper_end=True)[-16:]
    torch.testing.assert_close(rising + falling, torch.ones(16))  # partition of unity over the overlap


def test_batch_of_images_and_bad_arguments() -> None:
    x = torch.cat([_photo(80, 90), _photo(80, 90).flip(-1)])
    torch.testing.assert_close(
        restore_tiled(lambda t: 1 - t, x, tile=32, overlap=8), 1 - x, rtol=0, atol=1e-6
    )
    with pytest.raises(ValueError, match="multiple"):
        restore_tiled(lambda t: t, x, tile=60, multiple=8)
    with pytest.raises(ValueError, match="overlap"):
        restore_tiled(lambda t: t, x, tile=64, overlap=40)
    with pytest.raises(ValueError, match="N, C, H, W"):
        restore_tiled(lambda t: t, x[0], tile=64)
    with pytest.raises(ValueError, match="changed the tile shape"):
        restore_tiled(lambda t: t[..., :-1], x, tile=32, overlap=8)


def _benchmark_module():
    spec = importlib.util.spec_from_file_location("tiled_memory", ROOT / "benchmarks" / "tiled_memory.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tiled_memory"] = module
    spec.loader.exec_module(module)
    return module


def test_tiled_memory_benchmark_helpers(tmp_path) -> None:
    bench = _benchmark_module()
    args = bench.parse_args(["--model-preset", "small", "--megapixels", "4", "16", "--tile", "256"])
    assert (args.model_preset, args.megapixels, args.tile, args.overlap) == ("small", [4.0, 16.0], 256, 32)
    row = bench.measure(lambda t: t, megapixels=0.05, tile=64, overlap=16)
    assert row["height"] * row["width"] >= 50_000 and row["seconds"] > 0 and row["peak_rss_mib"] > 0
    table = bench.render_table([row], preset="identity")
    assert table.splitlines()[0].startswith("| megapixels")
    doc = tmp_path / "BENCHMARKS.md"
    doc.write_text("# Benchmarks\n\n## Other\nkeep me\n")
    bench.update_section(doc, "Tiled inference memory", "first table\n")
    bench.update_section(doc, "Tiled inference memory", "second table\n")
    text = doc.read_text()
    assert "keep me" in text and "second table" in text and "first table" not in text
    assert text.count("## Tiled inference memory") == 1
