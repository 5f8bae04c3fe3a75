"""The demo's sample archive: degraded copies of held-out photos and an honest before/after table."""

import numpy as np
from skimage import data

from abair_core.io.storage import list_files
from abair_core.sample_archive import (
    ArchiveItem,
    compare_restoration,
    render_comparison_markdown,
    side_by_side_png,
    write_sample_archive,
)


def test_archive_comparison_and_sheet(tmp_path):
    photos = {"chelsea": data.chelsea()[:64, :80].astype(np.float32) / 255}
    items = [ArchiveItem("noisy.png", "chelsea", {"type": "noise", "sigma": 25}),
             ArchiveItem("clean.png", "chelsea", None)]
    archive, reference, restored = (str(tmp_path / n) for n in ("archive", "reference", "restored"))
    write_sample_archive(photos, items, archive, reference)
    write_sample_archive(photos, [ArchiveItem(i.key, i.photo, None) for i in items], restored, reference)
    assert [f.key for f in list_files(archive)] == ["clean.png", "noisy.png"]
    rows = {r["key"]: r for r in compare_restoration(items, archive, restored, reference)}
    assert 18 < rows["noisy.png"]["psnr_before"] < 24
    assert rows["noisy.png"]["psnr_after"] == float("inf")  # "restored" here is the clean photo itself
    table = render_comparison_markdown(list(rows.values()))
    assert "noise (sigma=25)" in table and "| clean.png | clean |" in table
    assert side_by_side_png(items, archive, restored, reference, height=32)[:8] == b"\x89PNG\r\n\x1a\n"
