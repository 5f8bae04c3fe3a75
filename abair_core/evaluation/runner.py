"""Score one ABAIR bundle (and optional baselines) on a benchmark suite.

For every task, image, seed and crop: the clean crop, its degraded version (quantised to 8 bit, as a
saved degraded photo would be), and the output of each method, also quantised to 8 bit: ``input``
(the degraded image itself), ``backbone`` (the Phase I backbone alone: every adapter weight 0),
``oh``, ``sw``, ``oracle`` (the equal blend of the task's true adapters; N/A when one is missing) and
each baseline backbone. PSNR/SSIM on RGB and on BT.601 luma; PSNR is capped at ``PSNR_CAP`` dB so an
identical image (a clean task passed through) stays a finite number. The estimator's arg-max on
single-degradation tasks of ``suite.estimator_groups`` fills a confusion matrix.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import nn

from abair_core.bundle import load_bundle
from abair_core.components import load_backbone
from abair_core.data.synthesis import random_crop
from abair_core.degradations.composite import apply_sequence
from abair_core.degradations.registry import build_degradation
from abair_core.evaluation.images import load_images, load_pairs
from abair_core.evaluation.scores import METRICS
from abair_core.evaluation.suite import BenchmarkSuite, BenchmarkTask, load_suite, suite_hash
from abair_core.metrics import psnr, psnr_y, ssim, ssim_y
from abair_core.models.abair import ABAIR

__all__ = [
    "ABAIR_METHODS",
    "METHOD_LABELS",
    "PSNR_CAP",
    "EvaluationResult",
    "evaluate_pairs",
    "evaluate_suite",
    "run_benchmark",
    "save_samples",
    "score_images",
    "task_inputs",
]

log = logging.getLogger(__name__)

PSNR_CAP = 100.0
ABAIR_METHODS = ("backbone", "oh", "sw", "oracle")
METHOD_LABELS = {
    "input": "Degraded input",
    "backbone": "Phase I backbone (no adapters)",
    "all_in_one": "All-in-one baseline (same budget, no adapters)",
    "oh": "ABAIR OH",
    "sw": "ABAIR SW",
    "oracle": "ABAIR oracle",
}
Pairs = Sequence[tuple[str, np.ndarray, np.ndarray]]


@dataclass
class EvaluationResult:
    """Mean scores per task and method, every per-sample row, the confusion matrix and sample crops."""

    suite: str
    suite_hash: str
    methods: list[str]
    groups: dict[str, list[str]]
    scores: dict[str, dict[str, dict[str, float]]]
    rows: list[dict[str, Any]]
    class_names: list[str]
    confusion_labels: list[str]
    confusion: list[list[int]]
    samples: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def accuracy(self) -> float | None:
        """Share of estimator predictions equal to the true class (None when nothing was scored)."""
        total = sum(map(sum, self.confusion))
        if not total:
            return None
        hits = sum(row[self.class_names.index(label)] for label, row in zip(self.confusion_labels, self.confusion))
        return hits / total

    def to_dict(self) -> dict[str, Any]:
        """The JSON-serialisable numbers (no arrays): what ``scores.json`` and the flows carry."""
        counts: dict[str, int] = {}
        for row in self.rows:
            if row["method"] == "input":
                counts[row["task"]] = counts.get(row["task"], 0) + 1
        return {
            "suite": self.suite,
            "suite_hash": self.suite_hash,
            "methods": list(self.methods),
            "method_labels": {m: METHOD_LABELS.get(m, m) for m in self.methods},
            "groups": {g: list(t) for g, t in self.groups.items()},
            "scores": self.scores,
            "samples_per_task": counts,
            "estimator": {"classes": list(self.class_names), "labels": list(self.confusion_labels),
                          "matrix": [list(r) for r in self.confusion], "accuracy": self.accuracy},
            "seconds": self.seconds,
        }


def score_images(output: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """PSNR (capped), SSIM, PSNR-Y and SSIM-Y of ``output`` against ``clean`` (HWC float in [0, 1])."""
    return {"psnr": min(psnr(output, clean), PSNR_CAP), "ssim": ssim(output, clean),
            "psnr_y": min(psnr_y(output, clean), PSNR_CAP), "ssim_y": ssim_y(output, clean)}


def _stable(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "little")


def _quantize(image: np.ndarray) -> np.ndarray:
    return (np.clip(np.rint(np.asarray(image, np.float32) * 255.0), 0, 255) / 255.0).astype(np.float32)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(image, dtype=np.float32)).permute(2, 0, 1)[None]


def _to_array(x: torch.Tensor) -> np.ndarray:
    return _quantize(x[0].clamp(0, 1).permute(1, 2, 0).cpu().numpy())


class _Scorer:
    """Runs every method on one input and accumulates rows, the confusion matrix and sample crops."""

    def __init__(self, model: ABAIR, baselines: Mapping[str, nn.Module], estimator_groups: Sequence[str],
                 keep_samples: bool) -> None:
        self.model = model.eval()
        self.baselines = {name: module.eval() for name, module in baselines.items()}
        self.estimator_groups = set(estimator_groups)
        self.keep_samples = keep_samples
        self.rows: list[dict[str, Any]] = []
        self.samples: dict[str, dict[str, np.ndarray]] = {}
        self.confusion: dict[str, list[int]] = {}

    def oracle_weights(self, task: BenchmarkTask) -> dict[str, float] | None:
        parts = task.oracle_components()
        if not parts or any(p not in self.model.adapter_names for p in parts):
            return None  # N/A: an unseen task with no adapter, or no oracle defined
        return {p: 1.0 / len(parts) for p in parts}

    @torch.no_grad()
    def outputs(self, task: BenchmarkTask, degraded: np.ndarray) -> dict[str, np.ndarray]:
        x = _to_tensor(degraded)
        out = {"input": degraded, "backbone": _to_array(self.model.restore(x, "oracle", {}))}
        out["oh"] = _to_array(self.model.restore(x, "oh"))
        out["sw"] = _to_array(self.model.restore(x, "sw"))
        weights = self.oracle_weights(task)
        if weights is not None:
            out["oracle"] = _to_array(self.model.restore(x, "oracle", weights))
        for name, module in self.baselines.items():
            out[name] = _to_array(module(x))
        return out

    @torch.no_grad()
    def predict(self, degraded: np.ndarray) -> str:
        probs = self.model.estimator.predict_proba(_to_tensor(degraded))[0]
        return self.model.class_names[int(probs.argmax())]

    def score(self, group: str, task: BenchmarkTask, image: str, seed: int, crop: int,
              degraded: np.ndarray, clean: np.ndarray) -> None:
        outputs = self.outputs(task, degraded)
        for method, output in outputs.items():
            self.rows.append({"group": group, "task": task.id, "image": image, "seed": seed, "crop": crop,
                              "method": method, **score_images(output, clean)})
        label = task.true_label()
        if group in self.estimator_groups and label in self.model.class_names:
            predicted = self.predict(degraded)
            counts = self.confusion.setdefault(label, [0] * len(self.model.class_names))
            counts[self.model.class_names.index(predicted)] += 1
        if self.keep_samples and task.id not in self.samples:
            self.samples[task.id] = {"clean": clean, **outputs}


def _degrade(task: BenchmarkTask, clean: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    if task.is_clean:
        return clean
    degradations = [build_degradation(dict(spec)) for spec in task.specs()]
    return _quantize(apply_sequence(clean, degradations, rng).image)


def degrade_task_input(suite: BenchmarkSuite, task: BenchmarkTask, key: str, photo: np.ndarray, seed: int,
                       crop_index: int) -> tuple[np.ndarray, np.ndarray]:
    """(degraded, clean) input of a synthesized task for one photo, seed and crop: the suite's exact draw."""
    crop_rng = np.random.default_rng([seed, crop_index, _stable(key)])
    clean = photo if suite.crop is None else random_crop(photo, suite.crop, crop_rng)[0]
    rng = np.random.default_rng([seed, crop_index, _stable(key), _stable(task.id)])
    return _degrade(task, clean, rng), clean


def task_inputs(suite: BenchmarkSuite, task: BenchmarkTask, images: Mapping[str, np.ndarray]
                ) -> Iterator[tuple[str, int, int, np.ndarray, np.ndarray]]:
    """(photo key, seed, crop index, degraded, clean) for every input of a synthesized task, in suite order."""
    for key, photo in images.items():
        for seed in suite.seeds:
            for c in range(suite.crops_per_image):
                yield (key, seed, c, *degrade_task_input(suite, task, key, photo, seed, c))


def evaluate_suite(
    model: ABAIR,
    suite: BenchmarkSuite,
    images: Mapping[str, np.ndarray] | None = None,
    baselines: Mapping[str, nn.Module] | None = None,
    pairs: Mapping[str, Pairs] | None = None,
    keep_samples: bool = True,
    progress: Callable[[str, int, int], None] | None = None,
) -> EvaluationResult:
    """Score ``model`` (and ``baselines``: name -> backbone) on every task of ``suite``.

    ``images`` are the clean photos of synthesized tasks; ``pairs`` maps a paired task id to its
    (name, degraded, clean) images. Crops are the same for every task (seeded by seed, crop index and
    image key); the degradation draw is seeded by those and the task id, so numbers are reproducible.
    """
    began = time.perf_counter()
    baselines = dict(baselines or {})
    clash = sorted(set(baselines) & {"input", *ABAIR_METHODS})
    if clash:
        raise ValueError(f"baseline names {clash} clash with the built-in methods")
    scorer = _Scorer(model, baselines, suite.estimator_groups, keep_samples)
    tasks = suite.tasks()
    for index, (group, task) in enumerate(tasks):
        if task.paired is not None:
            if pairs is None or task.id not in pairs:
                raise ValueError(f"paired task {task.id!r} needs its images (pairs[{task.id!r}])")
            for name, degraded, clean in pairs[task.id]:
                scorer.score(group, task, name, 0, 0, degraded, clean)
        else:
            if not images:
                raise ValueError(f"task {task.id!r} needs clean images (suite images: {suite.images})")
            for key, seed, c, degraded, clean in task_inputs(suite, task, images):
                scorer.score(group, task, key, seed, c, degraded, clean)
        if progress is not None:
            progress(task.id, index + 1, len(tasks))
    methods = ["input", "backbone", *baselines, "oh", "sw", "oracle"]
    labels = [c for c in model.class_names if c in scorer.confusion]
    return EvaluationResult(
        suite=suite.name, suite_hash=suite_hash(suite), methods=methods,
        groups={g: [t.id for t in ts] for g, ts in suite.groups.items()},
        scores=_mean_scores(scorer.rows), rows=scorer.rows, class_names=list(model.class_names),
        confusion_labels=labels, confusion=[scorer.confusion[label] for label in labels],
        samples=scorer.samples, seconds=time.perf_counter() - began,
    )


def evaluate_pairs(model: ABAIR, task: BenchmarkTask, pairs: Pairs,
                   baselines: Mapping[str, nn.Module] | None = None) -> EvaluationResult:
    """Score one paired task (e.g. Rain100L's rainy/ground-truth folders) on whole images."""
    suite = BenchmarkSuite(name="paired", images=None, groups={"paired": [task]}, estimator_groups=["paired"])
    return evaluate_suite(model, suite, baselines=baselines, pairs={task.id: pairs})


def _mean_scores(rows: Sequence[Mapping[str, Any]]) -> dict[str, dict[str, dict[str, float]]]:
    sums: dict[tuple[str, str], list[dict[str, float]]] = {}
    for row in rows:
        sums.setdefault((row["task"], row["method"]), []).append(row)
    out: dict[str, dict[str, dict[str, float]]] = {}
    for (task, method), group in sums.items():
        out.setdefault(task, {})[method] = {m: float(np.mean([r[m] for r in group])) for m in METRICS}
        # the worst input: do-no-harm targets hold for every image, not only on average
        out[task][method]["psnr_min"] = float(np.min([r["psnr"] for r in group]))
    return out


def save_samples(result: EvaluationResult, directory: str | Path) -> list[str]:
    """Write each task's sample crops as ``<task>/<method>.png`` (clean first); returns the paths."""
    written = []
    for task, crops in result.samples.items():
        folder = Path(directory) / task
        folder.mkdir(parents=True, exist_ok=True)
        for method, image in crops.items():
            path = folder / f"{method}.png"
            pixels = np.nan_to_num(np.asarray(image, np.float32), nan=0.0, posinf=1.0, neginf=0.0)
            Image.fromarray(np.clip(np.rint(pixels * 255), 0, 255).astype(np.uint8)).save(path)
            written.append(str(path))
    return written


def run_benchmark(
    bundle_dir: str | Path,
    suite: BenchmarkSuite | str | Path,
    images: str | None = None,
    baselines: Mapping[str, str] | None = None,
    sample_dir: str | Path | None = None,
    storage_options: Mapping[str, Any] | None = None,
    threads: int | None = None,
) -> dict[str, Any]:
    """Load a bundle (and baseline backbone files), evaluate it on a suite and return ``to_dict()``.

    ``images`` overrides the suite's image prefix (a user's own photos); ``sample_dir`` receives the
    sample crops; ``threads`` sets torch's intra-op threads for the call (1 avoids oversubscription
    on a shared CPU). This is the one call an orchestration task makes.
    """
    saved = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        return _run_benchmark(bundle_dir, suite, images, baselines, sample_dir, storage_options)
    finally:
        torch.set_num_threads(saved)


def _run_benchmark(bundle_dir: str | Path, suite: BenchmarkSuite | str | Path, images: str | None,
                   baselines: Mapping[str, str] | None, sample_dir: str | Path | None,
                   storage_options: Mapping[str, Any] | None) -> dict[str, Any]:
    chosen = suite if isinstance(suite, BenchmarkSuite) else load_suite(suite)
    chosen = chosen.with_images(images)
    model = load_bundle(bundle_dir)
    modules = {name: load_backbone(str(path))[0] for name, path in (baselines or {}).items()}
    photos = None
    if chosen.needs_images():
        if not chosen.images:
            raise ValueError(f"suite {chosen.name!r} has no image folder: pass one (--images URI)")
        photos = load_images(chosen.images, chosen.include, chosen.files, chosen.max_images,
                             chosen.max_pixels, storage_options)
    pairs = {task.id: load_pairs(task.paired.degraded, task.paired.clean, task.paired.include,
                                 chosen.max_images, chosen.max_pixels, storage_options)
             for _, task in chosen.tasks() if task.paired is not None}
    result = evaluate_suite(model, chosen, photos, modules, pairs,
                            progress=lambda t, i, n: log.info("evaluated %s (%d/%d)", t, i, n))
    if sample_dir is not None:
        save_samples(result, sample_dir)
    out = result.to_dict()
    out["images"] = sorted(photos) if photos else []
    out["model"] = {"preset": model.backbone.config.preset, "adapters": list(model.adapter_names),
                    "baselines": sorted(modules)}
    return out
