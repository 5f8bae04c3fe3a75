"""Megapixels per second of the bare model loop against the full restore_archive flow, on the same images.

Usage: ``python benchmarks/restore_throughput.py [--bundle DIR] [--count 200] [--size 256] [--targets local s3]``.

1. Makes ``--count`` crops of ``--size`` pixels (seeded) from the photos in ``--photos`` (default: the
   photos bundled with scikit-image), half PNG and half JPEG (quality 95).
2. Bare loop: one ``Restorer`` over the decoded images in memory (decode excluded), torch with as many
   threads as the Dask cluster has worker threads.
3. Flow: ``restore_archive`` on the same files, per target (a local folder; S3 through a moto server this
   script starts on 127.0.0.1), on a freshly started Dask LocalCluster passed by address (as a nightly run
   on an existing cluster does), after one warm-up run that starts Prefect's API. Timed from the call to
   the summary: listing, planning, manifests, reading, decoding, model, encoding, writing, report.
Without ``--bundle`` an untrained tiny bundle is built (the output says so): throughput depends on the
architecture, not on the weights. The mode is a fixed adapter by default, so every image goes through
the backbone (``sw`` would pass images the estimator calls clean straight through).
Prints a Markdown table and replaces the "Restore throughput" section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import os
import platform
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from typing import Any

import numpy as np
import yaml
from doc_sections import ROOT, update_section
from PIL import Image

SECTION = "Restore throughput"
BUCKET = "bench"
PHOTO_SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="bundle directory (default: untrained tiny)")
    parser.add_argument("--count", type=int, default=200, help="number of images (>= 200 for the target)")
    parser.add_argument("--size", type=int, default=256, help="side of the square crops")
    parser.add_argument("--photos", type=Path, default=None, help="folder of photos (default: scikit-image's)")
    parser.add_argument("--mode", default=None, help="sw, oh or an adapter id (default: the first adapter)")
    parser.add_argument("--targets", nargs="+", choices=["local", "s3"], default=["local", "s3"])
    parser.add_argument("--workers", type=int, default=2, help="Dask worker processes")
    parser.add_argument("--threads-per-worker", type=int, default=1)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--tile", type=int, default=512)
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--doc", type=Path, default=ROOT / "docs" / "BENCHMARKS.md")
    parser.add_argument("--no-doc", action="store_true", help="print the table only")
    return parser.parse_args(argv)


def source_photos(folder: Path | None) -> list[np.ndarray]:
    """RGB uint8 photos: every image file in ``folder``, or scikit-image's colour photos."""
    if folder is not None:
        paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in PHOTO_SUFFIXES)
        if not paths:
            raise SystemExit(f"no photos under {folder}")
        return [np.asarray(Image.open(p).convert("RGB")) for p in paths]
    from skimage import data

    names = ("astronaut", "coffee", "chelsea", "rocket", "hubble_deep_field", "immunohistochemistry", "retina")
    return [np.asarray(getattr(data, name)())[..., :3] for name in names]


def make_images(photos: list[np.ndarray], count: int, size: int, seed: int) -> dict[str, bytes]:
    """``count`` seeded crops (upscaled when a photo is smaller than ``size``), half PNG, half JPEG."""
    rng = np.random.default_rng(seed)
    images = {}
    for index in range(count):
        photo = photos[index % len(photos)]
        if min(photo.shape[:2]) < size:
            scale = size / min(photo.shape[:2])
            photo = np.asarray(Image.fromarray(photo).resize(
                (int(np.ceil(photo.shape[1] * scale)), int(np.ceil(photo.shape[0] * scale)))))
        top = int(rng.integers(0, photo.shape[0] - size + 1))
        left = int(rng.integers(0, photo.shape[1] - size + 1))
        crop = Image.fromarray(np.ascontiguousarray(photo[top : top + size, left : left + size]))
        buffer = io.BytesIO()
        if index % 2:
            crop.save(buffer, format="JPEG", quality=95)
            name = f"batch{index // 50:02d}/img{index:05d}.jpg"
        else:
            crop.save(buffer, format="PNG")
            name = f"batch{index // 50:02d}/img{index:05d}.png"
        images[name] = buffer.getvalue()
    return images


def build_tiny_bundle(directory: Path) -> Path:
    """An untrained tiny ABAIR (adapters noise and blur) saved as a bundle directory."""
    import torch

    from abair_core.bundle import save_bundle
    from abair_core.config import load_config
    from abair_core.models.estimator import EstimatorConfig
    from abair_core.models.factory import build_abair
    from abair_core.models.lora import AdapterConfig

    torch.manual_seed(0)
    model = build_abair("tiny", load_config(ROOT / "configs/adapters/default.yaml", AdapterConfig),
                        load_config(ROOT / "configs/estimator/default.yaml", EstimatorConfig),
                        ["noise", "blur"], ["clean", "noise", "blur"])
    save_bundle(model, directory)
    return directory


def bare_loop(bundle: Path, images: dict[str, bytes], mode: str, tile: int, overlap: int,
              threads: int) -> dict[str, Any]:
    """Restore every decoded image in memory with one Restorer; decode and model load are not timed."""
    import torch

    from abair_core.bundle import Restorer, load_bundle
    from abair_core.io.image_codec import decode_image

    torch.set_num_threads(threads)
    decoded = [decode_image(payload, 100_000_000).rgb for payload in images.values()]
    restorer = Restorer(load_bundle(bundle), mode=mode, tile=tile, overlap=overlap)
    actions: dict[str, int] = {}
    began = time.perf_counter()
    for rgb in decoded:
        action = restorer(rgb).action
        actions[action] = actions.get(action, 0) + 1
    seconds = time.perf_counter() - began
    megapixels = sum(rgb.shape[0] * rgb.shape[1] for rgb in decoded) / 1e6
    return {"seconds": seconds, "megapixels": megapixels, "images": len(decoded), "actions": actions}


@contextlib.contextmanager
def moto_s3() -> Iterator[dict[str, Any]]:
    """A moto S3 server on 127.0.0.1 (credentials for it in the environment, so workers inherit them)."""
    import logging

    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one log line per request otherwise
    os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield {"client_kwargs": {"endpoint_url": f"http://{host}:{port}"}}
    finally:
        server.stop()


def write_pipeline(path: Path, work: Path, storage_options: dict[str, Any], workers: int, threads: int) -> str:
    config = {
        "storage": {"root": work.as_uri(), "storage_options": storage_options},
        "mlflow": {"tracking_uri": f"sqlite:///{work / 'mlflow.db'}", "artifact_location": str(work / "mlartifacts")},
        "dask": {"scheduler_address": None, "n_workers": workers, "threads_per_worker": threads, "processes": True},
    }
    path.write_text(yaml.safe_dump(config))
    return str(path)


def prefect_api_url() -> str:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        return str(client.api_url).rstrip("/")


def run_flow(src: str, dst: str, bundle: Path, mode: str, pipeline: str, restore_config: str,
             address: str | None) -> dict[str, Any]:
    from flows.restore_archive import restore_archive

    began = time.perf_counter()
    summary = restore_archive(src, dst, model=str(bundle), mode=mode, pipeline=pipeline,
                              restore_config=restore_config, dask_address=address)
    summary["outer_seconds"] = time.perf_counter() - began
    return summary


def render(results: list[dict[str, Any]], notes: list[str]) -> str:
    bare = results[0]
    lines = ["| path | images | MP | seconds | MP/s | overhead vs bare loop |", "|---|---:|---:|---:|---:|---:|"]
    for row in results:
        rate = row["megapixels"] / row["seconds"]
        overhead = "-" if row is bare else f"{100.0 * (row['seconds'] / bare['seconds'] - 1.0):+.1f}%"
        lines.append(f"| {row['label']} | {row['images']} | {row['megapixels']:.1f} | {row['seconds']:.1f} | "
                     f"{rate:.3f} | {overhead} |")
    return "\n".join(lines) + "\n\n" + "\n".join(f"- {note}" for note in notes) + "\n"


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_LOGGING_LEVEL", "WARNING")
    import torch

    from abair_core.bundle import read_bundle_manifest
    from flows.runtime import dask_cluster
    from tasks.pipeline_config import PipelineConfig

    work = Path(tempfile.mkdtemp(prefix="abair-restore-bench-"))
    notes = []
    if args.bundle is None:
        bundle = build_tiny_bundle(work / "bundle")
        notes.append("Model: an UNTRAINED tiny bundle built by the script (preset `tiny`, adapters noise and "
                     "blur); throughput depends on the architecture, not on the weights.")
    else:
        bundle = args.bundle
        notes.append(f"Model: bundle `{bundle}`.")
    mode = args.mode or read_bundle_manifest(bundle)["adapters"][0]
    images = make_images(source_photos(args.photos), args.count, args.size, args.seed)
    threads = args.workers * args.threads_per_worker
    restore_config = work / "restore.yaml"
    restore_config.write_text(yaml.safe_dump({"chunk_size": args.chunk_size, "tile": args.tile,
                                              "overlap": args.overlap}))
    print(f"{len(images)} images of {args.size}x{args.size}, mode {mode}, work folder {work}", file=sys.stderr)

    bare = bare_loop(bundle, images, mode, args.tile, args.overlap, threads)
    results = [{"label": f"bare model loop (in memory, torch {threads} threads)", **bare}]
    print(f"bare loop: {bare['seconds']:.1f} s, actions {bare['actions']}", file=sys.stderr)

    src = work / "src"
    for key, payload in images.items():
        (src / key).parent.mkdir(parents=True, exist_ok=True)
        (src / key).write_bytes(payload)
    with contextlib.ExitStack() as stack:
        options = stack.enter_context(moto_s3()) if "s3" in args.targets else {}
        pipeline = write_pipeline(work / "pipeline.yaml", work, options, args.workers, args.threads_per_worker)
        # Warm-up: starts Prefect's local API and a LocalCluster inside the flow (the cold start of a CLI run).
        warm_src = work / "warm"
        for key in list(images)[:4]:
            (warm_src / Path(key).name).parent.mkdir(parents=True, exist_ok=True)
            (warm_src / Path(key).name).write_bytes(images[key])
        cold = run_flow(str(warm_src), str(work / "warm-out"), bundle, mode, pipeline, str(restore_config), None)
        notes.append(f"Cold start of a first run (Prefect API + LocalCluster start + model load, 4 images): "
                     f"{cold['outer_seconds']:.1f} s; not in the table.")
        os.environ["PREFECT_API_URL"] = prefect_api_url()  # workers report to this process's API
        for target in args.targets:
            if target == "local":
                flow_src, flow_dst, label = str(src), str(work / "out-local"), "restore_archive flow, local folder"
            else:
                import s3fs

                fs = s3fs.S3FileSystem(skip_instance_cache=True, **options)
                fs.mkdir(BUCKET)
                for key, payload in images.items():
                    fs.pipe_file(f"{BUCKET}/src/{key}", payload)
                flow_src, flow_dst = f"s3://{BUCKET}/src", f"s3://{BUCKET}/out"
                label = "restore_archive flow, S3 (moto on 127.0.0.1)"
            pipe = PipelineConfig.model_validate(
                {"dask": {"n_workers": args.workers, "threads_per_worker": args.threads_per_worker}})
            with dask_cluster(pipe) as address:  # started before the clock: an existing cluster
                summary = run_flow(flow_src, flow_dst, bundle, mode, pipeline, str(restore_config), address)
            if summary["by_status"]["ok"] != len(images):
                raise SystemExit(f"{target}: not every image was restored: {summary['by_status']}")
            results.append({"label": f"{label}, {args.workers} workers x {args.threads_per_worker} thread",
                            "seconds": summary["outer_seconds"], "megapixels": summary["megapixels"],
                            "images": summary["images"]})
            print(f"{target}: {summary['outer_seconds']:.1f} s, {summary['by_action']}", file=sys.stderr)
    load = os.getloadavg()
    source = f"`{args.photos}`" if args.photos else "the photos bundled with scikit-image"
    notes += [
        (f"{len(images)} crops of {args.size}x{args.size} (half PNG, half JPEG q95) from {source}; mode `{mode}` "
         f"(every image through the backbone); tile {args.tile}, chunk size {args.chunk_size}."),
        ("Flow time: from the `restore_archive` call to its summary, on a Dask LocalCluster started just before "
         "(model loaded once per worker inside the timed run), Prefect's local API already running."),
        (f"Machine: {os.cpu_count()} CPUs ({platform.processor() or platform.machine()}), torch {torch.__version__}, "
         f"load average at the end {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} (a shared machine: numbers vary "
         f"run to run), {dt.date.today().isoformat()}. Reproduce: `python benchmarks/restore_throughput.py`."),
    ]
    table = render(results, notes)
    print(table)
    if not args.no_doc:
        update_section(args.doc, SECTION, table)
        print(f"updated {args.doc}")


if __name__ == "__main__":
    main()
