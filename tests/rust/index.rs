//! The capability index (name tables, posting and pair lists) agrees with a
//! brute-force filter over every registration, through registers and removals.

use module_registry::{
    CapabilityQuery, ModuleInfo, ModuleKind, ModuleRegistry, ModuleType, PluginConfig,
};
use proptest::prelude::*;

use crate::common::{config, names};

#[derive(Debug, Clone)]
struct Decl {
    name: usize,
    major: u64,
    caps: Vec<usize>,
    plugin: bool,
    typ: usize,
}

const CAPS: usize = 12;

fn cap(i: usize) -> String {
    format!("c{i}")
}

fn decl() -> impl Strategy<Value = Decl> {
    (
        0..12usize,
        0..3u64,
        prop::collection::vec(0..CAPS, 0..11),
        any::<bool>(),
        0..3usize,
    )
        .prop_map(|(name, major, caps, plugin, typ)| Decl {
            name,
            major,
            caps,
            plugin,
            typ,
        })
}

fn types() -> [ModuleType; 3] {
    [
        ModuleType::DataProcessor,
        ModuleType::Compute,
        ModuleType::Custom("Video".into()),
    ]
}

#[derive(Debug, Clone)]
struct Query {
    required: Vec<usize>,
    any: Vec<usize>,
    excluded: Vec<usize>,
    kind: Option<bool>,
    typ: Option<usize>,
    major: Option<u64>,
}

fn query() -> impl Strategy<Value = Query> {
    (
        prop::collection::vec(0..CAPS, 0..3),
        prop::collection::vec(0..CAPS, 0..3),
        prop::collection::vec(0..CAPS, 0..2),
        prop::option::of(any::<bool>()),
        prop::option::of(0..3usize),
        prop::option::of(0..3u64),
    )
        .prop_map(|(required, any, excluded, kind, typ, major)| Query {
            required,
            any,
            excluded,
            kind,
            typ,
            major,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn discovery_equals_brute_force(decls in prop::collection::vec(decl(), 0..40), removals in prop::collection::vec(0..40usize, 0..8), q in query()) {
        let registry = ModuleRegistry::new();
        for d in &decls {
            let caps: Vec<String> = d.caps.iter().map(|&c| cap(c)).collect();
            let cfg = config(&format!("m{}", d.name), &format!("{}.0.0", d.major), &[])
                .add_capabilities(caps.iter())
                .with_type(types()[d.typ].clone());
            let _ = if d.plugin {
                let mut p = PluginConfig::new().with_name(cfg.name()).with_version(cfg.version()).with_type(types()[d.typ].clone());
                p = p.add_capabilities(caps.iter());
                registry.register_plugin(p)
            } else {
                registry.register(cfg)
            };
        }
        for r in removals {
            if let Some(d) = decls.get(r) {
                let kind = if d.plugin { ModuleKind::Plugin } else { ModuleKind::Module };
                let _ = registry.remove(kind, &format!("m{}", d.name), Some(&format!("{}.0.0", d.major)));
            }
        }
        let mut cq = CapabilityQuery::new()
            .with_required_capabilities(q.required.iter().map(|&c| cap(c)))
            .with_any_capabilities(q.any.iter().map(|&c| cap(c)))
            .with_excluded_capabilities(q.excluded.iter().map(|&c| cap(c)));
        if let Some(p) = q.kind {
            cq = cq.with_kind(if p { ModuleKind::Plugin } else { ModuleKind::Module });
        }
        if let Some(t) = q.typ {
            cq = cq.with_type(types()[t].clone());
        }
        if let Some(m) = q.major {
            cq = cq.with_version_req(format!("^{m}"));
        }
        let found = registry.discover(&cq).unwrap();

        let mut expected: Vec<ModuleInfo> = registry.list().into_iter().filter(|i| {
            q.required.iter().all(|&c| i.has_capability(&cap(c)))
                && (q.any.is_empty() || q.any.iter().any(|&c| i.has_capability(&cap(c))))
                && !q.excluded.iter().any(|&c| i.has_capability(&cap(c)))
                && q.kind.is_none_or(|p| i.kind() == if p { ModuleKind::Plugin } else { ModuleKind::Module })
                && q.typ.is_none_or(|t| i.module_type() == &types()[t])
                && q.major.is_none_or(|m| semver::VersionReq::parse(&format!("^{m}")).unwrap().matches(i.version()))
        }).collect();
        expected.sort_by(|a, b| a.name().cmp(b.name()).then(b.version().cmp(a.version())).then(a.kind().cmp(&b.kind())));
        prop_assert_eq!(names(&found), names(&expected));
        prop_assert_eq!(found.iter().map(|i| i.kind()).collect::<Vec<_>>(), expected.iter().map(|i| i.kind()).collect::<Vec<_>>());
    }
}
