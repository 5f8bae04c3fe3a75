"""Acceptance of the scale-out issue: the same flows on real servers, by configuration only.

`infra/local/stack-up.sh` starts SeaweedFS (S3), an MLflow server, a Prefect server with a process worker
and a Dask scheduler with two workers on 127.0.0.1 (in a fresh run folder). `abair deploy` registers
infra/prefect.yaml; a tiny `train_all` and a `restore_archive` of a small bucket run as deployments (the
worker starts them as flow runs; their Dask tasks run on the stack's workers). The registry is checked over
HTTP, the outputs and manifests in the S3 server. Fault drill: one Dask worker is SIGKILLed while it holds
restore chunks; the run still completes with one output and one manifest row per good image. Finally the
stack stops and no process it started is left.
"""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import psutil
import pyarrow.parquet as pq
import pytest
import s3fs
from PIL import Image
from skimage import data

from abair_core.config import PROJECT_ROOT
from flows.deploy import deploy, run_deployment

pytestmark = pytest.mark.slow

PIPELINE = "configs/pipeline/stack.yaml"
MLFLOW = "http://127.0.0.1:5000"
PREFECT = "http://127.0.0.1:4200/api"
S3 = "http://127.0.0.1:8333"
DASK = "tcp://127.0.0.1:8786"
PORTS = (8333, 5000, 4200, 8786, 9333, 8340, 8888)
SRC, DST = "s3://abair/archive/incoming", "s3://abair/archive/restored"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "stack-test", "AWS_SECRET_ACCESS_KEY": "stack-test-secret",
               "AWS_DEFAULT_REGION": "us-east-1"}


def good_images() -> dict[str, bytes]:
    """Twelve real photo crops (PNG and JPEG, 160-224 px) in two folders."""
    photos = [data.astronaut(), data.coffee(), data.chelsea(), data.rocket()]
    files: dict[str, bytes] = {}
    for i in range(12):
        photo = photos[i % 4]
        side = 160 + 32 * (i % 3)
        crop = photo[(i * 13) % 100 : (i * 13) % 100 + side, (i * 29) % 150 : (i * 29) % 150 + side]
        buffer = io.BytesIO()
        fmt = "PNG" if i % 2 else "JPEG"
        Image.fromarray(np.ascontiguousarray(crop)).save(buffer, format=fmt)
        files[f"{'a' if i < 6 else 'b'}/photo-{i:02d}.{fmt.lower().replace('jpeg', 'jpg')}"] = buffer.getvalue()
    return files


def http_json(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def stack_processes(stack_dir: Path) -> list[psutil.Process]:
    """Every live process of the process groups named by the stack's PID files (children included)."""
    groups = {int(p.read_text()) for p in (stack_dir / "pids").glob("*.pid")}
    found = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) in groups:
                found.append(proc)
        except (ProcessLookupError, psutil.Error):
            continue
    return found


def port_open(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_stack_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    began = time.perf_counter()
    busy = [p for p in PORTS if port_open(p)]
    assert not busy, f"ports {busy} are in use: stop the other stack first (infra/local/stack-down.sh)"
    stack_dir = tmp_path / "stack"
    for key, value in CREDENTIALS.items():
        monkeypatch.setenv(key, value)
    env = {**os.environ, "ABAIR_STACK_DIR": str(stack_dir), "PREFECT_LOGGING_LEVEL": "INFO"}
    seen: list[psutil.Process] = []
    try:
        up = subprocess.run([str(PROJECT_ROOT / "infra/local/stack-up.sh")], env=env, capture_output=True,
                            text=True, timeout=300, check=False)
        assert up.returncode == 0, up.stdout + up.stderr
        seen = stack_processes(stack_dir)
        started = time.perf_counter()
        check_stack(stack_dir)
        print(f"\nstack up in {started - began:.1f} s; train + restore + checks in "
              f"{time.perf_counter() - started:.1f} s")
        seen = list({p.pid: p for p in seen + stack_processes(stack_dir)}.values())
    finally:
        down = subprocess.run([str(PROJECT_ROOT / "infra/local/stack-down.sh")], env=env, capture_output=True,
                              text=True, timeout=120, check=False)
    assert down.returncode == 0, down.stdout + down.stderr
    left = [p for p in seen if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
    assert not left, f"processes left behind: {[(p.pid, p.cmdline()[:3]) for p in left]}"
    assert not stack_processes(stack_dir)
    assert not [p for p in PORTS if port_open(p)]
    print(f"stack test total {time.perf_counter() - began:.1f} s")


def check_stack(stack_dir: Path) -> None:
    # Deployments: both registered on the server, with the nightly cron and its concurrency limit of one.
    registered = deploy(pipeline=PIPELINE)
    assert set(registered["deployments"]) == {"restore_archive/nightly-restore", "train_all/train-all"}
    nightly = http_json(f"{PREFECT}/deployments/name/restore_archive/nightly-restore")
    assert [s["schedule"]["cron"] for s in nightly["schedules"]] == ["0 2 * * *"]
    assert nightly["global_concurrency_limit"]["limit"] == 1 and nightly["work_pool_name"] == "abair"

    # Training through the deployment: the worker runs train_all, synthesis runs on the stack's Dask workers.
    trained = run_deployment("train-all", {"train_config": "tests/stack/micro_train.yaml"}, pipeline=PIPELINE,
                             timeout=900)
    assert trained["state"] == "COMPLETED", trained
    bundle = http_json(f"{MLFLOW}/api/2.0/mlflow/registered-models/get?name=abair")["registered_model"]
    aliases = {a["alias"]: a["version"] for a in bundle["aliases"]}
    assert aliases == {"champion": "1", "challenger": "1"}  # the first bundle is champion and challenger
    version = http_json(f"{MLFLOW}/api/2.0/mlflow/model-versions/get?name=abair&version=1")["model_version"]
    tags = {t["key"]: t["value"] for t in version["tags"]}
    assert {tags[f"component.{c}"] for c in ("backbone", "adapter.noise", "adapter.blur", "estimator")} == {"1"}
    names = {m["name"] for m in http_json(f"{MLFLOW}/api/2.0/mlflow/registered-models/search")["registered_models"]}
    assert {"abair", "abair-backbone", "abair-estimator", "abair-adapter-noise", "abair-adapter-blur"} <= names
    fs = s3fs.S3FileSystem(endpoint_url=S3)
    assert fs.find("abair/work/datasets") or fs.find("abair/work"), "training data went to the S3 server"
    assert any("synthesize_chunk" in key for key in scheduler_keys())  # synthesis ran on the stack's Dask

    # A small bucket: twelve good images and one broken file.
    good = good_images()
    for key, payload in {**good, "a/broken.jpg": b"not an image"}.items():
        fs.pipe_file(f"{SRC[5:]}/{key}", payload)

    # Restore through the nightly deployment; kill Dask worker 2 while it holds restore chunks.
    started = run_deployment("nightly-restore", {"src": SRC, "dst": DST, "model": "models:/abair@champion",
                                                 "restore_config": "tests/stack/restore.yaml",
                                                 "pipeline": PIPELINE}, pipeline=PIPELINE, wait=False)
    killed = kill_busy_worker(stack_dir / "pids" / "dask-worker-2.pid", timeout=300)
    assert killed, "worker 2 never received a restore chunk"
    print(f"\nfault drill: SIGKILLed dask-worker-2 while it held {killed}")
    final = wait_flow_run(started["flow_run_id"], timeout=600)
    assert final == "COMPLETED", final
    assert any("restore_chunk" in key for key in scheduler_keys())

    # One output per good image (nothing for the broken one), one manifest row per source key.
    outputs = sorted(p.split("/restored/", 1)[1] for p in fs.find(DST[5:]) if "/_abair/" not in p)
    assert outputs == sorted(good)
    current = pq.read_table(io.BytesIO(fs.cat_file(f"{DST[5:]}/_abair/manifest.parquet"))).to_pylist()
    assert Counter(r["key"] for r in current) == Counter([*good, "a/broken.jpg"])
    assert {r["key"]: r["status"] for r in current} == {**dict.fromkeys(good, "ok"), "a/broken.jpg": "quarantined"}
    assert {r["model_version"] for r in current if r["status"] == "ok"} == {"1"}
    report = json.loads(fs.cat_file(f"{DST[5:]}/_abair/report.json"))
    run_files = [p for p in fs.find(f"{DST[5:]}/_abair/runs/{report['run_id']}")]
    rows = [r for p in run_files if p.endswith("results.parquet")
            for r in pq.read_table(io.BytesIO(fs.cat_file(p))).to_pylist()]
    assert Counter(r["key"] for r in rows) == Counter([*good, "a/broken.jpg"]), run_files
    assert {k: v for k, v in report["by_status"].items() if v} == {"ok": 12, "quarantined": 1}


def scheduler_keys() -> set[str]:
    """Keys of every task the stack's Dask scheduler has seen (its transition log)."""
    from distributed import Client

    with Client(DASK, timeout=10) as client:
        return set(client.run_on_scheduler(lambda dask_scheduler: [str(t[0]) for t in dask_scheduler.transition_log]))


def kill_busy_worker(pid_file: Path, timeout: float) -> list[str]:
    """SIGKILL the Dask worker of ``pid_file`` as soon as the scheduler shows it processing a restore chunk."""
    from distributed import Client

    pid = int(pid_file.read_text())
    deadline = time.monotonic() + timeout
    with Client(DASK, timeout=10) as client:
        address = next(a for a, w in client.scheduler_info(n_workers=-1)["workers"].items() if w["name"] == "worker-2")
        while time.monotonic() < deadline:
            held = [str(k) for k in client.processing().get(address, ()) if "restore_chunk" in str(k)]
            if held:
                os.killpg(pid, signal.SIGKILL)
                return held
            time.sleep(0.05)
    return []


def wait_flow_run(flow_run_id: str, timeout: float) -> str:
    """Poll the Prefect API until the flow run is final; return its state type."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = http_json(f"{PREFECT}/flow_runs/{flow_run_id}")["state"]
        if state["type"] in ("COMPLETED", "FAILED", "CRASHED", "CANCELLED"):
            return state["type"]
        time.sleep(2)
    return "TIMEOUT"
