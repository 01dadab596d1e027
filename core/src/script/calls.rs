//! Calls to functions that exist nowhere, found by `check_scripts`: a
//! call whose name is not a function of the script, of a library it
//! imports, of the engine (the registry's API, the natives, what the
//! embedder added so far) or of Rhai's packages and keywords. Loading does
//! not refuse them (an embedder may add functions after loading); `check`
//! reports them.

use std::collections::{BTreeMap, HashSet};

use rhai::{ASTNode, Engine, Expr, Stmt, AST};

use crate::error::Error;

/// Functions Rhai handles itself, which no package lists.
const KEYWORDS: &[&str] = &[
    "print",
    "debug",
    "type_of",
    "eval",
    "Fn",
    "call",
    "curry",
    "is_shared",
    "is_def_var",
    "is_def_fn",
];

/// The names of every function an engine has.
pub(crate) struct KnownFunctions(HashSet<String>);

/// The name in a signature (`name(a: int) -> int`, `get$len(...)`).
fn name_of(signature: &str) -> &str {
    signature.split('(').next().unwrap_or(signature).trim()
}

impl KnownFunctions {
    pub(crate) fn of(engine: &Engine) -> Self {
        let mut names: HashSet<String> = engine
            .gen_fn_signatures(true)
            .iter()
            .map(|s| name_of(s).to_string())
            .collect();
        names.extend(KEYWORDS.iter().map(|k| (*k).to_string()));
        KnownFunctions(names)
    }

    /// The script error for the calls in `ast` to functions that exist
    /// nowhere (the first one's position, all of them listed), if any.
    pub(crate) fn unknown_calls(&self, label: &str, ast: &AST) -> Option<Error> {
        let mut own: HashSet<String> = HashSet::new();
        let mut declared: HashSet<String> = HashSet::new();
        for f in ast.iter_functions() {
            own.insert(f.name.to_string());
            declared.extend(f.params.iter().map(|p| p.to_string()));
        }
        let mut properties: HashSet<String> = HashSet::new();
        let mut imports: BTreeMap<String, String> = BTreeMap::new();
        let mut calls: Vec<(String, Option<String>, bool, rhai::Position)> = Vec::new();
        ast.walk(&mut |path: &[ASTNode]| {
            match path.last() {
                Some(ASTNode::Stmt(Stmt::Var(x, ..))) => {
                    declared.insert(x.0.name.to_string());
                }
                Some(ASTNode::Stmt(Stmt::For(x, ..))) => {
                    declared.insert(x.0.name.to_string());
                    if let Some(counter) = &x.1 {
                        declared.insert(counter.name.to_string());
                    }
                }
                Some(ASTNode::Stmt(Stmt::Import(x, ..))) => {
                    if let Expr::StringConstant(path, _) = &x.0 {
                        imports.insert(x.1.name.to_string(), path.to_string());
                    }
                }
                Some(ASTNode::Expr(Expr::Property(x, ..))) => {
                    properties.insert(x.2.to_string());
                }
                Some(ASTNode::Expr(Expr::Map(x, ..))) => {
                    properties.extend(x.0.iter().map(|(key, _)| key.name.to_string()));
                }
                // A map literal the optimiser made a constant.
                Some(ASTNode::Expr(Expr::DynamicConstant(value, ..))) => {
                    if let Some(map) = value.read_lock::<rhai::Map>() {
                        properties.extend(map.keys().map(|k| k.to_string()));
                    }
                }
                Some(ASTNode::Expr(Expr::FnCall(f, pos)))
                | Some(ASTNode::Stmt(Stmt::FnCall(f, pos))) => {
                    let namespace = (!f.namespace.is_empty()).then(|| f.namespace.to_string());
                    calls.push((f.name.to_string(), namespace, false, *pos));
                }
                Some(ASTNode::Expr(Expr::MethodCall(f, pos))) => {
                    calls.push((f.name.to_string(), None, true, *pos));
                }
                _ => {}
            }
            true
        });
        let identifier = |name: &str| {
            name.chars()
                .next()
                .is_some_and(|c| c.is_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_alphanumeric() || c == '_')
        };
        let mut unknown: Vec<(String, rhai::Position)> = Vec::new();
        for (name, namespace, method, pos) in calls {
            // Operators, and Rhai's own generated names (`anon$...`).
            if !identifier(&name) {
                continue;
            }
            let shown = match &namespace {
                None => {
                    let known = self.0.contains(&name) || own.contains(&name);
                    // A variable holding a function pointer, or a map
                    // property holding one (`obj.action()`), may be called.
                    if known || declared.contains(&name) || (method && properties.contains(&name)) {
                        continue;
                    }
                    name
                }
                Some(alias) => {
                    let module = imports.get(alias).and_then(|path| {
                        ast.resolver()?
                            .iter()
                            .find(|(p, _)| p == path)
                            .map(|(_, m)| m.clone())
                    });
                    // A library the check cannot see is not judged.
                    let Some(module) = module else { continue };
                    let found = module
                        .gen_fn_signatures_with_mapper(std::borrow::Cow::Borrowed)
                        .any(|s| name_of(&s) == name);
                    if found {
                        continue;
                    }
                    format!("{alias}::{name}")
                }
            };
            if !unknown.iter().any(|(n, _)| *n == shown) {
                unknown.push((shown, pos));
            }
        }
        let (_, first) = unknown.first()?;
        let listed: Vec<String> = unknown
            .iter()
            .map(|(name, pos)| match (pos.line(), pos.position()) {
                (Some(l), Some(c)) => format!("{name} ({l}:{c})"),
                _ => name.clone(),
            })
            .collect();
        let (what, these) = if listed.len() == 1 {
            ("a function", "it")
        } else {
            ("functions", "them")
        };
        Some(Error::script(
            label,
            first.line(),
            first.position(),
            format!(
                "calls {what} that exist{} nowhere (not in the script, its imports, the registry's engine or Rhai): {}; \
                 define {these}, or add {these} before running (register_script_function)",
                if listed.len() == 1 { "s" } else { "" },
                listed.join(", ")
            ),
        ))
    }
}
