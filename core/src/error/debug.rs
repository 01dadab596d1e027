//! `Debug` for [`Error`]: the readable chain, as `anyhow` prints it, so
//! `fn main() -> module_registry::Result<()>` shows what went wrong; `{:#?}`
//! keeps the structure (each level's code, text and source).

use std::fmt;

use super::Error;

impl fmt::Debug for Error {
    /// `{:?}` is [`Error::report`] (`module parse@1.0.0 failed in process:
    /// invalid digit found in string`); `{:#?}` is the structure, level by
    /// level.
    ///
    /// ```
    /// let registry = module_registry::ModuleRegistry::new();
    /// let err = registry.create("nothing").unwrap_err();
    /// assert_eq!(format!("{err:?}"), err.report());
    /// let structure = format!("{err:#?}");
    /// assert!(structure.contains(r#"code: "not_found""#), "{structure}");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if !f.alternate() {
            return f.write_str(&self.report());
        }
        let source = std::error::Error::source(self);
        let mut level = f.debug_struct("Error");
        level
            .field("code", &self.code())
            .field("message", &self.to_string());
        match source {
            None => level.field("source", &None::<()>),
            Some(inner) => match inner.downcast_ref::<Error>() {
                Some(ours) => level.field("source", &Some(ours)),
                None => level.field("source", &Some(inner)),
            },
        };
        level.finish()
    }
}
