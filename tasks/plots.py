"""Report figures with matplotlib (Agg): a radar plot like the paper's Figure 1 and a grid of sample crops.

Matplotlib is an orchestration-side dependency, so the figures live here and read what the core wrote
(``scores.json`` numbers, ``samples/<task>/<method>.png`` crops).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from PIL import Image
from prefect import task

__all__ = ["radar_axes", "radar_plot", "render_radar", "render_sample_grid", "sample_grid"]

INNER, OUTER = 0.4, 1.0  # the lowest value sits on the second of five circles, the highest on the outermost
#: Clean-input axes count PSNR up to this: an untouched output scores the runner's 100 dB cap, which would
#: squash every real difference between methods onto one point (the gate uses the same ceiling).
CLEAN_AXIS_CEILING = 50.0


def radar_axes(scores: dict[str, Any], methods: list[str] | None = None) -> tuple[list[str], dict[str, list[float]]]:
    """One axis per task (labelled with its group), each method's PSNR normalised per axis.

    As in the paper's Figure 1, the lowest value on an axis maps to the second circle (0.4) and the
    highest to the outermost (1.0); a method without a number on an axis (N/A) is NaN there. Every group
    the suite lists gets axes, ``clean`` and ``mild`` included; on ``clean`` axes PSNR counts up to
    :data:`CLEAN_AXIS_CEILING`.
    """
    methods = methods or list(scores["methods"])
    axes = [(group, task) for group, tasks in scores["groups"].items() for task in tasks]

    def value(group: str, task: str, method: str) -> float:
        v = scores["scores"].get(task, {}).get(method, {}).get("psnr", math.nan)
        return min(v, CLEAN_AXIS_CEILING) if group == "clean" and not math.isnan(v) else v

    raw = {m: [value(g, t, m) for g, t in axes] for m in methods}
    values = {m: [] for m in methods}
    for i in range(len(axes)):
        column = [raw[m][i] for m in methods if not math.isnan(raw[m][i])]
        lo, hi = (min(column), max(column)) if column else (0.0, 0.0)
        for m in methods:
            v = raw[m][i]
            values[m].append(math.nan if math.isnan(v) else (OUTER if hi == lo else
                                                             INNER + (OUTER - INNER) * (v - lo) / (hi - lo)))
    return [task if task == group else f"{task}\n({group})" for group, task in axes], values


def render_radar(scores: dict[str, Any], path: str, title: str = "") -> str:
    """Write the radar PNG: one polygon per method over every task of every group."""
    labels, values = radar_axes(scores)
    angles = np.linspace(0, 2 * np.pi, len(labels), endpoint=False).tolist()
    fig, ax = plt.subplots(figsize=(7, 7), subplot_kw={"projection": "polar"})
    names = scores.get("method_labels", {})
    for method, vals in values.items():
        ax.plot(angles + angles[:1], vals + vals[:1], marker="o", linewidth=1.5, label=names.get(method, method))
    ax.set_xticks(angles)
    ax.set_xticklabels(labels, fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_yticks([0.2, 0.4, 0.6, 0.8, 1.0])
    ax.set_yticklabels([])
    ax.set_title(title or f"PSNR per task, normalised per axis (suite {scores['suite']})", fontsize=10)
    ax.legend(loc="upper right", bbox_to_anchor=(1.35, 1.1), fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def render_sample_grid(samples_dir: str, path: str, methods: list[str] | None = None) -> str:
    """Write a PNG grid: one row per task, columns clean, input and each method's output."""
    root = Path(samples_dir)
    tasks = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    if not tasks:
        raise FileNotFoundError(f"{samples_dir}: no sample crops")
    columns = ["clean", *(methods or ["input", "backbone", "all_in_one", "oh", "sw", "oracle"])]
    columns = [c for c in columns if any((t / f"{c}.png").is_file() for t in tasks)]
    fig, axes = plt.subplots(len(tasks), len(columns), figsize=(1.8 * len(columns), 1.9 * len(tasks)), squeeze=False)
    for r, folder in enumerate(tasks):
        for c, method in enumerate(columns):
            ax = axes[r][c]
            ax.axis("off")
            file = folder / f"{method}.png"
            if file.is_file():
                ax.imshow(np.asarray(Image.open(file)))
            else:
                ax.text(0.5, 0.5, "N/A", ha="center", va="center")
            if r == 0:
                ax.set_title(method, fontsize=9)
            if c == 0:
                ax.text(-0.08, 0.5, folder.name, transform=ax.transAxes, rotation=90, ha="right", va="center",
                        fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


@task(name="radar-plot")
def radar_plot(scores: dict[str, Any], path: str, title: str = "") -> str:
    """Prefect task: :func:`render_radar`."""
    return render_radar(scores, path, title)


@task(name="sample-grid")
def sample_grid(samples_dir: str, path: str) -> str:
    """Prefect task: :func:`render_sample_grid`."""
    return render_sample_grid(samples_dir, path)
