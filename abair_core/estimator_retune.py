"""Retune a trained estimator's inference-only settings without retraining it.

Three estimator settings are inference only: the soft-weight sharpness (``sw_sharpness``), the test-time views
of each crop (``tta``) and the plausibility gates (``plausibility.*``). All are stored in the estimator's
file, so a registered model keeps the outputs it was evaluated with. Retuning writes a copy of the file
with new values and the same tensors (same weights, same fingerprint): a new version an MLOps engineer
can evaluate and promote like any challenger, without a training run. Settings that shape the network
or what it was trained on (crop size, width, statistics, ...) are refused: those need retraining.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from abair_core.bundle import BUNDLE_FILE, ESTIMATOR_FILE, read_bundle_manifest
from abair_core.checkpoints import load_checkpoint, read_checkpoint_metadata, save_checkpoint
from abair_core.components import stored_estimator_config
from abair_core.config import ConfigError, StrictConfig, load_config, validate_config
from abair_core.models.estimator import EstimatorConfig

__all__ = ["EstimatorRetune", "load_retune", "planned_changes", "retune_estimator_file", "write_retuned_bundle"]

#: Metadata key of an estimator file listing the retunes that led to it (oldest first).
RETUNES_KEY = "retunes"


class EstimatorRetune(StrictConfig):
    """The inference-only estimator settings a retune may change; absent keys keep the stored value."""

    sw_sharpness: float | None = Field(
        None, ge=1.0, le=64.0,
        description="sw blends the adapters by p ** sw_sharpness, renormalised (1: the paper's soft weights).")
    tta: Literal["none", "flip", "dihedral"] | None = Field(
        None, description="Test-time views of each crop averaged by the estimator: none, flip or dihedral (8).")
    plausibility: dict[str, Any] = Field(
        default_factory=dict,
        description="Plausibility gate settings to change (keys of PlausibilityConfig, e.g. noise_min_sigma).")

    def changes(self) -> dict[str, Any]:
        """The settings this retune names, as a partial estimator config."""
        return self.model_dump(exclude_none=True, exclude_defaults=True)


def load_retune(path: str | Path) -> EstimatorRetune:
    """Load a retune file (``configs/estimator/retune/*.yaml``); one that changes nothing is an error."""
    retune = load_config(path, EstimatorRetune)
    if not retune.changes():
        raise ConfigError(f"{path}: names no setting to change (allowed keys: "
                          f"{', '.join(sorted(EstimatorRetune.model_fields))})")
    return retune


def retune_estimator_file(src: str, dst: str, retune: EstimatorRetune,
                          source: str = "<retune>") -> dict[str, dict[str, Any]]:
    """Write ``src``'s estimator to ``dst`` with ``retune`` applied; returns ``{dotted key: {before, after}}``.

    The stored config is read as it behaves (legacy defaults filled in), so keys the retune leaves alone keep
    their meaning. The merged config is validated as a whole: an error names ``source`` and the key.
    A retune that changes nothing raises ``ValueError`` and writes nothing.
    """
    tensors, metadata = load_checkpoint(src)
    after, diff = _retuned_config(metadata, retune, src, source)  # refuses a file of another kind
    history = [*metadata.get(RETUNES_KEY, []), {"changes": diff}]
    save_checkpoint(dst, tensors, {**metadata, "estimator_config": after, RETUNES_KEY: history})
    return diff


def planned_changes(src: str, retune: EstimatorRetune, source: str = "<retune>") -> dict[str, dict[str, Any]]:
    """What :func:`retune_estimator_file` would change in ``src`` (reads only the header); same errors, no file."""
    return _retuned_config(read_checkpoint_metadata(src), retune, src, source)[1]


def _retuned_config(metadata: Mapping[str, Any], retune: EstimatorRetune, src: str,
                    source: str) -> tuple[dict[str, Any], dict[str, dict[str, Any]]]:
    """The estimator config with ``retune`` applied, and the differences; refuses an invalid or empty change."""
    if metadata.get("kind") != "estimator":
        raise ValueError(f"{src} is not an estimator file (kind {metadata.get('kind')!r})")
    before = EstimatorConfig.model_validate(stored_estimator_config(metadata)).model_dump(mode="json")
    changes = retune.changes()
    merged = {**before, **changes, "plausibility": {**before["plausibility"], **changes.get("plausibility", {})}}
    after = validate_config(merged, EstimatorConfig, source=source).model_dump(mode="json")
    diff = _differences(before, after)
    if not diff:
        raise ValueError(f"{source}: estimator {src} already has these settings; nothing to retune")
    return after, diff


def write_retuned_bundle(src_dir: str | Path, dst_dir: str | Path, estimator_file: str | Path,
                         versions: Mapping[str, str]) -> Path:
    """Copy bundle ``src_dir`` to ``dst_dir`` with ``estimator_file`` in place of its estimator.

    ``bundle.json`` records ``versions`` (the pins of the new bundle); the tensors fingerprints stay, since
    a retune changes no weight. ``dst_dir`` must not exist yet: nothing is ever overwritten.
    """
    src, dst = Path(src_dir), Path(dst_dir)
    manifest = read_bundle_manifest(src)
    if dst.exists():
        raise FileExistsError(f"{dst} already exists; a retuned bundle is written to a new folder")
    shutil.copytree(src, dst)
    shutil.copyfile(estimator_file, dst / ESTIMATOR_FILE)
    manifest["versions"] = dict(versions)
    (dst / BUNDLE_FILE).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return dst


def _differences(before: Mapping[str, Any], after: Mapping[str, Any], prefix: str = "") -> dict[str, dict[str, Any]]:
    """Dotted keys whose value differs, with both values."""
    out: dict[str, dict[str, Any]] = {}
    for key in sorted(set(before) | set(after)):
        old, new = before.get(key), after.get(key)
        if isinstance(old, Mapping) and isinstance(new, Mapping):
            out.update(_differences(old, new, f"{prefix}{key}."))
        elif old != new:
            out[f"{prefix}{key}"] = {"before": old, "after": new}
    return out
