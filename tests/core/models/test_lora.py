"""LoRA adapters: the identities of STYLE.md's checklist item 6, state dicts, injection errors, freezing."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from abair_core.config import PROJECT_ROOT, load_config
from abair_core.models.backbone import RestormerBackbone, build_backbone, count_parameters
from abair_core.models.config import load_model_config
from abair_core.models.lora import (
    AdapterConfig,
    LoRAConv2d,
    adapter_names,
    adapter_parameters,
    adapter_state_dict,
    add_adapter,
    blend,
    freeze_all_but,
    inject_adapters,
    load_adapter_state_dict,
    lora_modules,
    merge_adapters,
    remove_adapter,
    unmerge_adapters,
)

NAMES = ["rain", "haze", "noise"]
TOL = {"rtol": 1e-5, "atol": 1e-5}


def _randomize(model: nn.Module, name: str, seed: int) -> None:
    """Give adapter ``name`` a non-zero B (as if trained) so that it changes the output."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for wrapper in lora_modules(model).values():
            b = wrapper.lora_b[name].weight
            b.copy_(0.05 * torch.randn(b.shape, generator=gen))


def _model(names: list[str] = NAMES, config: AdapterConfig | None = None) -> RestormerBackbone:
    torch.manual_seed(0)
    model = build_backbone(load_model_config("tiny")).eval()
    inject_adapters(model, config or AdapterConfig())
    for i, name in enumerate(names):
        add_adapter(model, name)
        _randomize(model, name, seed=10 + i)
    return model


@pytest.fixture()
def model() -> RestormerBackbone:
    return _model()


def _x(n: int = 2, seed: int = 0) -> torch.Tensor:
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(seed))


def test_default_yaml_is_the_default_config() -> None:
    config = load_config(PROJECT_ROOT / "configs/adapters/default.yaml", AdapterConfig)
    assert config == AdapterConfig()
    assert config.scaling == 1.0


def test_injection_wraps_only_the_dense_1x1_targets(model: RestormerBackbone) -> None:
    wrappers = lora_modules(model)
    suffixes = {name.rsplit(".", 1)[-1] for name in wrappers}
    assert suffixes == {"qkv", "project_in", "project_out"}
    assert all(w.base.kernel_size == (1, 1) and w.base.groups == 1 for w in wrappers.values())
    assert adapter_names(model) == NAMES
    config = load_model_config("tiny")  # encoder + latent, decoder levels 3-1, refinement; 4 targets each
    blocks = sum(config.num_blocks) + sum(config.num_blocks[:3]) + config.num_refinement_blocks
    assert len(wrappers) == 4 * blocks


def test_fresh_adapter_is_a_no_op() -> None:
    torch.manual_seed(0)
    model = build_backbone(load_model_config("tiny")).eval()
    x = _x()
    with torch.no_grad():
        before = model(x)
        inject_adapters(model, AdapterConfig())
        add_adapter(model, "rain")
        after_plain = model(x)
        with blend(model, ["rain"], torch.ones(2, 1)):
            after_blend = model(x)
    torch.testing.assert_close(after_plain, before, rtol=0, atol=0)
    torch.testing.assert_close(after_blend, before, rtol=0, atol=0)


def test_forward_without_blend_is_the_base_model(model: RestormerBackbone) -> None:
    x = _x()
    with torch.no_grad():
        base = model(x)
        with blend(model, ["rain"], [1.0]):
            adapted = model(x)
        after = model(x)
    assert (adapted - base).abs().max() > 1e-3  # the randomized adapter does something
    torch.testing.assert_close(after, base, rtol=0, atol=0)


def test_merged_equals_unmerged_and_unmerge_is_bit_identical(model: RestormerBackbone) -> None:
    x = _x()
    weights = torch.tensor([0.2, 0.5, 0.3])
    saved = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        with blend(model, NAMES, weights):
            blended = model(x)
        merge_adapters(model, NAMES, weights)
        assert all(w.merged for w in lora_modules(model).values())
        merged = model(x)
        unmerge_adapters(model)
    torch.testing.assert_close(merged, blended, **TOL)
    for key, value in model.state_dict().items():
        assert torch.equal(value, saved[key]), key


def test_one_hot_blend_equals_that_adapter_alone(model: RestormerBackbone) -> None:
    x = _x()
    with torch.no_grad():
        with blend(model, NAMES, torch.tensor([[0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])):
            one_hot = model(x)
        with blend(model, ["haze"], torch.ones(2, 1)):
            single = model(x)
    torch.testing.assert_close(one_hot, single, **TOL)


def test_per_sample_blend_equals_per_sample_merge(model: RestormerBackbone) -> None:
    x = _x(3)
    p = torch.tensor([[1.0, 0.0, 0.0], [0.3, 0.3, 0.4], [0.0, 0.1, 0.9]])
    with torch.no_grad():
        with blend(model, NAMES, p):
            batch = model(x)
        for i in range(3):
            merge_adapters(model, NAMES, p[i])
            try:
                alone = model(x[i : i + 1])
            finally:
                unmerge_adapters(model)
            torch.testing.assert_close(batch[i : i + 1], alone, **TOL)


def test_blend_is_differentiable_in_p(model: RestormerBackbone) -> None:
    p = torch.full((2, 3), 1 / 3, requires_grad=True)
    with blend(model, NAMES, p):
        model(_x()).mean().backward()
    assert p.grad is not None and p.grad.abs().sum() > 0


def test_blend_clears_on_error(model: RestormerBackbone) -> None:
    with pytest.raises(RuntimeError, match="boom"), blend(model, NAMES, [1.0, 0.0, 0.0]):
        raise RuntimeError("boom")
    assert all(w._blend_names is None and w._blend_p is None for w in lora_modules(model).values())


def test_blend_validates_names_and_shapes(model: RestormerBackbone) -> None:
    with pytest.raises(KeyError, match="snow"), blend(model, ["snow"], [1.0]):
        pass
    with pytest.raises(ValueError, match=r"\(N, 3\)"), blend(model, NAMES, [1.0, 0.0]):
        pass
    with pytest.raises(ValueError, match="rows for a batch"), blend(model, NAMES, torch.ones(3, 3)):
        model(_x(2))


def test_only_the_adapter_is_trainable_in_phase_two() -> None:
    model = _model(["rain", "haze"])
    config = AdapterConfig()
    trainable = freeze_all_but(model, adapter_parameters(model, "rain"))
    expected = sum(
        config.rank * w.base.in_channels + w.base.out_channels * config.rank
        for w in lora_modules(model).values()
    )
    assert trainable == expected == count_parameters(model, trainable_only=True)
    with blend(model, ["rain"], [1.0]):
        model(_x()).mean().backward()
    for name, param in model.named_parameters():
        has_grad = param.grad is not None and bool(param.grad.abs().sum() > 0)
        assert has_grad == (".lora_a.rain." in name or ".lora_b.rain." in name), name


def test_adapter_state_dict_round_trip_under_another_name(model: RestormerBackbone) -> None:
    tensors = adapter_state_dict(model, "noise")
    assert all(k.endswith((".lora_a", ".lora_b")) and "noise" not in k for k in tensors)
    assert len(tensors) == 2 * len(lora_modules(model))
    other = _model(["rain"])
    load_adapter_state_dict(other, "noise", tensors)
    assert adapter_names(other) == ["rain", "noise"]
    x = _x()
    with torch.no_grad():
        with blend(model, ["noise"], [1.0]):
            want = model(x)
        with blend(other, ["noise"], [1.0]):
            got = other(x)
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    assert sorted(adapter_state_dict(other, "noise")) == sorted(tensors)


def test_load_adapter_state_dict_refuses_mismatches(model: RestormerBackbone) -> None:
    tensors = adapter_state_dict(model, "rain")
    missing = dict(tensors)
    missing.pop(next(iter(missing)))
    with pytest.raises(KeyError, match="missing"):
        load_adapter_state_dict(model, "new", missing)
    wrong = {k: (v[:2] if k.endswith("lora_a") else v) for k, v in tensors.items()}
    with pytest.raises(ValueError, match="shape"):
        load_adapter_state_dict(model, "new", wrong)
    assert adapter_names(model) == NAMES  # nothing was added by the refused loads


def test_remove_adapter(model: RestormerBackbone) -> None:
    remove_adapter(model, "haze")
    assert adapter_names(model) == ["rain", "noise"]
    with pytest.raises(KeyError):
        remove_adapter(model, "haze")
    merge_adapters(model, ["rain"], [1.0])
    with pytest.raises(RuntimeError, match="merged"):
        remove_adapter(model, "rain")
    unmerge_adapters(model)


def test_merge_twice_and_blend_while_merged_are_refused(model: RestormerBackbone) -> None:
    merge_adapters(model, ["rain"])
    with pytest.raises(RuntimeError, match="already merged"):
        merge_adapters(model, ["haze"])
    with pytest.raises(RuntimeError, match="merged"), blend(model, ["haze"], [1.0]):
        model(_x(1))
    unmerge_adapters(model)


def test_injection_errors_name_what_was_seen() -> None:
    model = build_backbone(load_model_config("tiny"))
    with pytest.raises(ValueError, match=r"no module matched.*conv names seen: .*'qkv'"):
        inject_adapters(model, AdapterConfig(targets=["to_q"]))
    with pytest.raises(ValueError, match="depthwise"):
        inject_adapters(model, AdapterConfig(targets=["qkv_dwconv"]))
    with pytest.raises(TypeError, match="nn.Conv2d only"):
        inject_adapters(model, AdapterConfig(targets=["attn"]))
    inject_adapters(model, AdapterConfig())
    with pytest.raises(ValueError, match="already has LoRA"):
        inject_adapters(model, AdapterConfig())


def test_exclude_and_dense_3x3_targets() -> None:
    model = build_backbone(load_model_config("tiny"))
    chosen = inject_adapters(model, AdapterConfig(targets=["qkv", "conv"], exclude=["refinement", "up2_1"]))
    assert not any(n.startswith(("refinement.", "up2_1.")) for n in chosen)
    assert "down1_2.conv" in chosen and "encoder_level1.0.attn.qkv" in chosen
    add_adapter(model, "blur")
    _randomize(model, "blur", 3)
    x = _x()
    with torch.no_grad():
        with blend(model, ["blur"], [0.7]):
            blended = model(x)
        merge_adapters(model, ["blur"], [0.7])
        merged = model(x)
        unmerge_adapters(model)
    torch.testing.assert_close(merged, blended, **TOL)


def test_wrapper_refuses_grouped_convs() -> None:
    with pytest.raises(ValueError, match="groups=4"):
        LoRAConv2d(nn.Conv2d(4, 4, 3, groups=4), AdapterConfig())


def test_freeze_all_but_rejects_foreign_parameters(model: RestormerBackbone) -> None:
    with pytest.raises(ValueError, match="not in the model"):
        freeze_all_but(model, [nn.Parameter(torch.zeros(1))])


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ValueError):
        AdapterConfig(rank=0)
    with pytest.raises(ValueError):
        AdapterConfig(ranks=4)
