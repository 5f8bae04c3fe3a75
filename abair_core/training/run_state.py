"""The resumable record of a multi-step training run: which steps finished and what each produced.

One JSON object on any fsspec storage (written atomically after every finished step), keyed by the
hash of the training config, so a run killed in the middle continues from its last finished step, and
a changed recipe starts over instead of reusing outputs made with other settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from abair_core.io.storage import atomic_write_bytes, exists, read_bytes
from abair_core.training.config import TrainConfig

__all__ = ["RunState", "config_hash"]


#: Fields added after runs were stored, with the value that behaves as before they existed: left out of the hash
#: at that value, so a stored run of an unchanged recipe resumes instead of starting over.
_LEGACY_VALUES: dict[tuple[str, str], object] = {("estimator", "sw_sharpness"): 1.0,
                                                  ("estimator", "stem"): "full",
                                                  ("estimator", "tta"): "none",
                                                  ("phase2", "clean_fraction_by_type"): {}}


def config_hash(config: TrainConfig) -> str:
    """A short hash of everything in a training config (any change means a different run)."""
    dump = config.model_dump(mode="json")
    for (section, key), legacy in _LEGACY_VALUES.items():
        if dump[section].get(key) == legacy:
            del dump[section][key]
    text = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class RunState:
    """Finished steps (name -> result dict) of one run, stored at ``uri``."""

    uri: str
    config_hash: str
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    storage_options: Mapping[str, Any] | None = None

    @staticmethod
    def load(uri: str, config_hash: str, storage_options: Mapping[str, Any] | None = None) -> RunState:
        """The stored state, or a fresh one when there is none or it belongs to another config."""
        state = RunState(uri, config_hash, storage_options=storage_options)
        if exists(uri, storage_options):
            data = json.loads(read_bytes(uri, storage_options))
            if data.get("config_hash") == config_hash:
                state.steps = dict(data.get("steps", {}))
                state.info = dict(data.get("info", {}))
        return state

    def done(self, step: str) -> bool:
        return step in self.steps

    def get(self, step: str) -> dict[str, Any]:
        return dict(self.steps[step])

    def record(self, step: str, result: Mapping[str, Any]) -> None:
        """Mark ``step`` finished with ``result`` (JSON-serialisable) and save at once."""
        self.steps[step] = json.loads(json.dumps(dict(result), default=str))
        self.save()

    def set_info(self, **values: Any) -> None:
        self.info.update(values)
        self.save()

    def save(self) -> None:
        payload = {"config_hash": self.config_hash, "steps": self.steps, "info": self.info}
        atomic_write_bytes(self.uri, json.dumps(payload, indent=2, sort_keys=True).encode(), self.storage_options)
