//! The gzip native modules (`compression` feature): `gzip-compress` and
//! `gzip-decompress`.

use std::io::{Read, Write};
use std::sync::OnceLock;

use super::builtins::check_config_map;
use crate::error::{BoxError, Error, Result};
use crate::module::{Module, ModuleContext};
use crate::native::NativeModule;
use crate::native_module;
use crate::value::Value;

fn config_int(
    config: &Value,
    key: &str,
    default: i64,
    range: std::ops::RangeInclusive<i64>,
) -> Result<i64> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Int(i)) if range.contains(i) => Ok(*i),
        Some(other) => Err(Error::invalid_input(format!(
            "config.{key} must be an int in {}..={}, got {other:?}",
            range.start(),
            range.end()
        ))),
    }
}

// --- gzip -------------------------------------------------------------------

#[derive(Default)]
struct GzipCompress {
    level: OnceLock<u32>,
}

impl Module for GzipCompress {
    fn init(&self, context: &ModuleContext) -> Result<(), BoxError> {
        check_config_map(context.config())?;
        let level = config_int(context.config(), "level", 6, 0..=9)?;
        let _ = self.level.set(level as u32);
        Ok(())
    }

    fn process(&self, input: Value) -> Result<Value, BoxError> {
        let data = input.bytes_or_text()?;
        let level = self.level.get().copied().unwrap_or(6);
        let mut encoder =
            flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
        encoder
            .write_all(data)
            .and_then(|_| encoder.finish())
            .map(Value::Bytes)
            .map_err(|e| Error::invalid_input(format!("gzip compression failed: {e}")).into())
    }
}

fn gzip_compress(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::<GzipCompress>::default())
}

native_module!(NativeModule::new("gzip-compress", "1.0.0", gzip_compress)
    .with_types("bytes | str", "bytes")
    .with_config_type("{level?: int | null, ...} | null")
    .with_capabilities(&["compress", "compression", "gzip"])
    .with_metadata(&[("description", "Compresses bytes or text with gzip.")]));

/// The default bound on `gzip-decompress` output (a defence against
/// decompression bombs); raise it with `config.max_size`.
pub const DEFAULT_MAX_DECOMPRESSED: i64 = 256 * 1024 * 1024;

#[derive(Default)]
struct GzipDecompress {
    max_size: OnceLock<u64>,
}

impl Module for GzipDecompress {
    fn init(&self, context: &ModuleContext) -> Result<(), BoxError> {
        check_config_map(context.config())?;
        let max = config_int(
            context.config(),
            "max_size",
            DEFAULT_MAX_DECOMPRESSED,
            0..=i64::MAX,
        )?;
        let _ = self.max_size.set(max as u64);
        Ok(())
    }

    fn process(&self, input: Value) -> Result<Value, BoxError> {
        let data = match &input {
            Value::Bytes(b) => b.as_slice(),
            other => {
                return Err(Error::invalid_input(format!(
                    "expected bytes, got {}",
                    other.describe()
                ))
                .into())
            }
        };
        let max = self
            .max_size
            .get()
            .copied()
            .unwrap_or(DEFAULT_MAX_DECOMPRESSED as u64);
        let mut out = Vec::new();
        // Every member of a multi-member file (as `cat a.gz b.gz` makes), as gunzip does.
        let mut decoder = flate2::read::MultiGzDecoder::new(data).take(max.saturating_add(1));
        decoder
            .read_to_end(&mut out)
            .map_err(|e| Error::invalid_input(format!("not valid gzip data: {e}")))?;
        if out.len() as u64 > max {
            return Err(Error::invalid_input(format!(
                "decompressed data exceeds max_size of {max} bytes"
            ))
            .into());
        }
        Ok(Value::Bytes(out))
    }
}

fn gzip_decompress(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::<GzipDecompress>::default())
}

native_module!(
    NativeModule::new("gzip-decompress", "1.0.0", gzip_decompress)
        .with_types("bytes", "bytes")
        .with_config_type("{max_size?: int | null, ...} | null")
        .with_capabilities(&["compression", "decompress", "gzip"])
        .with_metadata(&[(
            "description",
            "Decompresses gzip data, bounded by config.max_size."
        )])
);
