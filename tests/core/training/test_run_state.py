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
