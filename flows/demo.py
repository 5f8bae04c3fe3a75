"""`abair demo`: the whole product on embedded defaults, in minutes, on photos bundled with the project.

train_all on the scikit-image training photos → restore a small archive made from held-out photos with
the champion bundle → before/after PSNR table and a side-by-side PNG → the demo benchmark table.
Everything runs through the same flows a production site runs; only the sizes are demo-sized.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from prefect import flow

from abair_core.io.storage import atomic_write_bytes, join_uri
from abair_core.sample_archive import (
    ArchiveItem,
    compare_restoration,
    render_comparison_markdown,
    side_by_side_png,
    write_sample_archive,
)
from flows.runtime import pipeline_from
from tasks.sample_photos import HOLDOUT_SAMPLES, load_sample

DEMO_ARCHIVE = (
    ArchiveItem("astronaut_noise.png", "astronaut", {"type": "noise", "sigma": 25}),
    ArchiveItem("chelsea_haze.png", "chelsea", {"type": "haze", "t_mean": 0.5}),
    ArchiveItem("coffee_rain.png", "coffee", {"type": "rain"}),
    ArchiveItem("camera_low_light.png", "camera", {"type": "low_light"}),
    ArchiveItem("chelsea_blur.png", "chelsea", {"type": "blur", "kind": "gaussian", "sigma": 1.5}),
    ArchiveItem("coffee_clean.png", "coffee", None),
)


def _say(text: str) -> None:
    """Write to the terminal directly: the demo's tables are its output, not log records."""
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


@flow(name="demo")
def demo(train_config: str = "configs/train/demo.yaml", pipeline: str | None = None) -> dict:
    """Train, restore a held-out sample archive, evaluate; print timings, tables and where to look."""
    from flows.evaluate import evaluate
    from flows.restore_archive import restore_archive
    from flows.train import train_all

    config = pipeline_from(pipeline)
    root = config.storage.root
    began = time.perf_counter()
    _say("== ABAIR-flow demo: tiny model, CPU-sized (numbers are demo-sized, not the paper's) ==")
    trained = train_all(train_config=train_config, pipeline=pipeline)
    train_seconds = time.perf_counter() - began

    photos = {name: load_sample(name).astype("float32") / 255.0 for name in HOLDOUT_SAMPLES}
    archive, reference, restored = (join_uri(root, f"demo/{part}") for part in ("archive", "reference", "restored"))
    write_sample_archive(photos, DEMO_ARCHIVE, archive, reference)
    t0 = time.perf_counter()
    summary = restore_archive(src=archive, dst=restored, model="models:/abair@champion", pipeline=pipeline)
    restore_seconds = time.perf_counter() - t0

    rows = compare_restoration(DEMO_ARCHIVE, archive, restored, reference)
    sheet_uri = join_uri(root, "demo/side_by_side.png")
    atomic_write_bytes(sheet_uri, side_by_side_png(DEMO_ARCHIVE, archive, restored, reference))

    t0 = time.perf_counter()
    evaluation = evaluate(model="models:/abair@champion", suite="configs/benchmark/demo.yaml", pipeline=pipeline)
    eval_seconds = time.perf_counter() - t0

    timings = {f"train_all: {k}": v for k, v in trained.get("timings", {}).items()}
    timings.update({"train_all (wall, with start-up)": train_seconds, "restore_archive": restore_seconds,
                    "evaluate": eval_seconds, "demo (total)": time.perf_counter() - began})
    _say("\n## Wall time per phase (this machine)\n")
    _say("| phase | seconds |\n|---|---:|")
    for name, seconds in timings.items():
        _say(f"| {name} | {seconds:.1f} |")
    _say(f"\n## Sample archive restored with models:/abair@champion (version {summary.get('model_version')})\n")
    _say(render_comparison_markdown(rows))
    _say("\n## Demo benchmark (held-out photos; demo-sized models)\n")
    report = Path(str(evaluation.get("report", "")))
    _say(report.read_text() if report.is_file() else f"(no evaluation report at {report})")
    mlflow_db = config.mlflow.tracking_uri
    _say("\n## Where to look\n")
    _say(f"- restored images: {restored}  (report: {join_uri(restored, '_abair/report.md')})")
    _say(f"- side-by-side PNG: {sheet_uri}")
    _say(f"- evaluation report: {evaluation.get('report_dir', '')}")
    _say(f"- MLflow UI: mlflow ui --backend-store-uri {mlflow_db}")
    _say("- registry: abair models list")
    return {"timings": timings, "comparison": rows, "summary": summary, "evaluation": evaluation,
            "side_by_side": sheet_uri, "workdir": str(Path.cwd())}
