//! [`ErrorKind`]: the variants of [`Error`] without their fields, as an
//! enum a binding can match exhaustively (`Error` itself is
//! `#[non_exhaustive]`, so a match on it outside this crate needs a
//! catch-all arm, where a new variant would fall silently).

use super::Error;

/// Which variant an [`Error`] is, without its fields
/// ([`Error::kind`]). Unlike `Error` it is not `#[non_exhaustive]`: a
/// binding that maps every kind (the Python binding does, to its
/// exception classes) stops compiling when a variant is added, until the
/// new kind is mapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[allow(missing_docs)] // each kind is documented on its `Error` variant
pub enum ErrorKind {
    InvalidName,
    InvalidVersion,
    InvalidRequirement,
    InvalidConfig,
    AlreadyRegistered,
    NotFound,
    NoImplementation,
    MissingDependency,
    VersionConflict,
    DependencyCycle,
    ResolutionLimit,
    ModuleFailed,
    Panic,
    InstanceClosed,
    InvalidInput,
    FeatureDisabled,
    Serialization,
    Io,
    Script,
    Workflow,
    PermissionDenied,
    Integrity,
    Signature,
    Fetch,
    Timeout,
    Unavailable,
    Interrupted,
    InvalidSchema,
    SchemaMismatch,
    WorkflowType,
    /// Kept last: [`ErrorKind::ALL`] is checked against it.
    External,
}

// A kind added after `External` would be missing from `ALL`.
const _: () = assert!(ErrorKind::External as usize + 1 == ErrorKind::ALL.len());

impl ErrorKind {
    /// Every kind, in declaration order (what a binding's "every kind is
    /// mapped" test walks).
    pub const ALL: [ErrorKind; 31] = [
        ErrorKind::InvalidName,
        ErrorKind::InvalidVersion,
        ErrorKind::InvalidRequirement,
        ErrorKind::InvalidConfig,
        ErrorKind::AlreadyRegistered,
        ErrorKind::NotFound,
        ErrorKind::NoImplementation,
        ErrorKind::MissingDependency,
        ErrorKind::VersionConflict,
        ErrorKind::DependencyCycle,
        ErrorKind::ResolutionLimit,
        ErrorKind::ModuleFailed,
        ErrorKind::Panic,
        ErrorKind::InstanceClosed,
        ErrorKind::InvalidInput,
        ErrorKind::FeatureDisabled,
        ErrorKind::Serialization,
        ErrorKind::Io,
        ErrorKind::Script,
        ErrorKind::Workflow,
        ErrorKind::PermissionDenied,
        ErrorKind::Integrity,
        ErrorKind::Signature,
        ErrorKind::Fetch,
        ErrorKind::Timeout,
        ErrorKind::Unavailable,
        ErrorKind::Interrupted,
        ErrorKind::InvalidSchema,
        ErrorKind::SchemaMismatch,
        ErrorKind::WorkflowType,
        ErrorKind::External,
    ];

    /// The short, stable name of the kind (`"not_found"`, ...): what
    /// [`Error::code`] returns and audit events record.
    pub fn code(self) -> &'static str {
        match self {
            ErrorKind::InvalidName => "invalid_name",
            ErrorKind::InvalidVersion => "invalid_version",
            ErrorKind::InvalidRequirement => "invalid_requirement",
            ErrorKind::InvalidConfig => "invalid_config",
            ErrorKind::AlreadyRegistered => "already_registered",
            ErrorKind::NotFound => "not_found",
            ErrorKind::NoImplementation => "no_implementation",
            ErrorKind::MissingDependency => "missing_dependency",
            ErrorKind::VersionConflict => "version_conflict",
            ErrorKind::DependencyCycle => "dependency_cycle",
            ErrorKind::ResolutionLimit => "resolution_limit",
            ErrorKind::ModuleFailed => "module_failed",
            ErrorKind::Panic => "panic",
            ErrorKind::InstanceClosed => "instance_closed",
            ErrorKind::InvalidInput => "invalid_input",
            ErrorKind::FeatureDisabled => "feature_disabled",
            ErrorKind::Serialization => "serialization",
            ErrorKind::Io => "io",
            ErrorKind::Script => "script",
            ErrorKind::Workflow => "workflow",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Integrity => "integrity",
            ErrorKind::Signature => "signature",
            ErrorKind::Fetch => "fetch",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Interrupted => "interrupted",
            ErrorKind::InvalidSchema => "invalid_schema",
            ErrorKind::SchemaMismatch => "schema_mismatch",
            ErrorKind::WorkflowType => "workflow_type",
            ErrorKind::External => "external",
        }
    }
}

impl Error {
    /// Which variant this is ([`ErrorKind`], matchable exhaustively).
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::InvalidName { .. } => ErrorKind::InvalidName,
            Error::InvalidVersion { .. } => ErrorKind::InvalidVersion,
            Error::InvalidRequirement { .. } => ErrorKind::InvalidRequirement,
            Error::InvalidConfig { .. } => ErrorKind::InvalidConfig,
            Error::AlreadyRegistered { .. } => ErrorKind::AlreadyRegistered,
            Error::NotFound { .. } => ErrorKind::NotFound,
            Error::NoImplementation { .. } => ErrorKind::NoImplementation,
            Error::MissingDependency { .. } => ErrorKind::MissingDependency,
            Error::VersionConflict { .. } => ErrorKind::VersionConflict,
            Error::DependencyCycle { .. } => ErrorKind::DependencyCycle,
            Error::ResolutionLimit { .. } => ErrorKind::ResolutionLimit,
            Error::ModuleFailed { .. } => ErrorKind::ModuleFailed,
            Error::Panic { .. } => ErrorKind::Panic,
            Error::InstanceClosed { .. } => ErrorKind::InstanceClosed,
            Error::InvalidInput { .. } => ErrorKind::InvalidInput,
            Error::FeatureDisabled { .. } => ErrorKind::FeatureDisabled,
            Error::Serialization { .. } => ErrorKind::Serialization,
            Error::Io { .. } => ErrorKind::Io,
            Error::Script { .. } => ErrorKind::Script,
            Error::Workflow { .. } => ErrorKind::Workflow,
            Error::PermissionDenied { .. } => ErrorKind::PermissionDenied,
            Error::Integrity { .. } => ErrorKind::Integrity,
            Error::Signature { .. } => ErrorKind::Signature,
            Error::Fetch { .. } => ErrorKind::Fetch,
            Error::Timeout { .. } => ErrorKind::Timeout,
            Error::Unavailable { .. } => ErrorKind::Unavailable,
            Error::Interrupted { .. } => ErrorKind::Interrupted,
            Error::InvalidSchema { .. } => ErrorKind::InvalidSchema,
            Error::SchemaMismatch { .. } => ErrorKind::SchemaMismatch,
            Error::WorkflowType(_) => ErrorKind::WorkflowType,
            Error::External { .. } => ErrorKind::External,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_is_listed_once_with_its_own_code() {
        let mut codes: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), ErrorKind::ALL.len());
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(*kind as usize, i, "ALL is in declaration order");
        }
        let mut kinds = ErrorKind::ALL.to_vec();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), ErrorKind::ALL.len());
        assert_eq!(Error::invalid_input("x").kind(), ErrorKind::InvalidInput);
        assert_eq!(Error::invalid_input("x").code(), "invalid_input");
    }
}
