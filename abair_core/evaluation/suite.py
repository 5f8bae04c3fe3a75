"""Benchmark suites (``configs/benchmark/*.yaml``): an image set, crops, seeds and groups of tasks.

A task is one degradation spec, a sequence of specs applied in turn (a mixed task), nothing at all (a
``clean`` task: the output is scored against the untouched input), or a paired folder of degraded and
clean images (the paper's datasets: Rain100L, SOTS, BSD68, GoPro, LoL). Groups are free names
(``known``, ``unseen``, ``mixed``; later ``clean``, ``mild``): tables, plots, metrics and the gate
iterate over whatever groups a suite lists, so adding one is a config change.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from pydantic import Field, model_validator

from abair_core.config import StrictConfig, load_config
from abair_core.degradations.registry import CLEAN, build_degradation

__all__ = ["BenchmarkSuite", "BenchmarkTask", "PairedFolders", "load_suite", "suite_hash"]

TASK_ID_PATTERN = r"^[a-z][a-z0-9_]*$"


class PairedFolders(StrictConfig):
    """Degraded and clean images under two URI prefixes, matched by file name without extension."""

    degraded: str = Field(..., description="URI prefix of the degraded images")
    clean: str = Field(..., description="URI prefix of the ground-truth images (same names)")
    include: str = Field("**/*", description="glob of files under both prefixes")


class BenchmarkTask(StrictConfig):
    """One evaluation task: how its degraded inputs are made and which adapters its oracle blends."""

    id: str = Field(..., pattern=TASK_ID_PATTERN, description="task id (DESIGN.md: noise_s25, blur_noise, …)")
    degradation: dict[str, Any] | None = Field(None, description="one degradation spec {type: …, params}")
    sequence: list[dict[str, Any]] | None = Field(None, description="specs applied one after another")
    paired: PairedFolders | None = Field(None, description="a paired degraded/clean folder instead")
    oracle: list[str] | None = Field(
        None, description="adapters the oracle blends equally (default: the degradation types; [] = no oracle)"
    )
    label: str | None = Field(None, description="true estimator class for the confusion matrix "
                              "(default: the single degradation's type, 'clean' for a clean task)")

    @model_validator(mode="after")
    def _one_source(self) -> BenchmarkTask:
        given = [k for k in ("degradation", "sequence", "paired") if getattr(self, k) is not None]
        if len(given) > 1:
            raise ValueError(f"task {self.id!r}: give at most one of degradation, sequence, paired (got {given})")
        if self.sequence is not None and not self.sequence:
            raise ValueError(f"task {self.id!r}: sequence must list at least one spec")
        for spec in self.specs():
            build_degradation(dict(spec))  # fails at load time on unknown types or out-of-range values
        return self

    def specs(self) -> list[dict[str, Any]]:
        """The degradation specs applied in order ([] for a clean or paired task)."""
        if self.degradation is not None:
            return [self.degradation]
        return list(self.sequence or [])

    @property
    def is_clean(self) -> bool:
        """No degradation at all: the restorer's output is scored against its own input."""
        return self.paired is None and not self.specs()

    def oracle_components(self) -> list[str]:
        """Adapters of the oracle blend: the configured list or the distinct degradation types in order."""
        if self.oracle is not None:
            return list(self.oracle)
        names: list[str] = []
        for spec in self.specs():
            if spec["type"] not in names:
                names.append(str(spec["type"]))
        return names

    def true_label(self) -> str | None:
        """The estimator class this task's inputs belong to, when it is a single degradation or clean."""
        if self.label is not None:
            return self.label
        if self.is_clean:
            return CLEAN
        specs = self.specs()
        if len(specs) == 1:
            return str(specs[0]["type"])
        if self.paired is not None and self.oracle is not None and len(self.oracle) == 1:
            return self.oracle[0]
        return None


class BenchmarkSuite(StrictConfig):
    """A benchmark: images, crop geometry, seeds and task groups; its hash pins what the numbers mean."""

    name: str = Field(..., pattern=r"^[a-z0-9_-]+$", description="suite name (part of every metric key)")
    description: str = ""
    images: str | None = Field(
        "samples://holdout",
        description="URI prefix of clean photos (samples://holdout = never trained on); null: given at run time",
    )
    include: str = Field("**/*", description="glob of files under images")
    files: list[str] | None = Field(
        None, description="a fixed list of keys under images (a listed validation split); None = all"
    )
    max_images: int | None = Field(None, ge=1, description="use only the first N images (sorted keys)")
    crop: int | None = Field(128, ge=16, description="side of the square evaluation crops; None = whole image")
    crops_per_image: int = Field(1, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    max_pixels: int = Field(50_000_000, ge=1)
    estimator_groups: list[str] = Field(
        default_factory=lambda: ["known"], description="groups whose single-degradation tasks feed the confusion matrix"
    )
    groups: dict[str, list[BenchmarkTask]] = Field(..., min_length=1, description="group name -> tasks")

    @model_validator(mode="after")
    def _check_ids(self) -> BenchmarkSuite:
        seen: set[str] = set()
        for group, tasks in self.groups.items():
            if not tasks:
                raise ValueError(f"group {group!r} has no tasks")
            for task in tasks:
                if task.id in seen:
                    raise ValueError(f"task id {task.id!r} is listed twice")
                seen.add(task.id)
        return self

    def needs_images(self) -> bool:
        """Whether any task synthesizes its inputs from clean photos (paired tasks bring their own)."""
        return any(task.paired is None for _, task in self.tasks())

    def tasks(self) -> list[tuple[str, BenchmarkTask]]:
        """(group, task) pairs in config order."""
        return [(group, task) for group, tasks in self.groups.items() for task in tasks]

    def with_images(self, images: str | None) -> BenchmarkSuite:
        """A copy evaluated on another image folder (a listed ``files`` split still applies); None keeps it."""
        if images is None:
            return self
        return self.model_copy(update={"images": images})


def load_suite(path: str | Path) -> BenchmarkSuite:
    """Load and validate a suite file; errors name the file and the key."""
    return load_config(path, BenchmarkSuite)


def suite_hash(suite: BenchmarkSuite) -> str:
    """A short stable hash of everything that defines the suite's numbers (images, crops, seeds, tasks)."""
    payload = json.dumps(suite.model_dump(mode="json", exclude={"description"}), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]
