//! Values checked against a module's declared types while it runs: the
//! registry's [`Validation`] mode (`off`, `inputs`, `all`) and the check of
//! one value, whose error names the module, the step and which value.

use std::fmt;
use std::str::FromStr;

use super::Schema;
use crate::error::{CheckedCall, Error, Result};
use crate::value::Value;

/// What a registry checks of the values its modules receive and return
/// ([`ModuleRegistry::set_validation`](crate::ModuleRegistry::set_validation)).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Validation {
    /// Nothing (the default): a call pays one atomic load.
    #[default]
    Off = 0,
    /// Each value a module is given, against its input type.
    Inputs = 1,
    /// Also each value it returns, against its output type.
    All = 2,
}

impl Validation {
    /// Whether this is [`Validation::Off`].
    pub fn is_off(&self) -> bool {
        *self == Validation::Off
    }

    /// `off`, `inputs`, `all`.
    pub fn as_str(self) -> &'static str {
        match self {
            Validation::Off => "off",
            Validation::Inputs => "inputs",
            Validation::All => "all",
        }
    }

    /// From its stored byte (unknown bytes are `Off`).
    pub(crate) fn from_u8(v: u8) -> Self {
        match v {
            1 => Validation::Inputs,
            2 => Validation::All,
            _ => Validation::Off,
        }
    }
}

impl fmt::Display for Validation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Validation {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s {
            "off" => Ok(Validation::Off),
            "inputs" => Ok(Validation::Inputs),
            "all" => Ok(Validation::All),
            other => Err(Error::invalid_input(format!(
                "validation must be \"off\", \"inputs\" or \"all\", not {other:?}"
            ))),
        }
    }
}

impl Schema {
    /// Checks `value`, the `role` (`input` or `output`) of a call of
    /// `module` (`name@version`), run by workflow step `step` if any: an
    /// [`Error::SchemaMismatch`] naming them. `any` passes at once.
    pub fn check_call(
        &self,
        value: &Value,
        module: &str,
        step: Option<&str>,
        role: &str,
    ) -> Result<()> {
        if self.is_any() {
            return Ok(());
        }
        match self.validate(value) {
            Err(Error::SchemaMismatch {
                path,
                expected,
                found,
                ..
            }) => Err(Error::SchemaMismatch {
                path,
                expected,
                found,
                call: Some(Box::new(CheckedCall {
                    module: module.to_string(),
                    step: step.map(str::to_string),
                    role: role.to_string(),
                })),
            }),
            other => other,
        }
    }
}
