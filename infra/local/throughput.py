"""Restore throughput on the loopback stack (1 or 2 Dask workers) or on the embedded default, same images.

    source .stack/env
    .venv/bin/python infra/local/throughput.py stack --workers 2      # the stack's two Dask workers
    .venv/bin/python infra/local/throughput.py stack --workers 1      # retires worker-2 first (restart the stack after)
    env -u PREFECT_API_URL -u ABAIR_PIPELINE .venv/bin/python infra/local/throughput.py embedded

Every run restores the same 24 photo crops (384x384, PNG) with ``restore_archive`` (the function the
deployment runs) into a fresh destination and prints one JSON line: wall seconds, images/s, MP/s and the
summary's own MP/s. ``stack`` reads and writes SeaweedFS (s3://abair/bench/...), resolves
``models:/abair@champion`` on the MLflow server and runs chunks on the stack's scheduler; ``embedded`` uses a
local folder, the same bundle (downloaded once from the stack's registry when it is up, else given with
``--model``) and a LocalCluster of two single-thread workers.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
from PIL import Image
from skimage import data

STACK_PIPELINE = "configs/pipeline/stack.yaml"
SCHEDULER = "tcp://127.0.0.1:8786"


def photos(count: int = 24, side: int = 384) -> dict[str, bytes]:
    sources = [data.astronaut(), data.coffee(), data.rocket(), data.chelsea()]
    files = {}
    for i in range(count):
        photo = sources[i % len(sources)]
        top = (i * 17) % max(1, photo.shape[0] - side)
        left = (i * 31) % max(1, photo.shape[1] - side)
        crop = np.ascontiguousarray(photo[top : top + side, left : left + side])
        buffer = io.BytesIO()
        Image.fromarray(crop).save(buffer, format="PNG")
        files[f"img-{i:02d}.png"] = buffer.getvalue()
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("target", choices=["stack", "embedded"])
    parser.add_argument("--workers", type=int, choices=[1, 2], default=2, help="stack: Dask workers to use")
    parser.add_argument("--model", default=None, help="embedded: bundle directory (default: fetch the champion)")
    parser.add_argument("--count", type=int, default=24)
    args = parser.parse_args()
    from flows.restore_archive import restore_archive

    files = photos(args.count)
    megapixels = sum(Image.open(io.BytesIO(b)).size[0] * Image.open(io.BytesIO(b)).size[1] for b in files.values()) / 1e6
    run = uuid.uuid4().hex[:8]
    if args.target == "stack":
        import s3fs
        from distributed import Client

        fs = s3fs.S3FileSystem(endpoint_url="http://127.0.0.1:8333")
        for key, payload in files.items():
            fs.pipe_file(f"abair/bench/{run}/src/{key}", payload)
        if args.workers == 1:
            with Client(SCHEDULER, timeout=10) as client:
                names = {w["name"]: a for a, w in client.scheduler_info(n_workers=-1)["workers"].items()}
                if "worker-2" in names:
                    client.retire_workers([names["worker-2"]], close_workers=True)
                time.sleep(1)
                assert len(client.scheduler_info(n_workers=-1)["workers"]) == 1
        src, dst = f"s3://abair/bench/{run}/src", f"s3://abair/bench/{run}/dst"
        kwargs = {"model": "models:/abair@champion", "pipeline": STACK_PIPELINE}
    else:
        folder = Path(tempfile.mkdtemp(prefix="abair-bench-"))
        for key, payload in files.items():
            (folder / "src").mkdir(exist_ok=True)
            (folder / "src" / key).write_bytes(payload)
        model = args.model or fetch_champion()
        src, dst = str(folder / "src"), str(folder / "dst")
        kwargs = {"model": model, "pipeline": str(write_embedded_pipeline(folder))}
    began = time.perf_counter()
    summary = restore_archive(src, dst, mode="sw", **kwargs)
    wall = time.perf_counter() - began
    print(json.dumps({"target": args.target, "workers": args.workers if args.target == "stack" else 2,
                      "images": summary["images"], "by_status": summary["by_status"], "wall_s": round(wall, 2),
                      "images_per_s": round(summary["images"] / wall, 2),
                      "mp_per_s_wall": round(megapixels / wall, 3),
                      "mp_per_s_summary": round(summary["megapixels_per_second"], 3)}))


def fetch_champion() -> str:
    """Download models:/abair@champion from the stack's MLflow server; return the bundle directory."""
    import mlflow

    from tasks.registry import resolve_model

    mlflow.set_tracking_uri("http://127.0.0.1:5000")
    mlflow.set_registry_uri("http://127.0.0.1:5000")
    return str(resolve_model("models:/abair@champion").bundle_dir)


def write_embedded_pipeline(folder: Path) -> Path:
    path = folder / "pipeline.yaml"
    path.write_text(f"storage: {{root: 'file://{folder}/work'}}\n"
                    f"mlflow: {{tracking_uri: 'sqlite:///{folder}/mlflow.db', artifact_location: '{folder}/art'}}\n"
                    "dask: {scheduler_address: null, n_workers: 2, threads_per_worker: 1, processes: true}\n"
                    "prefect: {api_url: null}\n")
    return path


if __name__ == "__main__":
    main()
