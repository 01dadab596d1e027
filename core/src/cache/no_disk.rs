//! The disk store when the crate is built without `cache-disk` (no SQLite
//! compiled in): a cache with a folder is refused with
//! [`Error::FeatureDisabled`], and no store exists to call.

use std::path::Path;
use std::sync::Arc;

use super::Key;
use crate::error::{Error, Result};

/// The store's file inside the cache folder (its format is in the name).
pub const FILE_NAME: &str = "steps-v1.sqlite";

/// No value: a store cannot be opened without the feature.
pub(crate) enum DiskStore {}

impl DiskStore {
    pub(crate) fn open(_folder: &Path, _max_bytes: Option<u64>) -> Result<Arc<Self>> {
        Err(Error::FeatureDisabled {
            feature: "cache-disk",
            hint: "build module-registry with the `cache-disk` feature for a cache with a folder",
        })
    }

    pub(crate) fn get(&self, _key: &Key) -> Option<Vec<u8>> {
        match *self {}
    }

    pub(crate) fn put(&self, _key: &Key, _value: &[u8]) {
        match *self {}
    }

    pub(crate) fn size(&self) -> (u64, u64) {
        match *self {}
    }

    pub(crate) fn clear(&self) {
        match *self {}
    }

    pub(crate) fn flush(&self) {
        match *self {}
    }
}

/// Writes every store's pending batch: without `cache-disk` there is none.
pub fn flush_all() {}
