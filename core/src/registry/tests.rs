//! Unit tests of the store and its indexes, reading their internals.

use std::collections::BTreeMap;
use std::sync::Arc;

use semver::Version;

use crate::config::ModuleConfig;
use crate::kind::{ModuleKind, ModuleType};
use crate::query::CapabilityQuery;
use crate::ModuleRegistry;

fn m(name: &str, version: &str, caps: &[&str]) -> ModuleConfig {
    ModuleConfig::new()
        .with_name(name)
        .with_version(version)
        .add_capabilities(caps.iter().copied())
}

#[test]
fn postings_stay_sorted_with_slot_reuse() {
    let r = ModuleRegistry::new();
    for i in 0..10 {
        r.register(m(&format!("m{i}"), "1.0.0", &["x"])).unwrap();
    }
    r.unregister("m3", "1.0.0").unwrap();
    r.unregister("m7", "1.0.0").unwrap();
    r.register(m("z", "1.0.0", &["x"])).unwrap();
    let state = r.inner.state.read();
    let list = &state.index.postings[state.index.cap_ids["x"] as usize];
    assert!(list.windows(2).all(|w| w[0] < w[1]), "{list:?}");
    assert_eq!(list.len(), 9);
    assert_eq!(state.free.len(), 1);
}

#[test]
fn pair_index_and_many_capability_modules_agree() {
    let r = ModuleRegistry::new();
    let many: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
    r.register(m(
        "wide",
        "1.0.0",
        &many.iter().map(String::as_str).collect::<Vec<_>>(),
    ))
    .unwrap();
    r.register(m("narrow", "1.0.0", &["c1", "c2"])).unwrap();
    r.register(m("other", "1.0.0", &["c2", "c3"])).unwrap();
    let names = |caps: &[&str]| -> Vec<String> {
        r.discover(&CapabilityQuery::new().with_required_capabilities(caps.iter().copied()))
            .unwrap()
            .iter()
            .map(|i| i.name().to_string())
            .collect()
    };
    assert_eq!(names(&["c1", "c2"]), ["narrow", "wide"]);
    assert_eq!(names(&["c2", "c3"]), ["other", "wide"]);
    assert_eq!(names(&["c1", "c2", "c3"]), ["wide"]);
    assert_eq!(names(&["c2", "c2"]), ["narrow", "other", "wide"]);
    r.unregister("wide", "1.0.0").unwrap();
    r.unregister("narrow", "1.0.0").unwrap();
    assert_eq!(names(&["c1", "c2"]), Vec::<String>::new());
    let state = r.inner.state.read();
    assert!(state.index.unpaired.is_empty());
    assert_eq!(state.index.pairs.len(), 1, "emptied pair lists are dropped");
}

#[test]
fn name_table_tracks_versions_through_churn() {
    // Registers and removes versions in a scrambled order, in both
    // namespaces, and checks every name's versions against a model.
    let r = ModuleRegistry::builder().audit_capacity(0).build().unwrap();
    let mut model: BTreeMap<(ModuleKind, String), Vec<Version>> = BTreeMap::new();
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    for _ in 0..3_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let kind = if x.is_multiple_of(5) {
            ModuleKind::Plugin
        } else {
            ModuleKind::Module
        };
        let name = format!("n{}", (x >> 8) % 40);
        let version = Version::new(1, (x >> 16) % 4, 0);
        let versions = model.entry((kind, name.clone())).or_default();
        if let Some(pos) = versions.iter().position(|v| *v == version) {
            r.remove(kind, &name, Some(&version.to_string())).unwrap();
            versions.remove(pos);
        } else {
            let config = m(&name, &version.to_string(), &["c"]).with_kind(kind);
            r.register_config(config, false).unwrap();
            versions.push(version);
        }
    }
    let state = r.inner.state.read();
    for ((kind, name), versions) in &model {
        let mut expected = versions.clone();
        expected.sort_unstable_by(|a, b| b.cmp(a));
        let got: Vec<Version> = state
            .versions(*kind, name)
            .unwrap_or_default()
            .iter()
            .map(|&id| state.info(id).version().clone())
            .collect();
        assert_eq!(got, expected, "{kind} {name}");
    }
    assert_eq!(state.len, model.values().map(Vec::len).sum::<usize>());
}

#[test]
fn module_types_and_extras_round_trip() {
    let plain = m("p", "1.0.0", &[]);
    assert!(plain.extras.is_none(), "a plain declaration has no extras");
    let custom = plain
        .clone()
        .with_type(ModuleType::Custom("Security".into()));
    assert_eq!(
        custom.module_type(),
        &ModuleType::Custom("Security".into()),
        "a custom type is kept as given"
    );
    let back = custom.with_type(ModuleType::Network);
    assert_eq!(back.module_type(), &ModuleType::Network);
    let r = ModuleRegistry::new();
    let info = r.register(back).unwrap();
    assert_eq!(info.module_type(), &ModuleType::Network);
    assert!(
        info.config().extras.is_none(),
        "empty extras are dropped on registration"
    );
    for text in ["1.2.3", " 1.2.3 ", "1.0.0-alpha.1+build.007", "0.0.1-x-y"] {
        let info = r
            .register(m("versions", text, &[]))
            .unwrap_or_else(|e| panic!("{text:?}: {e}"));
        assert_eq!(info.version_text(), info.version().to_string());
        assert_eq!(info.config().version(), info.version_text());
        r.unregister("versions", text.trim()).unwrap();
    }
    let rich = r
        .register(
            m("q", "1.0.0", &[])
                .with_type(ModuleType::custom("Video"))
                .with_metadata("k", "v")
                .with_dependency("p", "^1"),
        )
        .unwrap();
    assert_eq!(rich.module_type().name(), "Video");
    assert_eq!(rich.metadata()["k"], "v");
    let deps: Vec<_> = rich.dependency_requirements().collect();
    assert_eq!(deps.len(), 1);
    assert_eq!(deps[0].0, "p");
    assert!(deps[0].1.matches(&Version::new(1, 0, 0)));
}

#[test]
fn registrations_are_told_apart() {
    let r = ModuleRegistry::new();
    let first = r.register(m("a", "1.0.0", &[])).unwrap();
    let again = r.get("a").unwrap();
    assert_eq!(first.registration_key(), again.registration_key());
    assert!(r.is_registered(&first));
    let replaced = r.replace(m("a", "1.0.0", &["new"])).unwrap();
    assert_ne!(first.registration_key(), replaced.registration_key());
    assert!(!r.is_registered(&first), "replaced");
    assert!(r.is_registered(&replaced));
    r.unregister("a", "1.0.0").unwrap();
    assert!(!r.is_registered(&replaced), "removed");
}

#[test]
fn capabilities_are_interned_once() {
    let r = ModuleRegistry::new();
    let a = r.register(m("a", "1.0.0", &["shared"])).unwrap();
    let b = r.register(m("b", "1.0.0", &["shared"])).unwrap();
    assert!(Arc::ptr_eq(&a.capabilities()[0], &b.capabilities()[0]));
}

#[test]
fn a_registration_fits_its_memory_budget() {
    // The record of a registration (with its Arc header) fits a 128-byte
    // allocation: what keeps a module registered from Python under 400 bytes.
    assert!(std::mem::size_of::<crate::info::Entry>() + 16 <= 120);
    assert!(std::mem::size_of::<crate::config::Extras>() <= 56);
}
