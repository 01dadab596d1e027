//! The three types a declaration carries: what it takes (`input`), what it
//! gives (`output`) and what its per-instance config is (`config_type`);
//! each `any` when not declared, so an untyped declaration is unchanged
//! (and keeps no more memory: the types live in the rarely used part).

use std::sync::LazyLock;

use super::ModuleConfig;
use crate::schema::Schema;

/// `any`, shared by every declaration that does not declare a type.
static ANY: LazyLock<Schema> = LazyLock::new(Schema::any);

/// The declared types; `None` is `any`.
#[derive(Clone, Default, PartialEq)]
pub(super) struct Types {
    input: Option<Schema>,
    output: Option<Schema>,
    config: Option<Schema>,
}

impl Types {
    pub(super) fn is_empty(&self) -> bool {
        self.input.is_none() && self.output.is_none() && self.config.is_none()
    }
}

/// `any` is kept as not declared.
fn declared(schema: Schema) -> Option<Schema> {
    (!schema.is_any()).then_some(schema)
}

impl ModuleConfig {
    fn types(&self) -> Option<&Types> {
        self.rare().map(|r| &r.types)
    }

    fn types_mut(&mut self) -> &mut Types {
        &mut self.extras_mut().rare_mut().types
    }

    /// Whether both declare the same three types.
    pub(super) fn same_types(&self, other: &ModuleConfig) -> bool {
        self.input() == other.input()
            && self.output() == other.output()
            && self.config_type() == other.config_type()
    }

    /// Declare what the module takes (`Schema::parse("str")?`).
    ///
    /// ```
    /// use module_registry::{ModuleConfig, ModuleRegistry, Schema};
    ///
    /// let registry = ModuleRegistry::new();
    /// let info = registry.register(
    ///     ModuleConfig::new()
    ///         .with_name("word-count")
    ///         .with_input(Schema::parse("str")?)
    ///         .with_output(Schema::parse("int")?)
    ///         .with_handler(|text| Ok((text.as_str().unwrap_or("").split_whitespace().count() as i64).into())),
    /// )?;
    /// assert_eq!((info.input().to_string(), info.output().to_string()), ("str".into(), "int".into()));
    /// assert!(info.config_type().is_any()); // not declared
    /// # Ok::<(), module_registry::Error>(())
    /// ```
    pub fn with_input(mut self, schema: Schema) -> Self {
        self.types_mut().input = declared(schema);
        self
    }

    /// Declare what the module gives.
    pub fn with_output(mut self, schema: Schema) -> Self {
        self.types_mut().output = declared(schema);
        self
    }

    /// Declare the type of the module's per-instance config.
    pub fn with_config_type(mut self, schema: Schema) -> Self {
        self.types_mut().config = declared(schema);
        self
    }

    /// What the module takes (`any` when not declared).
    pub fn input(&self) -> &Schema {
        self.types().and_then(|t| t.input.as_ref()).unwrap_or(&ANY)
    }

    /// What the module gives (`any` when not declared).
    pub fn output(&self) -> &Schema {
        self.types().and_then(|t| t.output.as_ref()).unwrap_or(&ANY)
    }

    /// The type of the module's config (`any` when not declared).
    pub fn config_type(&self) -> &Schema {
        self.types().and_then(|t| t.config.as_ref()).unwrap_or(&ANY)
    }
}
