//! Tests written in Rhai: each `fn test_*()` of a test file (`test_*.rhai`
//! or `*_test.rhai`) is one test. A test function reaches the registry as
//! an orchestration script does, through `registry` (bound inside every
//! function of a test file too), and fails with `assert`, `assert_eq`,
//! `throw` or any error. Each runs under the registry's [`ScriptLimits`],
//! so one that never ends fails at the operation limit or the timeout.
//!
//! ```
//! use module_registry::ModuleRegistry;
//!
//! let dir = std::env::temp_dir().join(format!("mr-doc-tests-{}", std::process::id()));
//! std::fs::create_dir_all(&dir)?;
//! std::fs::write(dir.join("double.rhai"), r#"
//!     const MODULE = #{ name: "double", version: "1.0.0" };
//!     fn process(x) { x * 2 }
//! "#)?;
//! std::fs::write(dir.join("test_double.rhai"), r#"
//!     fn test_doubles() { assert_eq(registry.create("double").process(21), 42); }
//!     fn test_wrong() { assert_eq(registry.create("double").process(1), 3, "one doubled"); }
//! "#)?;
//! let registry = ModuleRegistry::new();
//! registry.load_scripts_under_test(&dir)?;
//! let tests = registry.load_script_tests(dir.join("test_double.rhai"))?;
//! let names: Vec<&str> = tests.tests().iter().map(|t| t.name.as_str()).collect();
//! assert_eq!(names, ["test_doubles", "test_wrong"]);
//! tests.run("test_doubles")?;
//! let failure = tests.run("test_wrong").unwrap_err().to_string();
//! assert!(failure.contains("one doubled (left: 2, right: 3)"), "{failure}");
//! # std::fs::remove_dir_all(&dir)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rhai::{CallFnOptions, Dynamic, Engine, Scope, AST};

use super::api::ScriptRegistry;
use super::engine::{run_limited, ImportResolver};
use super::module::{parse_error, script_error, script_error_in};
use super::{folder_of, host, read, Imports, ScriptHost, ScriptLimits};
use crate::error::{Error, Result};
use crate::info::ModuleInfo;
use crate::registry::ModuleRegistry;

/// Whether `path` names a test file: `test_*.rhai` or `*_test.rhai`.
pub fn is_script_test_file(path: &Path) -> bool {
    let Some(name) = path.file_name().and_then(|n| n.to_str()) else {
        return false;
    };
    name.strip_suffix(".rhai")
        .is_some_and(|stem| stem.starts_with("test_") || stem.ends_with("_test"))
}

/// One test function of a test file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScriptTest {
    /// The function's name (`test_...`).
    pub name: String,
    /// The line of its `fn`, if found.
    pub line: Option<usize>,
}

/// A compiled test file (what [`ModuleRegistry::load_script_tests`] gives): its test functions,
/// each run on its own with [`run`](Self::run).
pub struct ScriptTests {
    path: PathBuf,
    label: String,
    ast: AST,
    needs_eval: bool,
    engine: Engine,
    host: Arc<ScriptHost>,
    limits: ScriptLimits,
    tests: Vec<ScriptTest>,
}

impl std::fmt::Debug for ScriptTests {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ScriptTests")
            .field("path", &self.path)
            .field("tests", &self.tests)
            .finish_non_exhaustive()
    }
}

/// The line of `fn name` in `source` (a `private fn` too).
fn line_of(source: &str, name: &str) -> Option<usize> {
    source
        .lines()
        .position(|line| {
            let line = line.trim_start();
            let line = line.strip_prefix("private").map_or(line, str::trim_start);
            line.strip_prefix("fn")
                .filter(|rest| rest.starts_with(char::is_whitespace))
                .and_then(|rest| rest.trim_start().strip_prefix(name))
                .is_some_and(|rest| rest.trim_start().starts_with('('))
        })
        .map(|i| i + 1)
}

/// The engine test functions run on: the registry's, with `registry`
/// readable inside every function (unless a function has its own).
fn test_engine(host: &ScriptHost, registry: &ModuleRegistry, folder: &Path) -> Engine {
    let mut engine = host.build(&host.limits(), Some(ImportResolver::folder(folder)), false);
    engine.set_strict_variables(false);
    let registry = registry.clone();
    #[allow(deprecated)] // Rhai's word: not deprecated, but may change.
    engine.on_var(move |name, index, context| {
        if name == "registry" && index == 0 && !context.scope().contains("registry") {
            Ok(Some(Dynamic::from(ScriptRegistry(registry.clone()))))
        } else {
            Ok(None)
        }
    });
    engine
}

impl ModuleRegistry {
    /// Loads the script modules of folder `dir` as
    /// [`load_scripts`](Self::load_scripts) does, leaving out its test
    /// files (see [`is_script_test_file`]).
    pub fn load_scripts_under_test(&self, dir: impl AsRef<Path>) -> Result<Vec<ModuleInfo>> {
        let dir = dir.as_ref();
        self.authorize_file_read("load_scripts")?;
        let mut paths = super::load::rhai_files(dir)?;
        paths.retain(|p| !is_script_test_file(p));
        let mut scripts = Vec::with_capacity(paths.len());
        for path in paths {
            let source = read(&path)?;
            scripts.push((path.display().to_string(), source, Some(path)));
        }
        self.register_script_set(scripts, Imports::Folder(dir), "load_script")
    }

    /// Compiles the test file at `path` (its `import`s read beside it): its
    /// `fn test_*()` functions (no parameters), in the file's order. Reads a
    /// file: under a policy, needs `admin` on `*`; needs workflow
    /// orchestration, as test functions use `registry`.
    pub fn load_script_tests(&self, path: impl AsRef<Path>) -> Result<ScriptTests> {
        self.require_orchestration()?;
        let path = path.as_ref();
        self.authorize_file_read("load_script_tests")?;
        let source = read(path)?;
        let label = path.display().to_string();
        let host = host(self);
        let limits = host.limits();
        let engine = test_engine(&host, self, &folder_of(path));
        let ast = run_limited(&limits, || {
            engine
                .compile(&source)
                .map_err(|e| parse_error(&label, &e))?;
            engine
                .compile_into_self_contained(&Scope::new(), &source)
                .map_err(|e| script_error(&label, &e, &host))
        })??;
        let mut tests: Vec<ScriptTest> = ast
            .iter_functions()
            .filter(|f| f.name.starts_with("test_") && f.params.is_empty())
            .map(|f| ScriptTest {
                name: f.name.to_string(),
                line: line_of(&source, f.name),
            })
            .collect();
        tests.sort_by(|a, b| (a.line, &a.name).cmp(&(b.line, &b.name)));
        Ok(ScriptTests {
            path: path.to_path_buf(),
            label,
            ast,
            needs_eval: source.contains("import"),
            engine,
            host,
            limits,
            tests,
        })
    }
}

impl ScriptTests {
    /// The test file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Its test functions.
    pub fn tests(&self) -> &[ScriptTest] {
        &self.tests
    }

    /// Runs test function `name` under the registry's limits (as they were
    /// when the file was loaded): `Ok` when it returns, its error (an
    /// [`Error::Script`] with the failing line) when it fails.
    pub fn run(&self, name: &str) -> Result<()> {
        if !self.tests.iter().any(|t| t.name == name) {
            return Err(Error::invalid_input(format!(
                "{} has no test function {name}() (test functions are fn test_*() with no parameters)",
                self.label
            )));
        }
        run_limited(&self.limits, || {
            let options = CallFnOptions::new()
                .eval_ast(self.needs_eval)
                .rewind_scope(true);
            let out = self
                .engine
                .call_fn_with_options::<Dynamic>(options, &mut Scope::new(), &self.ast, name, ())
                .map_err(|e| script_error_in(&self.label, &e, &self.host, Some(name)))?;
            drop(out);
            match super::opaque::take() {
                Some(misuse) => Err(misuse.into_error(&self.label)),
                None => Ok(()),
            }
        })?
    }
}
