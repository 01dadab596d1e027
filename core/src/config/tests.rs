//! Unit tests of declarations: naming rules, normalisation, shared storage.

use super::*;

#[test]
fn names_follow_the_rule() {
    for ok in ["a", "0", "data-processor", "x.y_z-1", &"a".repeat(128)] {
        validate_name("module name", ok).unwrap();
    }
    for bad in [
        "",
        "A",
        "-a",
        ".a",
        "a b",
        "é",
        "aé",
        "a/b",
        &"a".repeat(129),
    ] {
        let err = validate_name("module name", bad).unwrap_err();
        assert!(matches!(err, Error::InvalidName { .. }), "{bad:?}");
    }
    let msg = validate_name("capability", "Upper")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("capability") && msg.contains("'U'") && msg.contains("position 0"),
        "{msg}"
    );
    let msg = validate_name("module name", "ab\u{e9}c")
        .unwrap_err()
        .to_string();
    assert!(
        msg.contains("'\u{e9}'") && msg.contains("position 2"),
        "{msg}"
    );
}

#[test]
fn module_type_names_round_trip() {
    for t in ModuleType::named() {
        assert_eq!(t.name().parse::<ModuleType>().unwrap(), t);
    }
    assert_eq!(ModuleType::custom("Security"), ModuleType::Security);
    assert_eq!(
        ModuleType::custom("Video"),
        ModuleType::Custom("Video".into())
    );
    assert!("".parse::<ModuleType>().is_err());
}

#[test]
fn validate_normalises_and_reports() {
    let mut c = ModuleConfig::new()
        .with_name("m")
        .add_capability("b")
        .add_capability("a")
        .add_capability("b")
        .with_dependency("d", "^1");
    let v = c.validate().unwrap();
    assert_eq!(v, semver::Version::new(0, 1, 0));
    assert_eq!(c.requirements().len(), 1);
    assert_eq!(c.capabilities().collect::<Vec<_>>(), ["a", "b"]);

    let mut bad = ModuleConfig::new().with_name("m").with_version("1.x");
    assert!(matches!(bad.validate(), Err(Error::InvalidVersion { .. })));
    let mut bad = ModuleConfig::new()
        .with_name("m")
        .with_dependency("d", "~>1");
    assert!(matches!(
        bad.validate(),
        Err(Error::InvalidRequirement { .. })
    ));
    let mut bad = ModuleConfig::new();
    assert!(matches!(bad.validate(), Err(Error::InvalidConfig { .. })));
    let mut bad = ModuleConfig::new().with_name("m").with_dependency("m", "*");
    assert!(matches!(bad.validate(), Err(Error::InvalidConfig { .. })));
}

#[test]
fn label_only_metadata_is_shared_until_changed() {
    let a = ModuleConfig::new().with_implementation(Implementation::Native);
    let b = ModuleConfig::new().with_implementation(Implementation::Native);
    assert!(std::ptr::eq(a.metadata(), b.metadata()), "one shared map");
    assert_eq!(a.metadata()["implementation"], "native");
    // Changing one gives it its own map and leaves the other alone.
    let a = a.with_metadata("tier", "gold");
    assert_eq!(a.metadata().len(), 2);
    assert_eq!(b.metadata().len(), 1);
    let c = ModuleConfig::new().with_implementation(Implementation::Native);
    assert_eq!(c.metadata().len(), 1, "the shared map was not changed");
    // User metadata set first is kept beside the label.
    let d = ModuleConfig::new()
        .with_metadata("origin", "test")
        .with_implementation(Implementation::python(None));
    assert_eq!(d.metadata()["origin"], "test");
    assert_eq!(d.metadata()["implementation"], "python");
    // A custom type and dependencies live in the rarely used part, and
    // validation drops it when it is empty again.
    let mut e = ModuleConfig::new()
        .with_name("e")
        .with_type(ModuleType::custom("Video"))
        .with_type(ModuleType::Network);
    e.validate().unwrap();
    assert_eq!(e.module_type(), &ModuleType::Network);
    assert!(e.extras.is_none(), "nothing left to keep");
}

#[test]
fn name_and_version_share_one_text() {
    let c = ModuleConfig::new().with_version("2.0.0").with_name("late");
    assert_eq!((c.name(), c.version()), ("late", "2.0.0"));
    let c = c.with_name("renamed").with_version("3.1.0");
    assert_eq!((c.name(), c.version()), ("renamed", "3.1.0"));
    assert_eq!(ModuleConfig::new().with_name("d").version(), "0.1.0");
    // An empty version is set, and wrong, not the default.
    let mut empty = ModuleConfig::new().with_name("e").with_version("");
    assert!(matches!(
        empty.validate(),
        Err(Error::InvalidVersion { .. })
    ));
    // Surrounding space is trimmed on registration, the name kept.
    let mut spaced = ModuleConfig::new().with_name("s").with_version(" 1.2.3 ");
    spaced.validate().unwrap();
    assert_eq!((spaced.name(), spaced.version()), ("s", "1.2.3"));
    // A huge name is an error, not a crash; names are cut past 64 KiB.
    let huge = "\u{e9}".repeat(100_000);
    let mut c = ModuleConfig::new().with_name(huge).with_version("1.0.0");
    assert!(c.name().len() <= 64 * 1024 && c.name().chars().all(|ch| ch == '\u{e9}'));
    assert_eq!(c.version(), "1.0.0");
    assert!(matches!(c.validate(), Err(Error::InvalidName { .. })));
}

#[test]
fn plugin_config_is_a_plugin() {
    let p = PluginConfig::new().with_name("p").add_capability("x");
    assert_eq!(ModuleConfig::from(p).kind(), ModuleKind::Plugin);
}
