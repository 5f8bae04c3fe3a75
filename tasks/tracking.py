"""Progress a person can follow: a terminal line, a Prefect progress artifact and MLflow step metrics.

``ProgressReporter`` prints one stderr line per update (``\\r``-refreshed on a terminal) and moves a
Prefect progress artifact when running inside a flow or task run. ``phase_run`` opens one MLflow run
per training phase (through ``MlflowClient`` with explicit run ids, so concurrent phases in threads
never share the fluent "active run"), logs params, the config and the dataset manifest, and yields a
``PhaseRun`` whose ``callback(step, metrics)`` is what the core's training loop reports to.
"""

from __future__ import annotations

import contextlib
import logging
import re
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlflow import MlflowClient
from mlflow.entities import Metric

from abair_core.training.config import TrainConfig

log = logging.getLogger(__name__)
PROJECT_DIR = Path(__file__).resolve().parent.parent
#: train_all's wall time over every invocation of one recipe (resumed runs included), on its parent run
TRAIN_ALL_CUMULATIVE_METRIC = "time/cumulative_seconds"


def git_commit() -> str | None:
    """The project's current git commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=PROJECT_DIR, capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def artifact_key(*parts: str) -> str:
    """A Prefect artifact key: lowercase letters, digits and dashes only."""
    return re.sub(r"[^a-z0-9-]+", "-", "-".join(parts).lower()).strip("-")


def _in_prefect_run() -> bool:
    from prefect.context import FlowRunContext, TaskRunContext

    return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def _duration(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class ProgressReporter:
    """One progress line on stderr and one Prefect progress artifact for ``total`` units of work."""

    def __init__(self, label: str, total: int, key: str | None = None, unit: str = "steps",
                 stream: Any = None) -> None:
        self.label, self.total, self.unit = label, max(1, int(total)), unit
        self.stream = stream if stream is not None else sys.stderr
        self.began = time.perf_counter()
        self.artifact_id = None
        if key and _in_prefect_run():
            from prefect.artifacts import create_progress_artifact

            self.artifact_id = create_progress_artifact(0.0, key=artifact_key(key), description=label)

    def line(self, done: int, extra: Mapping[str, float] | None = None) -> str:
        """The text of one progress line."""
        elapsed = time.perf_counter() - self.began
        fraction = min(1.0, done / self.total)
        width = 20
        bar = "#" * round(fraction * width)
        text = f"[{self.label}] |{bar:<{width}}| {done}/{self.total} {self.unit} {fraction:4.0%}"
        for name, value in (extra or {}).items():
            text += f" {name} {value:.4g}"
        eta = elapsed / done * (self.total - done) if done else 0.0
        return text + f" | {_duration(elapsed)} elapsed, eta {_duration(eta)}"

    def update(self, done: int, extra: Mapping[str, float] | None = None) -> None:
        """Report ``done`` units finished (the line and the artifact)."""
        tty = getattr(self.stream, "isatty", lambda: False)()
        end = "\n" if not tty or done >= self.total else ""
        self.stream.write(("\r" if tty else "") + self.line(done, extra) + end)
        self.stream.flush()
        if self.artifact_id is not None:
            from prefect.artifacts import update_progress_artifact

            update_progress_artifact(self.artifact_id, 100.0 * min(1.0, done / self.total))


def flatten(prefix: str, data: Mapping[str, Any]) -> dict[str, str]:
    """Nested mapping -> ``{"prefix.a.b": "value"}`` strings (MLflow params and tags)."""
    out: dict[str, str] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping):
            out.update(flatten(name, value))
        else:
            out[name] = str(value)
    return out


@dataclass
class PhaseRun:
    """One training phase's MLflow run; ``callback`` receives the core loop's ``(step, metrics)``."""

    client: MlflowClient
    run_id: str
    progress: ProgressReporter
    tags: dict[str, str] = field(default_factory=dict)

    def callback(self, step: int, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        batch = [Metric(key=k.replace("=", "_"), value=float(v), timestamp=now, step=int(step))
                 for k, v in metrics.items()]
        self.client.log_batch(self.run_id, metrics=batch)
        self.progress.update(step, {k: v for k, v in metrics.items() if k in ("loss", "l1", "seg_ce", "accuracy")})


def start_run(experiment_id: str, run_name: str, tags: Mapping[str, Any] | None = None,
              parent_run_id: str | None = None) -> str:
    """Create an MLflow run (a child of ``parent_run_id`` when given); returns its id."""
    client = MlflowClient()
    all_tags = {k: str(v) for k, v in (tags or {}).items() if v is not None}
    if parent_run_id:
        all_tags["mlflow.parentRunId"] = parent_run_id
    return client.create_run(experiment_id, run_name=run_name, tags=all_tags).info.run_id


@contextlib.contextmanager
def phase_run(phase: str, config: TrainConfig, dataset_manifest: str, dataset_hash: str, experiment_id: str,
              total_steps: int, parent_run_id: str | None = None,
              extra_tags: Mapping[str, Any] | None = None) -> Iterator[PhaseRun]:
    """An MLflow run for one phase: params, config, dataset lineage, wall time; FAILED if the body raises."""
    client = MlflowClient()
    commit = git_commit()
    tags = {"abair.phase": phase, "abair.train_name": config.name, "dataset.hash": dataset_hash,
            "dataset.manifest_uri": dataset_manifest, **({"git.commit": commit} if commit else {}),
            **{k: str(v) for k, v in (extra_tags or {}).items()}}
    run_id = start_run(experiment_id, f"{config.name}-{phase}", tags, parent_run_id)
    schedule = {"phase1": config.phase1, "phase3": config.phase3}.get(phase.split("/")[0], config.phase2)
    params = {"model": config.model, "degradations": ",".join(config.degradations),
              "dataset.manifest_uri": dataset_manifest, **flatten("schedule", schedule.model_dump(mode="json"))}
    client.log_batch(run_id, params=[_param(k, v) for k, v in params.items()])
    client.log_dict(run_id, config.model_dump(mode="json"), "train_config.json")
    began = time.perf_counter()
    run = PhaseRun(client, run_id, ProgressReporter(phase, total_steps, key=f"abair-{phase}"), tags)
    try:
        yield run
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise
    client.log_metric(run_id, "wall_seconds", time.perf_counter() - began)
    client.set_terminated(run_id, "FINISHED")


def _param(key: str, value: str) -> Any:
    from mlflow.entities import Param

    return Param(key, value[:6000])
