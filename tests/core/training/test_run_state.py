"""The run state file: finished steps survive a reload; another config starts over."""

from __future__ import annotations

from pathlib import Path

from abair_core.training.config import TrainConfig
from abair_core.training.run_state import RunState, config_hash


def test_state_round_trip_and_config_change(tmp_path: Path) -> None:
    uri = str(tmp_path / "runs" / "state.json")
    a = config_hash(TrainConfig(name="x"))
    state = RunState.load(uri, a)
    assert not state.done("pretrain")
    state.record("pretrain", {"version": "3"})
    state.set_info(parent_run_id="abc")
    again = RunState.load(uri, a)
    assert again.done("pretrain") and again.get("pretrain") == {"version": "3"}
    assert again.info == {"parent_run_id": "abc"}
    b = config_hash(TrainConfig(name="x", model="small"))
    assert b != a
    assert RunState.load(uri, b).steps == {}


def test_a_later_field_at_its_legacy_value_keeps_the_hash() -> None:
    """Fields added after runs were stored, at the behaviour before they existed, leave a stored run's hash alone:
    sw_sharpness (2026-12-04) at 1, phase2.clean_fraction_by_type (2026-12-07) empty, estimator.stem (2026-12-07)
    full, estimator.tta (2026-12-08) none."""
    import hashlib
    import json

    config = TrainConfig(name="x")
    dump = config.model_dump(mode="json")
    del dump["estimator"]["sw_sharpness"], dump["estimator"]["stem"], dump["estimator"]["tta"]  # what the config dumped before they existed
    del dump["phase2"]["clean_fraction_by_type"]
    before = hashlib.sha256(json.dumps(dump, sort_keys=True, separators=(",", ":")).encode()).hexdigest()[:16]
    assert config_hash(config) == before
    sharper = TrainConfig(name="x", estimator={"sw_sharpness": 2.0})
    assert config_hash(sharper) != before
    assert config_hash(TrainConfig(name="x", phase2={"clean_fraction_by_type": {"noise": 0.0}})) != before
    assert config_hash(TrainConfig(name="x", estimator={"stem": "space_to_depth"})) != before
    assert config_hash(TrainConfig(name="x", estimator={"tta": "dihedral"})) != before
