"""Declarations: builders, keyword form, types."""

from __future__ import annotations

import pytest

import module_registry as mr
from module_registry import ModuleConfig, ModuleType, PluginConfig, PluginType


def test_builder_methods_change_the_object_and_return_it() -> None:
    config = ModuleConfig()
    same = (
        config.with_name("data-processor")
        .with_version("1.0.0")
        .with_type(ModuleType.DataProcessor)
        .add_capability("processing")
        .with_metadata("k", "v")
        .with_dependency("base", "^1.2")
    )
    assert same is config
    assert config.name == "data-processor"
    assert config.version == "1.0.0"
    assert config.type == ModuleType.DataProcessor
    assert config.capabilities == ["processing"]
    assert config.metadata == {"k": "v"}
    assert config.dependencies == {"base": "^1.2"}
    assert config.kind == "module"


def test_seed_loop_form_works_with_statements() -> None:
    config = ModuleConfig().with_name("auth-module").with_version("1.0.0").with_type(ModuleType.Security)
    for capability in ["authentication", "authorization"]:
        config.add_capability(capability)
    assert config.capabilities == ["authentication", "authorization"]


def test_keyword_form_and_defaults() -> None:
    config = ModuleConfig(
        name="m",
        version="2.0.0",
        type=ModuleType.Compute,
        capabilities=["a", "b"],
        metadata={"x": "y"},
        dependencies={"d": ">=1"},
    )
    assert (config.name, config.version, config.type) == ("m", "2.0.0", ModuleType.Compute)
    default = ModuleConfig()
    assert default.name is None
    assert default.version == "0.1.0"
    assert default.type == ModuleType.DataProcessor
    assert "ModuleConfig(" in repr(config) and '"m"' in repr(config)


def test_module_types() -> None:
    names = ["DataProcessor", "Security", "Network", "Storage", "Compute", "Analytics", "Monitoring", "Integration"]
    for n in names:
        t = getattr(ModuleType, n)
        assert t.name == n
        assert ModuleType.custom(n) == t
        assert not t.is_custom
    video = ModuleType.custom("Video")
    assert video.is_custom and video.name == "Video"
    assert repr(video) == 'ModuleType.custom("Video")'
    assert repr(ModuleType.Security) == "ModuleType.Security"
    assert len({ModuleType.Security, ModuleType.custom("Security"), video}) == 2
    assert PluginType is ModuleType
    with pytest.raises(mr.ValidationError):
        ModuleType.custom("")


def test_plugin_config_is_a_plugin() -> None:
    p = PluginConfig(name="p").with_type(PluginType.Security)
    assert p.kind == "plugin"
    assert p.type == ModuleType.Security


@pytest.mark.parametrize(
    ("call", "exc"),
    [
        (lambda: ModuleConfig(capabilities="abc"), TypeError),  # type: ignore[arg-type]
        (lambda: ModuleConfig(capabilities=["ok", 3]), TypeError),  # type: ignore[list-item]
        (lambda: ModuleConfig(metadata={"k": 1}), TypeError),  # type: ignore[dict-item]
        (lambda: ModuleConfig(metadata=["k"]), TypeError),  # type: ignore[arg-type]
        (lambda: ModuleConfig(dependencies={"d": 1}), TypeError),  # type: ignore[dict-item]
        (lambda: ModuleConfig(type=5), TypeError),  # type: ignore[arg-type]
        (lambda: ModuleConfig(version=1), TypeError),  # type: ignore[arg-type]
        (lambda: ModuleConfig().with_name(None), TypeError),  # type: ignore[arg-type]
        (lambda: ModuleConfig().with_type([]), TypeError),  # type: ignore[arg-type]
    ],
)
def test_wrong_types_raise_type_error(call, exc) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(exc):
        call()


def test_type_may_be_given_by_name() -> None:
    assert ModuleConfig(type="Storage").type == ModuleType.Storage
    assert ModuleConfig().with_type("Video").type == ModuleType.custom("Video")
