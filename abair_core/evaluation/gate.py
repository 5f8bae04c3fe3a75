"""The promotion gate: a challenger replaces the champion only if it is not worse beyond set margins.

Defaults (issue 5): the average PSNR of ``method`` (SW, what production runs) over every task of the
gated groups is not lower than the champion's minus 0.05 dB; no task is lower by more than 0.3 dB;
the estimator's accuracy on single degradations is not lower by more than 2 points. Both score
dictionaries must come from the same suite hash (the same images, crops, seeds and tasks).
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
