"""The promotion gate: a challenger replaces the champion only if it is not worse beyond set margins.

Defaults (issue 5): the average PSNR of ``method`` (SW, what production runs) over every task of the
gated groups is not lower than the champion's minus 0.05 dB; no task is lower by more than 0.3 dB;
the estimator's accuracy on single degradations is not lower by more than 2 points. Both score
dictionaries must come from the same suite hash (the same images, crops, seeds and tasks).

Do no harm (issue 9): the tasks of the ``clean`` group (no degradation: the output is scored against
the untouched input) are gated on their own, because an identical output scores the runner's 100 dB
cap and would swamp the per-task and average margins: each clean task's mean PSNR must reach an
absolute floor (``min_clean_psnr``, 40 dB) and must not fall more than ``max_clean_psnr_drop`` below
the champion's, both counted at most ``clean_psnr_ceiling`` (50 dB: beyond it an output is as good as
untouched). The tasks of the ``no_worse_than_input`` groups (``mild``) must also not come out worse
than their own input (``max_input_psnr_loss``). These checks apply when the suite has those groups.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import Field

from abair_core.config import StrictConfig, load_config
from abair_core.evaluation.scores import overall_average

__all__ = ["GateConfig", "GateDecision", "decide", "load_gate"]


class GateConfig(StrictConfig):
    """Margins of the quality gate (``configs/promotion/gate.yaml``)."""

    method: str = Field("sw", description="the method whose numbers are gated (sw: the production mode)")
    groups: list[str] | None = Field(None, description="groups whose tasks are gated; None = every group")
    max_average_psnr_drop: float = Field(0.05, ge=0, description="dB the average PSNR may fall below the champion's")
    max_task_psnr_drop: float = Field(0.3, ge=0, description="dB any single task may fall below the champion's")
    max_accuracy_drop: float = Field(2.0, ge=0, description="points (%) the estimator accuracy may fall")
    task_margins: dict[str, float] = Field(
        default_factory=dict, description="per-task override of max_task_psnr_drop (e.g. a stricter clean task)"
    )
    clean_group: str = Field(
        "clean", description="group of clean-input tasks: gated by the clean floor and drop below, not by the "
        "per-task and average margins"
    )
    min_clean_psnr: float | None = Field(
        40.0, ge=0, description="dB every clean task's mean PSNR must reach (absolute floor); null = no floor"
    )
    max_clean_psnr_drop: float = Field(
        0.5, ge=0, description="dB a clean task may fall below the champion's (both capped at clean_psnr_ceiling)"
    )
    clean_psnr_ceiling: float = Field(
        50.0, gt=0, description="clean PSNR counted at most this (an untouched output scores the 100 dB cap)"
    )
    no_worse_than_input: list[str] = Field(
        default_factory=lambda: ["mild"], description="groups whose tasks must not come out worse than their input"
    )
    max_input_psnr_loss: float = Field(
        0.05, ge=0, description="dB a no_worse_than_input task may fall below its input's PSNR"
    )


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger passes, every failed check in words, and the tasks that failed."""

    passed: bool
    failures: list[str] = field(default_factory=list)
    failing_tasks: list[str] = field(default_factory=list)
    challenger_average: float | None = None
    champion_average: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "failures": list(self.failures), "failing_tasks": list(self.failing_tasks),
                "challenger_average": self.challenger_average, "champion_average": self.champion_average}


def load_gate(path: str) -> GateConfig:
    """Load ``configs/promotion/gate.yaml`` (or any gate file)."""
    return load_config(path, GateConfig)


def decide(challenger: Mapping[str, Any], champion: Mapping[str, Any],
           config: GateConfig | None = None) -> GateDecision:
    """Compare two ``scores.json`` dictionaries of the same suite and apply the gate."""
    config = config or GateConfig()
    if challenger.get("suite_hash") != champion.get("suite_hash"):
        raise ValueError(f"scores come from different suites ({challenger.get('suite_hash')} vs "
                         f"{champion.get('suite_hash')}): score both on the same suite")
    groups = list(config.groups) if config.groups is not None else list(challenger["groups"])
    unknown = [g for g in groups if g not in challenger["groups"]]
    if unknown:
        raise ValueError(f"gate groups {unknown} are not in the suite (groups: {list(challenger['groups'])})")
    method = config.method
    failures: list[str] = []
    failing: list[str] = []
    clean_tasks = list(challenger["groups"][config.clean_group]) if config.clean_group in groups else []
    _check_clean(challenger, champion, clean_tasks, config, failures, failing)
    for group in [g for g in config.no_worse_than_input if g in groups]:
        _check_against_input(challenger, challenger["groups"][group], config, failures, failing)
    groups = [g for g in groups if g != config.clean_group]
    for task in [t for g in groups for t in challenger["groups"][g]]:
        new = challenger["scores"].get(task, {}).get(method, {}).get("psnr")
        old = champion["scores"].get(task, {}).get(method, {}).get("psnr")
        if new is None or old is None:
            if old is not None:
                failures.append(f"{task}: the challenger has no {method} score (champion {old:.2f} dB)")
                failing.append(task)
            continue
        margin = config.task_margins.get(task, config.max_task_psnr_drop)
        if not math.isfinite(new):
            failures.append(f"{task}: the challenger's {method} PSNR is {new} (non-finite output)")
            failing.append(task)
        elif new < old - margin:
            failures.append(f"{task}: {method} PSNR {new:.2f} dB is {old - new:.2f} dB below the champion's "
                            f"{old:.2f} dB (allowed {margin:.2f})")
            if task not in failing:
                failing.append(task)
    new_avg = overall_average(challenger, method, groups=groups)
    old_avg = overall_average(champion, method, groups=groups)
    if new_avg is not None and old_avg is not None and new_avg < old_avg - config.max_average_psnr_drop:
        failures.append(f"average {method} PSNR {new_avg:.2f} dB is {old_avg - new_avg:.2f} dB below the "
                        f"champion's {old_avg:.2f} dB (allowed {config.max_average_psnr_drop:.2f})")
    new_acc = challenger.get("estimator", {}).get("accuracy")
    old_acc = champion.get("estimator", {}).get("accuracy")
    if new_acc is not None and old_acc is not None and 100 * (old_acc - new_acc) > config.max_accuracy_drop:
        failures.append(f"estimator accuracy {100 * new_acc:.1f}% is {100 * (old_acc - new_acc):.1f} points below "
                        f"the champion's {100 * old_acc:.1f}% (allowed {config.max_accuracy_drop:.1f})")
    return GateDecision(passed=not failures, failures=failures, failing_tasks=failing,
                        challenger_average=new_avg, champion_average=old_avg)


def _psnr(scores: Mapping[str, Any], task: str, method: str) -> float | None:
    value = scores["scores"].get(task, {}).get(method, {}).get("psnr")
    return None if value is None else float(value)


def _check_clean(challenger: Mapping[str, Any], champion: Mapping[str, Any], tasks: list[str],
                 config: GateConfig, failures: list[str], failing: list[str]) -> None:
    """Clean tasks: an absolute floor, and no drop beyond the margin against the champion (capped)."""
    method, ceiling = config.method, config.clean_psnr_ceiling
    for task in tasks:
        new, old = _psnr(challenger, task, method), _psnr(champion, task, method)
        if new is None or not math.isfinite(new):
            failures.append(f"{task}: harms clean images: the challenger's {method} PSNR is {new} "
                            "(missing or non-finite)")
            failing.append(task)
            continue
        if config.min_clean_psnr is not None and new < config.min_clean_psnr:
            failures.append(f"{task}: harms clean images: {method} PSNR {new:.2f} dB against the untouched "
                            f"input is below the floor of {config.min_clean_psnr:.2f} dB")
            failing.append(task)
            continue
        if old is not None and math.isfinite(old) and min(new, ceiling) < min(old, ceiling) - config.max_clean_psnr_drop:
            failures.append(f"{task}: harms clean images: {method} PSNR {new:.2f} dB is "
                            f"{min(old, ceiling) - min(new, ceiling):.2f} dB below the champion's {old:.2f} dB "
                            f"(counted up to {ceiling:.0f} dB; allowed {config.max_clean_psnr_drop:.2f})")
            failing.append(task)


def _check_against_input(challenger: Mapping[str, Any], tasks: list[str], config: GateConfig,
                         failures: list[str], failing: list[str]) -> None:
    """Mild tasks: the output may not be worse than the (mildly degraded) input it was given."""
    method = config.method
    for task in tasks:
        new, given = _psnr(challenger, task, method), _psnr(challenger, task, "input")
        if new is None or given is None or not math.isfinite(new):
            continue  # a missing or non-finite score is reported by the per-task check
        if new < given - config.max_input_psnr_loss:
            failures.append(f"{task}: {method} PSNR {new:.2f} dB is {given - new:.2f} dB worse than its input's "
                            f"{given:.2f} dB (allowed {config.max_input_psnr_loss:.2f})")
            failing.append(task)
