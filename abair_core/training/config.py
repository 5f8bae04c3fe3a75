"""Schedules of the three training phases (one pydantic config each, all from YAML)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from abair_core.config import StrictConfig
from abair_core.data.synthesis import SynthesisConfig
from abair_core.models.estimator import EstimatorConfig
from abair_core.models.lora import AdapterConfig


class OptimizerSchedule(StrictConfig):
    """What every phase shares: steps, batch, patch, AdamW and a warm-up + cosine learning rate."""

    steps: int = Field(300, ge=1, description="optimizer steps")
    batch_size: int = Field(8, ge=1)
    patch_size: int = Field(64, ge=16, description="side of the square training crops, in pixels")
    lr: float = Field(2e-3, gt=0)
    min_lr: float = Field(1e-5, ge=0)
    weight_decay: float = Field(1e-4, ge=0)
    warmup_steps: int = Field(20, ge=0)
    grad_clip: float = Field(1.0, gt=0)
    checkpoint_every: int = Field(100, ge=1, description="steps between resumable checkpoints")
    log_every: int = Field(10, ge=1)
    seed: int = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"

    @model_validator(mode="after")
    def _check_lr(self) -> OptimizerSchedule:
        if self.min_lr > self.lr:
            raise ValueError(f"min_lr ({self.min_lr}) must not exceed lr ({self.lr})")
        return self


class PretrainSchedule(OptimizerSchedule):
    """Phase I: composite degradations, L1 restoration + weighted segmentation cross-entropy."""

    seg_weight: float = Field(0.1, ge=0, description="weight of the segmentation cross-entropy")
    single_fraction: float = Field(
        0.3, ge=0, le=1, description="share of samples with one whole-image degradation instead of a composite"
    )
    clean_fraction: float | None = Field(
        None, ge=0, le=1, description="share of whole clean and mild (identity) samples, drawn beside "
        "single_fraction; None: they share single_fraction with the single-degradation patches in proportion "
        "to their counts (recipes before 2026-11-27)"
    )

    @model_validator(mode="after")
    def _check_shares(self) -> PretrainSchedule:
        if self.clean_fraction is not None and self.single_fraction + self.clean_fraction > 1:
            raise ValueError(f"single_fraction + clean_fraction must be <= 1, got {self.single_fraction} + "
                             f"{self.clean_fraction}")
        return self


class AdapterSchedule(OptimizerSchedule):
    """Phase II: one LoRA adapter on its own degradation; the backbone stays frozen."""

    clean_fraction: float = Field(
        0.0, ge=0, le=1, description="share of clean (identity) samples mixed into the adapter's data"
    )
    clean_fraction_by_type: dict[str, float] = Field(
        default_factory=dict, description="identity share of the named adapters, in place of clean_fraction "
        "(degradation id -> share in [0, 1]): a misread sends a clean photo to a global adapter (haze, low light) "
        "at a cost of 5-25 dB and to a local one (noise, rain, blur) at about 1 dB, so the local ones can spend "
        "less of their batches on identity samples; ids must be among the recipe's degradations"
    )
    mild_fraction: float = Field(
        0.0, ge=0, le=1, description="share of the adapter's own degradation at mild strength (synthesis "
        "kind 'mild'), restored to the clean crop: a light touch on light degradations instead of a full "
        "restoration; 0 or no mild patches of that type draws none"
    )
    warm_start: Literal["zero", "best"] = Field(
        "zero", description="where a new adapter starts when other adapters exist (add-degradation): 'zero' "
        "(a no-op, the paper) or 'best' (a copy of the old adapter that restores the new type's training "
        "patches best, when one beats the backbone alone); train_all has no other adapters and starts at zero"
    )

    def identity_share(self, name: str) -> float:
        """The clean (identity) share of adapter ``name``'s batches: its own entry, else ``clean_fraction``."""
        return self.clean_fraction_by_type.get(name, self.clean_fraction)

    @model_validator(mode="after")
    def _shares_fit(self) -> AdapterSchedule:
        for key, share in [("clean_fraction", self.clean_fraction),
                           *((f"clean_fraction_by_type.{n}", v) for n, v in self.clean_fraction_by_type.items())]:
            if not 0 <= share <= 1:
                raise ValueError(f"{key} must be within [0, 1], got {share}")
            if share + self.mild_fraction > 1:
                raise ValueError(f"{key} + mild_fraction must be <= 1, got {share} + {self.mild_fraction}")
        return self


class EstimatorSchedule(OptimizerSchedule):
    """Phase III: the degradation estimator on single, mixed and clean crops."""

    lr: float = Field(1e-3, gt=0)
    batch_size: int = Field(32, ge=1)
    mixed_fraction: float = Field(0.25, ge=0, le=1, description="share of two-degradation samples")
    clean_fraction: float = Field(0.15, ge=0, le=1, description="share of undegraded samples (class clean)")
    greyscale_fraction: float = Field(
        0.0, ge=0, le=1, description="share of samples (any class) shown in greyscale, so a black-and-white "
        "photo is not read as a degradation"
    )
    balance_classes: bool | None = Field(
        None, description="draw single (and mixed) samples class by class, each class equally often, instead of "
        "patch by patch; null: on when the estimator trains on several datasets (add-degradation's union, where "
        "the new type's data outweighs each old type's), off for train_all's one balanced dataset"
    )
    base_distillation: float | None = Field(
        None, ge=0, description="weight of a term that keeps a retrained estimator's answers on samples of the "
        "classes its base estimator knows (add-degradation; Learning without Forgetting): the old adapters are "
        "reused untouched, so only the estimator's routing can move the old tasks. 0 = off; null: 1.0 when "
        "add-degradation retrains from a base estimator; train_all has no base and ignores it"
    )
    warm_start: Literal["scratch", "base"] = Field(
        "scratch", description="where a retrained estimator starts (add-degradation): 'scratch' (fresh weights) or "
        "'base' (the base bundle's estimator: every weight, and the output rows of the classes it knows, copied; "
        "a new class's row fresh); train_all has no base and starts from scratch"
    )
    trainable: Literal["all", "new_classes"] | None = Field(
        None, description="what a retrained estimator trains (add-degradation): 'all' its weights, or "
        "'new_classes' an expert estimator over every class for the class its base lacks, whose probability of "
        "that class gates the base, every base weight kept, so the old classes keep their ranking (needs "
        "warm_start 'base'; a replace or remove then trains nothing); null: 'new_classes' when starting from "
        "the base, else 'all'; train_all trains everything"
    )

    expert_steps: int | None = Field(
        None, ge=1, description="optimizer steps of the expert estimator a new class gets (trainable "
        "'new_classes'); null: three times 'steps'. The expert learns the new type on top of features trained "
        "for the old ones and needs longer to recognise it on photos it never saw (demo snow step, small suite: "
        "3 of 44 snowy inputs found after 1,200 steps, 26 after 3,600)"
    )

    def resolved_expert_steps(self) -> int:
        """``expert_steps``, its null resolved to three times ``steps``."""
        return self.expert_steps if self.expert_steps is not None else 3 * self.steps

    @model_validator(mode="after")
    def _check_trainable(self) -> EstimatorSchedule:
        if self.trainable == "new_classes" and self.warm_start != "base":
            raise ValueError(f"trainable 'new_classes' keeps the base estimator's weights, so warm_start must be "
                             f"'base', got {self.warm_start!r}")
        return self


class DataConfig(StrictConfig):
    """Where the clean training photos come from and which degradation ranges apply."""

    source: str = Field("samples://train", description="URI prefix of clean photos, or samples://train for the "
                        "scikit-image photos bundled with the project")
    include: str = Field("**/*", description="glob of files under the source prefix")
    exclude: list[str] = Field(default_factory=list, description="globs of keys never trained on (held-out "
                               "validation photos of a benchmark suite)")
    degradation_specs: str = Field("configs/degradations/train.yaml",
                                   description="YAML with the degradation training ranges")
    max_pixels: int = Field(50_000_000, ge=1)


class TrainConfig(StrictConfig):
    """One training recipe: model size, adapters, data synthesis and the three phase schedules."""

    name: str = Field(..., pattern=r"^[a-z0-9_-]+$")
    model: str = Field("tiny", description="model preset name (configs/model/<name>.yaml) or a YAML path")
    degradations: list[str] = Field(
        default_factory=lambda: ["rain", "haze", "noise", "blur", "low_light"],
        description="degradation ids that get an adapter (and an estimator class)",
    )
    sequence_partners: list[str] = Field(
        default_factory=list,
        description="degradation ids synthesized only as the other half of a sequence with one of "
                    "`degradations` (add-degradation pairs the new type with the old ones, so the estimator "
                    "sees their mixtures); they need a range in data.degradation_specs",
    )
    adapter: AdapterConfig = AdapterConfig()
    estimator: EstimatorConfig = EstimatorConfig()
    data: DataConfig = DataConfig()
    synthesis: SynthesisConfig = SynthesisConfig()
    phase1: PretrainSchedule = PretrainSchedule()
    phase2: AdapterSchedule = AdapterSchedule()
    phase3: EstimatorSchedule = EstimatorSchedule()

    @model_validator(mode="after")
    def _check_degradations(self) -> TrainConfig:
        if len(set(self.degradations)) != len(self.degradations) or "clean" in self.degradations:
            raise ValueError(f"degradations must be distinct ids without 'clean', got {self.degradations}")
        partners = self.sequence_partners
        if len(set(partners)) != len(partners) or "clean" in partners or set(partners) & set(self.degradations):
            raise ValueError(f"sequence_partners must be distinct ids without 'clean', none of degradations "
                             f"{self.degradations}, got {partners}")
        unknown = sorted(set(self.phase2.clean_fraction_by_type) - set(self.degradations))
        if unknown:
            raise ValueError(f"phase2.clean_fraction_by_type names {unknown}, which get no adapter here "
                             f"(allowed: {', '.join(self.degradations)})")
        return self
