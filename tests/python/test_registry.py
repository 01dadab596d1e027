"""Registering, looking up, unregistering; the seed scenarios in Python."""

from __future__ import annotations

import pytest

import module_registry as mr
from module_registry import (
    CapabilityQuery,
    ModuleConfig,
    ModuleRegistry,
    ModuleType,
    PluginConfig,
    PluginDiscoveryQuery,
    PluginType,
    ServiceDiscoveryQuery,
)


def test_register_returns_info_with_readable_attributes(registry: ModuleRegistry) -> None:
    info = registry.register(
        ModuleConfig(
            name="m",
            version="1.2.3",
            type=ModuleType.Compute,
            capabilities=["b", "a", "b"],
            metadata={"k": "v"},
            dependencies={"base": "^1"},
        )
    )
    assert info.name == "m"
    assert info.version == "1.2.3"
    assert info.type == ModuleType.Compute
    assert info.kind == "module"
    assert info.capabilities == frozenset({"a", "b"})
    assert info.metadata == {"k": "v"}
    assert info.dependencies == {"base": "^1"}
    assert info.has_implementation is False
    assert "name=\"m\"" in repr(info) and "1.2.3" in repr(info)
    assert registry.get("m") == info
    assert len({info, registry.get("m")}) == 1


def test_len_contains_list_and_versions(registry: ModuleRegistry) -> None:
    for v in ["1.0.0", "2.0.0", "1.5.0"]:
        registry.register(ModuleConfig(name="m", version=v))
    registry.register(ModuleConfig(name="a"))
    assert len(registry) == 4
    assert "m" in registry and "zzz" not in registry and 3 not in registry
    assert [(i.name, i.version) for i in registry.list()] == [
        ("a", "0.1.0"),
        ("m", "2.0.0"),
        ("m", "1.5.0"),
        ("m", "1.0.0"),
    ]
    assert registry.get("m").version == "2.0.0"  # type: ignore[union-attr]
    assert registry.get("m", "^1").version == "1.5.0"  # type: ignore[union-attr]
    assert registry.get("m", "^9") is None
    assert registry.get("nope") is None
    assert [i.version for i in registry.versions("m")] == ["2.0.0", "1.5.0", "1.0.0"]


def test_unregister(registry: ModuleRegistry) -> None:
    registry.register(ModuleConfig(name="m", version="1.0.0"))
    registry.register(ModuleConfig(name="m", version="2.0.0"))
    removed = registry.unregister("m", "2.0.0")
    assert [i.version for i in removed] == ["2.0.0"]
    assert registry.get("m").version == "1.0.0"  # type: ignore[union-attr]
    with pytest.raises(mr.UnknownModuleError):
        registry.unregister("m", "3.0.0")
    registry.register(ModuleConfig(name="m", version="3.0.0"))
    assert len(registry.unregister("m")) == 2
    assert len(registry) == 0


def test_duplicates_and_replace(registry: ModuleRegistry) -> None:
    registry.register(ModuleConfig(name="m"), lambda v: 1)
    with pytest.raises(mr.AlreadyRegisteredError, match="m@0.1.0"):
        registry.register(ModuleConfig(name="m"), lambda v: 2)
    assert registry.create("m").process(None) == 1
    registry.replace(ModuleConfig(name="m"), lambda v: 2)
    assert registry.create("m").process(None) == 2
    assert len(registry) == 1


@pytest.mark.parametrize(
    "config",
    [
        ModuleConfig(),
        ModuleConfig(name="Bad"),
        ModuleConfig(name="bad name"),
        ModuleConfig(name="m", version="1.0"),
        ModuleConfig(name="m", capabilities=["Not Valid"]),
        ModuleConfig(name="m", dependencies={"d": "~~1"}),
        ModuleConfig(name="m", dependencies={"m": "^1"}),
        ModuleConfig(name="m", metadata={"": "x"}),
    ],
)
def test_bad_declarations_raise_validation_error_and_change_nothing(registry: ModuleRegistry, config: ModuleConfig) -> None:
    registry.register(ModuleConfig(name="keep"))
    before = registry.list()
    with pytest.raises(mr.ValidationError):
        registry.register(config)
    assert registry.list() == before


def test_config_argument_must_be_a_config(registry: ModuleRegistry) -> None:
    with pytest.raises(TypeError, match="ModuleConfig"):
        registry.register({"name": "m"})  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="handler"):
        registry.register(ModuleConfig(name="m"), 42)
    assert len(registry) == 0


def test_plugins_live_in_their_own_namespace(registry: ModuleRegistry) -> None:
    registry.register(ModuleConfig(name="x", capabilities=["m"]))
    registry.register_plugin(PluginConfig(name="x", capabilities=["p"]), lambda v: v)
    assert registry.get("x").kind == "module"  # type: ignore[union-attr]
    plugin = registry.get_plugin("x")
    assert plugin is not None and plugin.kind == "plugin" and plugin.capabilities == {"p"}
    assert registry.create_plugin("x").process(5) == 5
    registry.unregister_plugin("x")
    assert registry.get_plugin("x") is None and registry.get("x") is not None


def test_discovery_forms(registry: ModuleRegistry) -> None:
    registry.register(ModuleConfig(name="markdown", version="1.0.0", capabilities=["markdown", "text-processing"]))
    registry.register(ModuleConfig(name="markdown", version="2.0.0", capabilities=["markdown", "text-processing", "html"]))
    registry.register(ModuleConfig(name="pdf", capabilities=["pdf", "text-extraction"], metadata={"tier": "gold"}))
    registry.register(ModuleConfig(name="img", type=ModuleType.Compute, capabilities=["image"]))
    registry.register_plugin(PluginConfig(name="spell", capabilities=["text-processing"]))

    def names(found: list[mr.ModuleInfo]) -> list[str]:
        return [f"{i.name}@{i.version}" for i in found]

    q = CapabilityQuery().with_required_capabilities(["text-processing"])
    assert names(registry.discover_capabilities(q)) == ["markdown@2.0.0", "markdown@1.0.0", "spell@0.1.0"]
    q = CapabilityQuery().with_required_capabilities(["text-processing"]).with_excluded_capabilities(["html"])
    assert names(registry.discover_capabilities(q)) == ["markdown@1.0.0", "spell@0.1.0"]
    q = CapabilityQuery().with_any_capabilities(["pdf", "image"])
    assert names(registry.discover_capabilities(q)) == ["img@0.1.0", "pdf@0.1.0"]
    q = CapabilityQuery().with_type(ModuleType.Compute)
    assert names(registry.discover_capabilities(q)) == ["img@0.1.0"]
    q = CapabilityQuery().with_required_capabilities(["markdown"]).with_version("^1")
    assert names(registry.discover_capabilities(q)) == ["markdown@1.0.0"]
    q = CapabilityQuery().with_metadata("tier", "gold")
    assert names(registry.discover_capabilities(q)) == ["pdf@0.1.0"]
    assert names(registry.discover_services(ServiceDiscoveryQuery().with_required_capabilities(["text-processing"]))) == [
        "markdown@2.0.0",
        "markdown@1.0.0",
    ]
    assert names(registry.discover_plugins(PluginDiscoveryQuery().with_required_capabilities(["text-processing"]))) == [
        "spell@0.1.0"
    ]
    assert names(registry.discover(capabilities=["markdown"], exclude=["html"])) == ["markdown@1.0.0"]
    assert names(registry.discover(any=["pdf"], metadata={"tier": "gold"})) == ["pdf@0.1.0"]
    assert names(registry.discover(type="Compute")) == ["img@0.1.0"]
    assert names(registry.discover(capabilities=["text-processing"], kind="plugin")) == ["spell@0.1.0"]
    assert names(registry.discover(version=">=2")) == ["markdown@2.0.0"]

    with pytest.raises(mr.ValidationError):
        registry.discover(capabilities=["Bad Cap"])
    with pytest.raises(mr.ValidationError):
        registry.discover(version="nonsense")
    with pytest.raises(TypeError):
        registry.discover(capabilities="markdown")  # type: ignore[arg-type]
    with pytest.raises(mr.ValidationError):
        registry.discover(kind="thing")


def test_the_query_classes_share_one_implementation(registry: ModuleRegistry) -> None:
    registry.register(ModuleConfig(name="svc", capabilities=["x"], metadata={"service_type": "api"}))
    registry.register_plugin(PluginConfig(name="plug", capabilities=["x"]))
    services = ServiceDiscoveryQuery()
    plugins = PluginDiscoveryQuery()
    assert isinstance(services, CapabilityQuery) and isinstance(plugins, CapabilityQuery)
    # Builders inherited from CapabilityQuery return the very same subclass object.
    assert services.with_required_capabilities(["x"]) is services
    assert services.with_service_type("api") is services
    assert type(plugins.with_metadata("k", "v")) is PluginDiscoveryQuery
    assert [i.name for i in registry.discover_services(services)] == ["svc"]
    assert [i.name for i in registry.discover_plugins(PluginDiscoveryQuery().with_required_capabilities(["x"]))] == [
        "plug"
    ]
    # The general form takes any of them; the seed's named forms keep their query type.
    assert [i.name for i in registry.discover_capabilities(services)] == ["svc"]
    with pytest.raises(TypeError):
        registry.discover_services(CapabilityQuery())  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        registry.discover_plugins(services)  # type: ignore[arg-type]
    assert repr(services).startswith("ServiceDiscoveryQuery(")


def test_test_helpers_are_not_public() -> None:
    assert not hasattr(mr, "roundtrip")
    assert "roundtrip" not in mr.__all__


def test_one_info_object_per_registration(registry: ModuleRegistry) -> None:
    registered = registry.register(ModuleConfig(name="a", capabilities=["x", "y"]))
    found = registry.discover(["x", "y"])[0]
    assert found == registered
    assert registry.get("a") is found
    assert registry.list()[0] is found
    assert registry.discover_capabilities(mr.CapabilityQuery().with_required_capabilities(["x"]))[0] is found
    # A new registration of the same name and version is a new object.
    registry.replace(ModuleConfig(name="a", capabilities=["x", "y", "z"]))
    again = registry.get("a")
    assert again is not found and again is not None and again.capabilities == {"x", "y", "z"}
    assert found.capabilities == {"x", "y"}, "an old object still describes its registration"
    registry.unregister("a")
    assert registry.get("a") is None and registry.discover(["x"]) == []


def test_info_objects_of_removed_registrations_are_let_go(registry: ModuleRegistry) -> None:
    import gc
    import weakref

    registry.register(ModuleConfig(name="keep"))
    seen = []
    for i in range(300):
        # Each replacement ends the previous registration.
        registry.replace(ModuleConfig(name="churn", capabilities=["tmp"], metadata={"round": str(i)}))
        info = registry.get("churn")
        assert info is not None and info.metadata == {"round": str(i)}
        seen.append(weakref.ref(info))
        del info
    gc.collect()
    alive = sum(ref() is not None for ref in seen)
    assert alive < 100, f"{alive} objects of ended registrations are still kept"
    assert len(registry) == 2


def test_audit_events(registry: ModuleRegistry) -> None:
    registry.register(ModuleConfig(name="m"), lambda v: v)
    registry.create("m")
    with pytest.raises(mr.UnknownModuleError):
        registry.create("ghost")
    events = registry.audit_events()
    assert [(e.operation, e.outcome) for e in events] == [("register", "ok"), ("create", "ok"), ("create", "error")]
    assert events[0].principal == "system"
    assert events[0].module == "m" and events[0].version == "0.1.0"
    assert events[0].time > 1.6e9
    assert "ghost" in (events[2].detail or "")


# ----- the seed's scenarios, in Python --------------------------------------------


def test_seed_web_framework() -> None:
    registry = ModuleRegistry()
    web_modules = [
        ("auth-module", ModuleType.Security, ["authentication", "authorization"]),
        ("user-module", ModuleType.DataProcessor, ["user-management", "profile"]),
        ("content-module", ModuleType.DataProcessor, ["content-management", "publishing"]),
        ("api-module", ModuleType.Network, ["api-gateway", "routing"]),
    ]
    users: dict[str, str] = {}
    handlers = {
        "auth-module": lambda req: users.get(req["user"]) == req["token"],
        "user-module": lambda req: users.setdefault(req["user"], f"tok-{len(req['user'])}"),
        "content-module": lambda req: f"<p>{req['body']}</p>",
        "api-module": lambda req: {"status": 200, "path": req["path"]},
    }
    for name, module_type, capabilities in web_modules:
        config = ModuleConfig().with_name(name).with_version("1.0.0").with_type(module_type)
        for capability in capabilities:
            config.add_capability(capability)
        registry.register(config, handlers[name])

    auth_module = registry.create("auth-module")
    user_module = registry.create("user-module")
    content_module = registry.create("content-module")
    api_module = registry.create("api-module")
    token = user_module.process({"user": "ada"})
    assert auth_module.process({"user": "ada", "token": token}) is True
    assert auth_module.process({"user": "ada", "token": "forged"}) is False
    assert content_module.process({"body": "hi"}) == "<p>hi</p>"
    assert api_module.process({"path": "/x"}) == {"status": 200, "path": "/x"}


def test_seed_content_management() -> None:
    registry = ModuleRegistry()
    content_modules = [
        ("markdown-processor", ["markdown", "text-processing"]),
        ("image-processor", ["image-processing", "resizing", "optimization"]),
        ("video-processor", ["video-processing", "transcoding", "streaming"]),
        ("pdf-processor", ["pdf-processing", "text-extraction", "conversion"]),
    ]
    for name, capabilities in content_modules:
        config = ModuleConfig().with_name(name).with_version("1.0.0").with_type(ModuleType.DataProcessor)
        for capability in capabilities:
            config.add_capability(capability)
        registry.register(config, lambda text, n=name: f"{n}:{text}")
    query = CapabilityQuery().with_required_capabilities(["text-processing"])
    text_processors = registry.discover_capabilities(query)
    assert [p.name for p in text_processors] == ["markdown-processor"]
    assert registry.create(text_processors[0].name).process("x") == "markdown-processor:x"


def test_seed_service_discovery() -> None:
    registry = ModuleRegistry()
    microservices = [
        ("user-service", "User management service", ["user-management", "authentication"]),
        ("order-service", "Order processing service", ["order-management", "payment-processing"]),
        ("inventory-service", "Inventory management service", ["inventory-management", "stock-tracking"]),
        ("notification-service", "Notification service", ["email", "sms", "push-notifications"]),
    ]
    for name, description, capabilities in microservices:
        config = (
            ModuleConfig()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(ModuleType.Network)
            .with_metadata("description", description)
            .with_metadata("service_type", "microservice")
        )
        for capability in capabilities:
            config.add_capability(capability)
        registry.register(config)
    query = ServiceDiscoveryQuery().with_required_capabilities(["user-management"])
    user_services = registry.discover_services(query)
    assert [s.name for s in user_services] == ["user-service"]
    assert user_services[0].metadata["description"] == "User management service"
    assert len(registry.discover_services(ServiceDiscoveryQuery().with_service_type("microservice"))) == 4
    # Declarations only: discoverable, not creatable.
    with pytest.raises(mr.NoImplementationError):
        registry.create("user-service")


def test_seed_orchestration() -> None:
    registry = ModuleRegistry().with_workflow_orchestration(True)
    steps = {
        "order-workflow": lambda data: {"order": data.decode()},
        "payment-workflow": lambda order: {**order, "paid": True},
        "inventory-workflow": lambda order: {**order, "reserved": True},
        "notification-workflow": lambda order: f"order {order['order']} paid={order['paid']} reserved={order['reserved']}",
    }
    for name, fn in steps.items():
        config = (
            ModuleConfig()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(ModuleType.DataProcessor)
            .with_metadata("workflow_type", "orchestration")
        )
        registry.register(config, fn)
    result = registry.orchestrate(list(steps), b"42")
    assert result == "order 42 paid=True reserved=True"
    registry.with_workflow_orchestration(False)
    with pytest.raises(mr.FeatureDisabledError):
        registry.orchestrate(list(steps), b"42")


def test_seed_plugins_and_marketplace() -> None:
    registry = ModuleRegistry()
    plugins = [
        ("data-processor-plugin", "Data processing plugin", ["data-processing", "transformation"]),
        ("encryption-plugin", "Encryption plugin", ["encryption", "decryption", "key-management"]),
    ]
    for name, description, capabilities in plugins:
        config = (
            PluginConfig()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(PluginType.DataProcessor)
            .with_metadata("description", description)
            .with_metadata("plugin_type", "extension")
        )
        for capability in capabilities:
            config.add_capability(capability)
        registry.register_plugin(config, lambda s: s[::-1])
    found = registry.discover_plugins(PluginDiscoveryQuery().with_required_capabilities(["data-processing"]))
    assert [p.name for p in found] == ["data-processor-plugin"]
    assert registry.create_plugin("data-processor-plugin").process("abc") == "cba"

    market = ModuleRegistry().with_plugin_marketplace(True)
    for name, description, license_type in [
        ("premium-data-processor", "Premium data processor", "commercial"),
        ("open-source-encryption", "Open source encryption", "open-source"),
    ]:
        config = (
            PluginConfig()
            .with_name(name)
            .with_version("1.0.0")
            .with_type(PluginType.DataProcessor)
            .with_metadata("description", description)
            .with_metadata("license_type", license_type)
            .with_metadata("marketplace", "true")
        )
        market.register_plugin(config, lambda v: v)
    assert [p.name for p in market.plugin_marketplace()] == ["open-source-encryption", "premium-data-processor"]
    with pytest.raises(mr.ValidationError, match="license_type"):
        market.register_plugin(PluginConfig(name="bad", metadata={"marketplace": "true", "description": "d"}))
    with pytest.raises(mr.FeatureDisabledError):
        ModuleRegistry().plugin_marketplace()
