"""Training batches drawn from a :class:`PatchSet`, deterministic per (seed, step) so runs resume exactly."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from abair_core.data.patches import CLEAN_CLASS_KINDS, PatchSet, estimator_class
from abair_core.models.image_statistics import luma


@dataclass
class Batch:
    """One batch: degraded and clean images (N, 3, P, P) in [0, 1], optional labels or soft class targets."""

    degraded: torch.Tensor
    clean: torch.Tensor
    labels: torch.Tensor | None = None  # (N, P, P) int64 segmentation labels
    targets: torch.Tensor | None = None  # (N, K) float soft class targets

    def to(self, device: torch.device) -> Batch:
        move = (lambda t: None if t is None else t.to(device, non_blocking=True))
        return Batch(move(self.degraded), move(self.clean), move(self.labels), move(self.targets))


def _step_rng(seed: int, step: int) -> np.random.Generator:
    return np.random.default_rng([seed, step])


def _crop_and_flip(patches: PatchSet, idx: np.ndarray, size: int, rng: np.random.Generator):
    """Random ``size`` crops with random flips/transposes of the chosen patches (same geometry for all parts)."""
    p = patches.degraded.shape[1]
    if size > p:
        raise ValueError(f"training crop {size} is larger than the stored patches ({p}); synthesize larger patches")
    deg, cln, lab = [], [], []
    for i in idx:
        y, x = (int(v) for v in rng.integers(0, p - size + 1, size=2))
        d = patches.degraded[i, y:y + size, x:x + size]
        c = patches.clean[i, y:y + size, x:x + size]
        lb = patches.labels[i, y:y + size, x:x + size]
        if rng.random() < 0.5:
            d, c, lb = d[:, ::-1], c[:, ::-1], lb[:, ::-1]
        if rng.random() < 0.5:
            d, c, lb = d[::-1], c[::-1], lb[::-1]
        deg.append(d)
        cln.append(c)
        lab.append(lb)
    to_t = (lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a))).permute(0, 3, 1, 2).float() / 255.0)
    return to_t(deg), to_t(cln), torch.from_numpy(np.ascontiguousarray(np.stack(lab))).long()


def to_greyscale(x: torch.Tensor) -> torch.Tensor:
    """(N, 3, H, W) RGB -> its Rec. 601 luma in all three channels (a black-and-white photo)."""
    return luma(x).expand_as(x).clone()


def _require(idx: np.ndarray, what: str) -> np.ndarray:
    if idx.size == 0:
        raise ValueError(f"the training patches contain no {what}; check the synthesis counts and degradations")
    return idx


def pretrain_batches(
    patches: PatchSet, batch_size: int, crop: int, seed: int, single_fraction: float, start_step: int = 0,
    clean_fraction: float | None = None,
) -> Iterator[Batch]:
    """Phase I: composites (and a share of single-degradation/clean/mild patches) with segmentation labels.

    Mild patches (label map all clean, target the true clean crop) teach the backbone gentle corrections.
    ``clean_fraction`` None draws clean and mild patches inside ``single_fraction``, in proportion to their
    counts (with the shipped counts that left 40% of that share to real degradations); a number gives them
    their own share, so single degradations keep all of ``single_fraction``.
    """
    composite = _require(patches.indices(("composite",)), "composite patches")
    none = np.zeros(0, np.int64)
    if clean_fraction is None:  # the recipes before clean_fraction: one pool for single, clean and mild
        other = patches.indices(("single", *CLEAN_CLASS_KINDS))

        def draw(rng: np.random.Generator) -> np.ndarray:
            n_single = int(rng.binomial(batch_size, single_fraction)) if other.size else 0
            return np.concatenate([rng.choice(composite, batch_size - n_single),
                                   rng.choice(other, n_single) if n_single else none])
    else:
        single = patches.indices(("single",))
        clean = patches.indices(CLEAN_CLASS_KINDS)
        shares = [single_fraction if single.size else 0.0, clean_fraction if clean.size else 0.0]

        def draw(rng: np.random.Generator) -> np.ndarray:
            n_single, n_clean, n_composite = rng.multinomial(batch_size, [*shares, 1.0 - sum(shares)])
            return np.concatenate([rng.choice(composite, n_composite), rng.choice(single, n_single) if n_single
                                   else none, rng.choice(clean, n_clean) if n_clean else none])

    step = start_step
    while True:
        rng = _step_rng(seed, step)
        degraded, clean_t, labels = _crop_and_flip(patches, draw(rng), crop, rng)
        yield Batch(degraded, clean_t, labels=labels)
        step += 1


def adapter_batches(
    patches: PatchSet, name: str, batch_size: int, crop: int, seed: int, clean_fraction: float, start_step: int = 0,
    mild_fraction: float = 0.0,
) -> Iterator[Batch]:
    """Phase II: patches with only degradation ``name``, plus shares of clean identity samples and of ``name``
    at mild strength (its ``mild`` patches, restored to the clean crop).

    With ``mild_fraction`` 0 (or no mild ``name`` patches) the draws are exactly those of the clean share alone,
    so recipes without it train bit for bit as before.
    """
    own = _require(patches.indices(("single",), (name,)), f"single '{name}' patches")
    clean = patches.indices(("clean",))
    nothing = np.zeros(0, np.int64)
    mild = patches.indices(("mild",), (name,)) if mild_fraction > 0 else nothing
    step = start_step
    while True:
        rng = _step_rng(seed, step)
        n_clean = int(rng.binomial(batch_size, clean_fraction)) if clean.size else 0
        # the mild share is of the whole batch: drawn from what the clean share left, at the matching odds
        left = batch_size - n_clean
        n_mild = int(rng.binomial(left, min(1.0, mild_fraction / (1 - clean_fraction)))) if mild.size and left else 0
        idx = np.concatenate([rng.choice(own, left - n_mild),
                              rng.choice(clean, n_clean) if n_clean else nothing,
                              rng.choice(mild, n_mild) if n_mild else nothing])
        degraded, clean_t, _ = _crop_and_flip(patches, idx, crop, rng)
        yield Batch(degraded, clean_t)
        step += 1


def class_targets(patches: PatchSet, idx: np.ndarray, class_names: Sequence[str]) -> torch.Tensor:
    """Soft estimator targets: one-hot for single/clean, an equal split over the parts of a sequence.

    Mild patches (a degradation below its training range) are class ``clean``: nothing should be done.
    """
    index = {n: i for i, n in enumerate(class_names)}
    targets = torch.zeros(len(idx), len(class_names))
    for row, i in enumerate(idx):
        parts = estimator_class(patches.kinds[i], patches.names[i])
        for part in parts:
            targets[row, index[part]] += 1.0 / len(parts)
    return targets


Drawer = Callable[[int, np.random.Generator], np.ndarray]
"""Draws ``n`` patch indices with a step's generator."""


def _drawer(patches: PatchSet, indices: np.ndarray, by_label: bool) -> Drawer:
    """Draws from ``indices``: uniformly, or ``by_label`` (a label uniformly among theirs, then a patch of it)."""
    if not by_label:
        return lambda n, rng: rng.choice(indices, n)
    labels: dict[str, list[int]] = {}
    for i in indices.tolist():
        labels.setdefault(patches.names[i], []).append(i)
    groups = [np.asarray(labels[k], dtype=np.int64) for k in sorted(labels)]
    return lambda n, rng: np.asarray([rng.choice(groups[k]) for k in rng.integers(0, len(groups), n)],
                                     dtype=np.int64)


def _label_balanced_probabilities(patches: PatchSet, indices: np.ndarray) -> np.ndarray:
    """The chance of each of ``indices`` under a by-label draw (:func:`_drawer` with ``by_label``)."""
    names = [patches.names[i] for i in indices.tolist()]
    sizes = Counter(names)
    return np.asarray([1.0 / (len(sizes) * sizes[name]) for name in names])


def _photo_matched_drawer(patches: PatchSet, candidates: np.ndarray, reference: np.ndarray) -> Drawer:
    """Draws ``candidates`` so that their source photos come as often as in a by-label draw of ``reference``.

    A union of datasets (add-degradation) may synthesize one type from other photos than the rest; clean
    samples drawn by patch count would then come mostly from one dataset's photos and the estimator would learn
    the photo, not the degradation ("these photos are clean"). Falls back to a uniform draw without lineage.
    """
    if len(patches.lineage) != len(patches) or not candidates.size:
        return lambda n, rng: rng.choice(candidates, n)
    source = [str(record.get("source_key")) for record in patches.lineage]
    photo_share: dict[str, float] = {}
    for i, share in zip(reference.tolist(), _label_balanced_probabilities(patches, reference)):
        photo_share[source[i]] = photo_share.get(source[i], 0.0) + float(share)
    per_photo = Counter(source[i] for i in candidates.tolist())
    weights = np.asarray([photo_share.get(source[i], 0.0) / per_photo[source[i]] for i in candidates.tolist()])
    if weights.sum() <= 0:  # no candidate shares a photo with the reference
        return lambda n, rng: rng.choice(candidates, n)
    probabilities = weights / weights.sum()
    return lambda n, rng: rng.choice(candidates, n, p=probabilities)


def estimator_batches(
    patches: PatchSet,
    class_names: Sequence[str],
    batch_size: int,
    crop: int,
    seed: int,
    mixed_fraction: float,
    clean_fraction: float,
    start_step: int = 0,
    clean_originals: bool = True,
    greyscale_fraction: float = 0.0,
    balance_classes: bool = False,
) -> Iterator[Batch]:
    """Phase III: crops of single, sequential (mixed) and clean patches with soft class targets.

    The ``clean_fraction`` share (class ``clean``) is half the clean and mild patches and half the clean
    originals of patches of any kind: "clean" must cover all the variety of the photos (smooth, dark,
    textured), or a soft photo reads as blur and a dark one as low light, and every patch has a clean original.
    ``clean_originals=False`` draws the whole share from clean and mild patches (the ablation's baseline).
    ``greyscale_fraction`` of the samples (any class) are shown in greyscale: archives hold black-and-white
    photos, and without them the estimator reads missing colour as a degradation.
    ``balance_classes`` draws single and mixed samples by label (each label equally often, then a patch of it):
    a union of datasets (add-degradation) holds far more patches of the new type than of each old one. Its
    clean share then follows the photos of those draws too (:func:`_photo_matched_drawer`): the clean originals
    are those of by-label single patches, the clean and mild patches are weighted by photo.
    """
    adapters = [n for n in class_names if n != "clean"]
    single = _require(patches.indices(("single",), tuple(adapters)), "single-degradation patches")
    mixed = np.asarray([i for i in patches.indices(("sequence",))
                        if all(part in adapters for part in patches.names[i].split("+"))], dtype=np.int64)
    clean = patches.indices(CLEAN_CLASS_KINDS)
    clean_target = torch.zeros(len(class_names))
    clean_target[list(class_names).index("clean")] = 1.0
    draw_single, draw_mixed = (_drawer(patches, part, balance_classes) for part in (single, mixed))
    if balance_classes:
        draw_stored = _photo_matched_drawer(patches, clean, single)
        draw_originals = draw_single
    else:
        draw_stored = lambda n, rng: rng.choice(clean, n)
        draw_originals = lambda n, rng: rng.integers(0, len(patches), n)
    step = start_step
    while True:
        rng = _step_rng(seed, step)
        n_mixed = int(rng.binomial(batch_size, mixed_fraction)) if mixed.size else 0
        n_clean = int(rng.binomial(batch_size - n_mixed, clean_fraction)) if clean_fraction else 0
        if clean_originals:
            n_stored = int(rng.binomial(n_clean, 0.5)) if clean.size else 0
        else:  # the whole share from clean and mild patches; none without them
            n_clean = n_stored = n_clean if clean.size else 0
        n_originals = n_clean - n_stored
        parts = [draw_single(batch_size - n_mixed - n_clean, rng)]
        if n_mixed:
            parts.append(draw_mixed(n_mixed, rng))
        if n_stored:
            parts.append(draw_stored(n_stored, rng))
        if n_originals:
            parts.append(draw_originals(n_originals, rng))
        idx = np.concatenate(parts)
        degraded, clean_t, _ = _crop_and_flip(patches, idx, crop, rng)
        targets = torch.cat([class_targets(patches, idx[: len(idx) - n_originals], class_names),
                             clean_target.expand(n_originals, -1)])
        if n_originals:  # the last rows show their clean original: input = target, class clean
            degraded[-n_originals:] = clean_t[-n_originals:]
        if greyscale_fraction:
            grey = torch.from_numpy(rng.random(len(idx)) < greyscale_fraction)
            degraded[grey] = to_greyscale(degraded[grey])
            clean_t[grey] = to_greyscale(clean_t[grey])
        yield Batch(degraded, clean_t, targets=targets)
        step += 1
