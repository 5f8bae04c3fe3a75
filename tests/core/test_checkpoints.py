"""Checkpoints: safetensors with JSON header metadata, fingerprints, refusal of mismatches, fsspec URIs."""

import json
import struct
import uuid

import pytest
import torch

from abair_core.checkpoints import (
    CheckpointError,
    CheckpointMismatchError,
    load_checkpoint,
    read_checkpoint_metadata,
    save_checkpoint,
    tensors_fingerprint,
)
from abair_core.io.storage import read_bytes


def _tensors(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "encoder.conv.weight": torch.randn(8, 3, 3, 3, generator=g),
        "encoder.conv.bias": torch.randn(8, generator=g),
        "lora.A": torch.randn(4, 8, generator=g).to(torch.bfloat16),
        "step": torch.tensor(12, dtype=torch.int64),
        "mask": torch.tensor([True, False, True]),
    }


METADATA = {
    "kind": "adapter",
    "adapter": "rain",
    "backbone_fingerprint": "abc123",
    "config": {"preset": "tiny", "rank": 4},
    "classes": ["clean", "rain"],
}


@pytest.mark.parametrize("where", ["local", "memory"])
def test_round_trip_keeps_tensors_and_metadata(tmp_path, where: str) -> None:
    path = (
        str(tmp_path / "ckpt" / "adapter.safetensors")
        if where == "local"
        else (f"memory://ckpt-{uuid.uuid4().hex}/adapter.safetensors")
    )
    tensors = _tensors()
    fingerprint = save_checkpoint(path, tensors, METADATA)
    assert fingerprint == tensors_fingerprint(tensors) and len(fingerprint) == 64
    loaded, metadata = load_checkpoint(path, expect={"kind": "adapter", "backbone_fingerprint": "abc123"})
    assert metadata == METADATA
    assert set(loaded) == set(tensors)
    for name, tensor in tensors.items():
        assert loaded[name].dtype == tensor.dtype and torch.equal(loaded[name], tensor)
    assert read_checkpoint_metadata(path) == METADATA


def test_header_is_plain_safetensors_with_one_json_key(tmp_path) -> None:
    path = tmp_path / "a.safetensors"
    save_checkpoint(str(path), _tensors(), METADATA)
    data = path.read_bytes()
    (size,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + size])
    assert list(header["__metadata__"]) == ["abair"]
    stored = json.loads(header["__metadata__"]["abair"])
    assert stored == {**METADATA, "_tensors_sha256": tensors_fingerprint(_tensors())}
    assert b"pickle" not in data[: 8 + size] and not data.startswith(b"PK")


def test_mismatch_is_refused_before_tensors_and_names_the_key(tmp_path) -> None:
    path = str(tmp_path / "a.safetensors")
    save_checkpoint(path, _tensors(), METADATA)
    with pytest.raises(CheckpointMismatchError) as info:
        load_checkpoint(path, expect={"kind": "adapter", "backbone_fingerprint": "other"})
    assert (info.value.key, info.value.expected, info.value.found) == (
        "backbone_fingerprint",
        "other",
        "abc123",
    )
    assert "backbone_fingerprint" in str(info.value) and "'other'" in str(info.value)
    with pytest.raises(CheckpointMismatchError, match="<missing>"):
        load_checkpoint(path, expect={"estimator_version": "3"})
    with pytest.raises(CheckpointMismatchError, match="config.rank"):
        load_checkpoint(path, expect={"config.rank": 8})
    assert load_checkpoint(path, expect={"config.preset": "tiny"})[1]["adapter"] == "rain"


def test_fingerprint_is_stable_and_sensitive() -> None:
    a = _tensors()
    assert tensors_fingerprint(a) == tensors_fingerprint(dict(reversed(list(a.items()))))
    assert tensors_fingerprint(a) == tensors_fingerprint(_tensors())
    changed = dict(a, **{"encoder.conv.bias": a["encoder.conv.bias"].clone()})
    changed["encoder.conv.bias"][3] += 1e-3
    assert tensors_fingerprint(changed) != tensors_fingerprint(a)
    assert tensors_fingerprint(dict(a, step=a["step"].to(torch.int32))) != tensors_fingerprint(a)
    assert tensors_fingerprint(dict(a, mask=a["mask"].reshape(3, 1))) != tensors_fingerprint(a)
    renamed = {("x" + k): v for k, v in a.items()}
    assert tensors_fingerprint(renamed) != tensors_fingerprint(a)


def test_non_contiguous_and_shared_tensors_are_saved(tmp_path) -> None:
    base = torch.arange(12, dtype=torch.float32).reshape(3, 4)
    tensors = {"t": base.t(), "same": base, "view": base[1]}
    path = str(tmp_path / "v.safetensors")
    save_checkpoint(path, tensors, {"kind": "test"})
    loaded, _ = load_checkpoint(path)
    assert torch.equal(loaded["t"], base.t()) and torch.equal(loaded["view"], base[1])


def test_damaged_or_foreign_files_are_refused(tmp_path) -> None:
    path = tmp_path / "a.safetensors"
    save_checkpoint(str(path), _tensors(), METADATA)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # flip bits in the last tensor's bytes
    (tmp_path / "flipped.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fingerprint"):
        load_checkpoint(str(tmp_path / "flipped.safetensors"))
    (tmp_path / "cut.safetensors").write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(CheckpointError):
        load_checkpoint(str(tmp_path / "cut.safetensors"))
    (tmp_path / "model.pt").write_bytes(b"PK\x03\x04 a torch.save zip")
    with pytest.raises(CheckpointError):
        load_checkpoint(str(tmp_path / "model.pt"))
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="not an ABAIR checkpoint"):
        read_checkpoint_metadata(str(tmp_path / "plain.safetensors"))


def test_metadata_must_be_json(tmp_path) -> None:
    with pytest.raises(ValueError, match="JSON"):
        save_checkpoint(str(tmp_path / "x.safetensors"), _tensors(), {"bad": object()})
    with pytest.raises(ValueError, match="reserved"):
        save_checkpoint(str(tmp_path / "x.safetensors"), _tensors(), {"_tensors_sha256": "x"})
    assert not (tmp_path / "x.safetensors").exists()


def test_saved_bytes_are_deterministic(tmp_path) -> None:
    save_checkpoint(str(tmp_path / "1.safetensors"), _tensors(), METADATA)
    save_checkpoint(str(tmp_path / "2.safetensors"), _tensors(), dict(reversed(list(METADATA.items()))))
    assert read_bytes(str(tmp_path / "1.safetensors")) == read_bytes(str(tmp_path / "2.safetensors"))
