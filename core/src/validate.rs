//! The naming rules every declaration and query is checked against, and
//! the parsing of versions and requirements with errors that name the module.

use std::str::FromStr;

use crate::error::{Error, Result};
use crate::kind::{ModuleKind, ModuleType};

/// The longest name, capability or metadata key accepted.
pub const MAX_NAME_LEN: usize = 128;
/// Checks a name against `[a-z0-9][a-z0-9._-]{0,127}`; `what` says what it
/// names in the error ("module name", "capability", ...).
pub fn validate_name(what: &'static str, value: &str) -> Result<()> {
    let fail = |reason: String| {
        Err(Error::InvalidName {
            what,
            value: value.to_string(),
            reason,
        })
    };
    if value.is_empty() {
        return fail("must not be empty".into());
    }
    if value.len() > MAX_NAME_LEN {
        return fail(format!(
            "is {} bytes long; at most {MAX_NAME_LEN} are allowed",
            value.len()
        ));
    }
    // Every allowed character is ASCII: check bytes, and decode the character
    // only to report the first bad one.
    let allowed = |i: usize, b: u8| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || (i > 0 && matches!(b, b'.' | b'_' | b'-'))
    };
    if let Some(i) = value.bytes().enumerate().position(|(i, b)| !allowed(i, b)) {
        // Every byte before `i` is ASCII, so `i` starts a character.
        let c = value[i..]
            .chars()
            .next()
            .expect("a bad byte starts a character");
        let rule = if i == 0 {
            "must start with a lowercase ASCII letter or a digit"
        } else {
            "may contain only lowercase ASCII letters, digits, '.', '_' and '-'"
        };
        return fail(format!("character {c:?} at position {i}: {rule}"));
    }
    Ok(())
}

pub(crate) fn validate_metadata_key(key: &str) -> Result<()> {
    let bad = key.is_empty() || key.len() > MAX_NAME_LEN || key.chars().any(char::is_control);
    if bad {
        return Err(Error::InvalidName {
            what: "metadata key",
            value: key.to_string(),
            reason: format!("must be 1 to {MAX_NAME_LEN} bytes without control characters"),
        });
    }
    Ok(())
}

/// Parses a semver version, naming the module in the error.
pub fn parse_version(name: &str, version: &str) -> Result<semver::Version> {
    semver::Version::parse(version.trim()).map_err(|e| Error::InvalidVersion {
        name: name.to_string(),
        version: version.to_string(),
        reason: e.to_string(),
    })
}

/// Parses a semver requirement (`"^1.2"`, `">=1, <3"`, `"*"`), naming the
/// module it is about in the error.
pub fn parse_requirement(name: &str, requirement: &str) -> Result<semver::VersionReq> {
    semver::VersionReq::parse(requirement.trim()).map_err(|e| Error::InvalidRequirement {
        name: name.to_string(),
        requirement: requirement.to_string(),
        reason: e.to_string(),
    })
}

impl FromStr for ModuleKind {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "module" => Ok(ModuleKind::Module),
            "plugin" => Ok(ModuleKind::Plugin),
            other => Err(Error::InvalidConfig {
                name: other.to_string(),
                reason: format!("kind must be \"module\" or \"plugin\", not {other:?}"),
            }),
        }
    }
}

impl FromStr for ModuleType {
    type Err = Error;
    /// Parses a type name; an empty name is an error, an unknown one is `Custom`.
    fn from_str(s: &str) -> Result<Self> {
        if s.trim().is_empty() {
            return Err(Error::InvalidConfig {
                name: String::new(),
                reason: "module type must not be empty".into(),
            });
        }
        Ok(ModuleType::custom(s))
    }
}
