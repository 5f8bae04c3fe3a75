"""Registry: names, lookup errors, building, plugins (dotted path, entry points) and plugin validation."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from abair_core.config import ConfigError
from abair_core.degradations import (
    ADDED_DEGRADATIONS,
    CLEAN,
    KNOWN_DEGRADATIONS,
    Degradation,
    DegradationParams,
    DegradationResult,
    FloatRange,
    build_degradation,
    get_degradation_class,
    list_degradations,
    range_field,
    register_degradation,
    unregister_degradation,
    validate_plugin,
)


class Vignette(Degradation):
    """A well-behaved plugin: darkens the corners by ``strength``."""

    class Params(DegradationParams):
        strength: FloatRange = range_field((0.2, 0.6), lo=0.0, hi=1.0)

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        strength = (
            float(rng.uniform(*self.params.strength))
            if isinstance(self.params.strength, tuple)
            else (self.params.strength)
        )
        h, w = image.shape[:2]
        yy, xx = np.mgrid[-1 : 1 : h * 1j, -1 : 1 : w * 1j]
        return image * (1.0 - strength * (xx**2 + yy**2) / 2.0)[..., None], {"strength": strength}


class Unseeded(Degradation):
    """Bad plugin: draws from an unseeded generator."""

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        return image + np.random.default_rng().normal(0, 0.05, image.shape), {}


class Cropper(Degradation):
    """Bad plugin: overrides apply and changes the shape."""

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        return image[1:], {}

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> DegradationResult:
        return DegradationResult(np.ascontiguousarray(image[1:], dtype=np.float32), {})


class Overflow(Degradation):
    """Bad plugin: overrides apply and leaves [0, 1]."""

    def _degrade(self, image: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, dict[str, Any]]:
        return image, {}

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> DegradationResult:
        return DegradationResult((image * 2.0).astype(np.float32), {})


def test_constants_and_listing() -> None:
    assert KNOWN_DEGRADATIONS == ("rain", "haze", "noise", "blur", "low_light")
    assert ADDED_DEGRADATIONS == ("jpeg", "bit_depth", "snow")
    assert CLEAN == "clean"
    names = list_degradations()
    assert names == sorted(names) and set(KNOWN_DEGRADATIONS + ADDED_DEGRADATIONS) <= set(names)
    for name in names:
        assert get_degradation_class(name).registered_name == name


def test_unknown_type_is_a_key_error_listing_known_names() -> None:
    with pytest.raises(KeyError) as info:
        get_degradation_class("fog")
    assert "'fog'" in str(info.value) and "rain" in str(info.value) and "low_light" in str(info.value)
    with pytest.raises(KeyError, match="known: "):
        build_degradation({"type": "Rain"})


def test_registration_rules() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_degradation("rain")(Vignette)
    with pytest.raises(ValueError, match="snake_case"):
        register_degradation("MyRain")
    with pytest.raises(ValueError, match="reserved"):
        register_degradation(CLEAN)
    with pytest.raises(TypeError, match="Degradation subclass"):
        register_degradation("not_a_degradation")(dict)  # type: ignore[type-var]
    with pytest.raises(KeyError):
        unregister_degradation("never_registered")


def test_register_and_unregister_a_plugin(photo: np.ndarray) -> None:
    cls = type("Vignette2", (Vignette,), {"registered_name": None})
    register_degradation("vignette_test")(cls)
    try:
        d = build_degradation({"type": "vignette_test", "strength": 0.5})
        assert d.name == "vignette_test" and "vignette_test" in list_degradations()
        assert d.apply(photo, np.random.default_rng(0)).params == {"strength": 0.5}
    finally:
        unregister_degradation("vignette_test")
    assert "vignette_test" not in list_degradations()


def test_build_validates_params_naming_the_key() -> None:
    with pytest.raises(ConfigError, match="key 'sigma'.*outside the valid range"):
        build_degradation({"type": "noise", "sigma": -1})
    with pytest.raises(ConfigError, match="key 'sigmaa'.*allowed: sigma"):
        build_degradation({"type": "noise", "sigmaa": 3})
    with pytest.raises(ConfigError, match="missing"):
        build_degradation({"sigma": 3})


def test_dotted_plugin_from_this_test_module(photo: np.ndarray) -> None:
    d = build_degradation({"type": f"{__name__}:Vignette", "strength": 0.4})
    assert isinstance(d, Vignette) and d.name == f"{__name__}:Vignette"
    out = d.apply(photo, np.random.default_rng(0))
    assert out.params == {"strength": 0.4} and out.image[0, 0].sum() < photo[0, 0].sum()
    with pytest.raises(ConfigError, match="key 'strength'"):
        build_degradation({"type": f"{__name__}:Vignette", "strength": 3})
    with pytest.raises(TypeError, match="subclass of Degradation"):
        get_degradation_class(f"{__name__}:test_constants_and_listing")
    with pytest.raises(KeyError, match="cannot import"):
        get_degradation_class("no_such_module_xyz:Thing")
    with pytest.raises(KeyError, match="no attribute"):
        get_degradation_class(f"{__name__}:Missing")


def test_dotted_plugin_from_a_plugin_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photo: np.ndarray
) -> None:
    (tmp_path / "abair_dotted_plugin.py").write_text(
        textwrap.dedent(
            """
            import numpy as np
            from abair_core.degradations import Degradation

            class Invert(Degradation):
                registered_name = "invert"

                def _degrade(self, image, rng):
                    return 1.0 - image, {}
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    d = build_degradation({"type": "abair_dotted_plugin:Invert"})
    assert d.name == "invert"
    np.testing.assert_allclose(d.apply(photo, np.random.default_rng(0)).image, 1.0 - photo, atol=1e-6)
    sys.modules.pop("abair_dotted_plugin", None)


def test_entry_point_plugin_is_loaded_on_first_unknown_lookup(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, photo: np.ndarray
) -> None:
    (tmp_path / "abair_ep_plugin.py").write_text(
        textwrap.dedent(
            """
            from abair_core.degradations import Degradation

            class Darken(Degradation):
                def _degrade(self, image, rng):
                    return image * 0.5, {}
            """
        )
    )
    dist = tmp_path / "abair_ep_plugin-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: abair-ep-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[abair.degradations]\ndarken_test = abair_ep_plugin:Darken\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    try:
        cls = get_degradation_class("darken_test")
        assert cls.registered_name == "darken_test" and "darken_test" in list_degradations()
        d = build_degradation({"type": "darken_test"})
        np.testing.assert_allclose(d.apply(photo, np.random.default_rng(0)).image, photo * 0.5, atol=1e-6)
    finally:
        unregister_degradation("darken_test")
        sys.modules.pop("abair_ep_plugin", None)


def test_broken_entry_point_is_reported_in_the_key_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "abair_broken-0.1.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: abair-broken\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[abair.degradations]\nbroken_test = no_such_module_abc:Thing\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(KeyError, match="plugin failed to load: ModuleNotFoundError"):
        get_degradation_class("broken_test")
    assert "rain" in list_degradations()


@pytest.mark.parametrize("name", list_degradations())
def test_every_builtin_passes_validate_plugin(name: str, cat: np.ndarray) -> None:
    cls = get_degradation_class(name)
    assert isinstance(validate_plugin(cls, rng_seed=3, image=cat), cls)


def test_validate_plugin_accepts_a_good_plugin(photo: np.ndarray) -> None:
    assert isinstance(validate_plugin(Vignette, 0, image=photo), Vignette)
    assert isinstance(validate_plugin(Vignette({"strength": 0.3})), Vignette)  # built-in test card


def test_validate_plugin_refuses_a_non_deterministic_plugin(photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match="not deterministic.*draw all randomness from the rng"):
        validate_plugin(Unseeded, 0, image=photo)


def test_validate_plugin_refuses_shape_changes(photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"must keep shape \(64, 80, 3\)"):
        validate_plugin(Cropper, 0, image=photo)

    class PlainCropper(Degradation):  # base apply catches it too
        def _degrade(self, image, rng):  # type: ignore[no-untyped-def]
            return image[:, 1:], {}

    with pytest.raises(ValueError, match="changed the shape"):
        validate_plugin(PlainCropper, 0, image=photo)


def test_validate_plugin_refuses_values_outside_unit_range_and_non_degradations(photo: np.ndarray) -> None:
    with pytest.raises(ValueError, match=r"leave \[0, 1\]"):
        validate_plugin(Overflow, 0, image=photo)
    with pytest.raises(ValueError, match="not a subclass of Degradation"):
        validate_plugin(dict, 0)  # type: ignore[arg-type]

    class NeedsArgs(Degradation):
        class Params(DegradationParams):
            level: float

        def _degrade(self, image, rng):  # type: ignore[no-untyped-def]
            return image, {}

    with pytest.raises(ValueError, match="default params"):
        validate_plugin(NeedsArgs, 0)
