//! The native modules that ship with the crate.
//!
//! | name | capabilities | input -> output | config |
//! |---|---|---|---|
//! | `identity` | `identity` | anything, unchanged | |
//! | `json-encode` | `json`, `encode` | any JSON-able value -> str | `pretty` (bool) |
//! | `json-decode` | `json`, `decode` | str or bytes -> value | |
//! | `text-encode` | `text`, `utf8`, `encode` | str -> bytes (UTF-8) | |
//! | `text-decode` | `text`, `utf8`, `decode` | bytes -> str | `errors`: `"strict"` or `"replace"` |
//! | `sha256` | `digest`, `sha256`, `hash` | bytes or str -> hex str (or bytes) | `output`: `"hex"` or `"bytes"` |
//! | `gzip-compress` | `compression`, `gzip`, `compress` | bytes or str -> bytes | `level` (0-9, default 6) |
//! | `gzip-decompress` | `compression`, `gzip`, `decompress` | bytes -> bytes | `max_size` (bytes, default 256 MiB) |
//! | `base64-encode` | `base64`, `encode` | bytes or str -> str | |
//! | `base64-decode` | `base64`, `decode` | str or bytes -> bytes | |

use std::sync::OnceLock;

use base64::Engine as _;
use sha2::{Digest, Sha256};

use crate::error::{BoxError, Error, Result};
use crate::kind::ModuleType;
use crate::module::{Module, ModuleContext};
use crate::native::NativeModule;
use crate::native_module;
use crate::value::Value;

fn config_bool(config: &Value, key: &str, default: bool) -> Result<bool> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(Error::invalid_input(format!(
            "config.{key} must be a bool, got {}",
            other.describe()
        ))),
    }
}

fn config_choice(config: &Value, key: &str, choices: &[&'static str]) -> Result<&'static str> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(choices[0]),
        Some(Value::Str(s)) => choices.iter().copied().find(|c| c == s).ok_or_else(|| {
            Error::invalid_input(format!(
                "config.{key} must be one of {choices:?}, got {s:?}"
            ))
        }),
        Some(other) => Err(Error::invalid_input(format!(
            "config.{key} must be a str, got {}",
            other.describe()
        ))),
    }
}

pub(super) fn check_config_map(config: &Value) -> Result<()> {
    match config {
        Value::Null | Value::Map(_) => Ok(()),
        other => Err(Error::invalid_input(format!(
            "config must be a map, got {}",
            other.describe()
        ))),
    }
}

// --- identity ---------------------------------------------------------------

struct Identity;

impl Module for Identity {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        Ok(input)
    }
}

fn identity(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::new(Identity))
}

native_module!(NativeModule::new("identity", "1.0.0", identity)
    .without_config()
    .with_capabilities(&["identity"])
    .with_metadata(&[("description", "Returns its input unchanged.")]));

// --- json -------------------------------------------------------------------

#[derive(Default)]
struct JsonEncode {
    pretty: OnceLock<bool>,
}

impl Module for JsonEncode {
    fn init(&self, context: &ModuleContext) -> Result<(), BoxError> {
        check_config_map(context.config())?;
        let _ = self
            .pretty
            .set(config_bool(context.config(), "pretty", false)?);
        Ok(())
    }

    fn process(&self, input: Value) -> Result<Value, BoxError> {
        let json = input.to_json()?;
        let text = if self.pretty.get().copied().unwrap_or(false) {
            serde_json::to_string_pretty(&json)?
        } else {
            serde_json::to_string(&json)?
        };
        Ok(Value::Str(text))
    }
}

fn json_encode(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::<JsonEncode>::default())
}

native_module!(NativeModule::new("json-encode", "1.0.0", json_encode)
    .with_types("any", "str")
    .with_config_type("{pretty?: bool | null, ...} | null")
    .with_capabilities(&["encode", "json"])
    .with_metadata(&[("description", "Encodes a value as JSON text.")]));

struct JsonDecode;

impl Module for JsonDecode {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        Ok(decode_json(input.bytes_or_text()?)?)
    }
}

/// JSON text into a `Value`. An integer no `i64` holds is an error naming
/// where it is, never a float that rounds it (the parser reads integers past
/// `u64` as floats, so the text is looked at again when it holds one).
fn decode_json(bytes: &[u8]) -> Result<Value> {
    let parsed = serde_json::from_slice::<Value>(bytes);
    // Only text with a run of 19 or more digits can hold such an integer.
    let long_run = bytes
        .split(|b| !b.is_ascii_digit())
        .any(|run| run.len() >= 19);
    let about_numbers = match &parsed {
        Ok(_) => true,
        Err(e) => e.is_data(),
    };
    if long_run && about_numbers {
        if let Some((literal, path)) = oversized_integer(bytes) {
            return Err(Error::invalid_input(format!(
                "the integer {literal} at {path} does not fit in a 64-bit signed integer; it is refused rather than rounded to a float (send it as a string)"
            )));
        }
    }
    parsed.map_err(|e| Error::invalid_input(format!("not valid JSON: {e}")))
}

/// The first integer literal (no fraction, no exponent) in JSON `text` that
/// no `i64` holds, with its path (`$.a[2].b`).
fn oversized_integer(text: &[u8]) -> Option<(String, String)> {
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let path = |stack: &[Frame]| {
        let mut out = String::from("$");
        for frame in stack {
            match frame {
                Frame::Array(i) => out.push_str(&format!("[{i}]")),
                Frame::Object(Some(k))
                    if !k.is_empty() && k.chars().all(|c| c.is_alphanumeric() || c == '_') =>
                {
                    out.push('.');
                    out.push_str(k);
                }
                Frame::Object(Some(k)) => out.push_str(&format!("[{k:?}]")),
                Frame::Object(None) => {}
            }
        }
        out
    };
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    while i < text.len() {
        match text[i] {
            b'"' => {
                let start = i;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    i += if text[i] == b'\\' { 2 } else { 1 };
                }
                let end = (i + 1).min(text.len());
                if let Some(Frame::Object(key)) = stack.last_mut() {
                    let rest = text[end..].iter().find(|b| !b.is_ascii_whitespace());
                    if rest == Some(&b':') {
                        let raw = &text[start..end];
                        *key = Some(serde_json::from_slice::<String>(raw).unwrap_or_else(|_| {
                            String::from_utf8_lossy(raw).trim_matches('"').to_string()
                        }));
                    }
                }
                i = end;
                continue;
            }
            b'{' => stack.push(Frame::Object(None)),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            b',' => {
                if let Some(Frame::Array(n)) = stack.last_mut() {
                    *n += 1;
                }
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                while i < text.len()
                    && matches!(text[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    i += 1;
                }
                let token = &text[start..i];
                let integer = !token.iter().any(|c| matches!(c, b'.' | b'e' | b'E'));
                let token = String::from_utf8_lossy(token);
                if integer && token.parse::<i64>().is_err() {
                    return Some((token.into_owned(), path(&stack)));
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    None
}

fn json_decode(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::new(JsonDecode))
}

native_module!(NativeModule::new("json-decode", "1.0.0", json_decode)
    .with_types("bytes | str", "any")
    .without_config()
    .with_capabilities(&["decode", "json"])
    .with_metadata(&[(
        "description",
        "Decodes JSON text (str or bytes) into a value."
    )]));

// --- text -------------------------------------------------------------------

struct TextEncode;

impl Module for TextEncode {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        match input {
            Value::Str(s) => Ok(Value::Bytes(s.into_bytes())),
            other => {
                Err(Error::invalid_input(format!("expected str, got {}", other.describe())).into())
            }
        }
    }
}

fn text_encode(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::new(TextEncode))
}

native_module!(NativeModule::new("text-encode", "1.0.0", text_encode)
    .with_types("str", "bytes")
    .without_config()
    .with_capabilities(&["encode", "text", "utf8"])
    .with_metadata(&[("description", "Encodes text as UTF-8 bytes.")]));

#[derive(Default)]
struct TextDecode {
    replace: OnceLock<bool>,
}

impl Module for TextDecode {
    fn init(&self, context: &ModuleContext) -> Result<(), BoxError> {
        check_config_map(context.config())?;
        let mode = config_choice(context.config(), "errors", &["strict", "replace"])?;
        let _ = self.replace.set(mode == "replace");
        Ok(())
    }

    fn process(&self, input: Value) -> Result<Value, BoxError> {
        let bytes = match input {
            Value::Bytes(b) => b,
            Value::Str(s) => return Ok(Value::Str(s)),
            other => {
                return Err(Error::invalid_input(format!(
                    "expected bytes, got {}",
                    other.describe()
                ))
                .into())
            }
        };
        if self.replace.get().copied().unwrap_or(false) {
            return Ok(Value::Str(String::from_utf8_lossy(&bytes).into_owned()));
        }
        String::from_utf8(bytes).map(Value::Str).map_err(|e| {
            Error::invalid_input(format!(
                "not valid UTF-8: invalid byte sequence at offset {}",
                e.utf8_error().valid_up_to()
            ))
            .into()
        })
    }
}

fn text_decode(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::<TextDecode>::default())
}

native_module!(NativeModule::new("text-decode", "1.0.0", text_decode)
    .with_types("bytes | str", "str")
    .with_config_type("{errors?: \"strict\" | \"replace\" | null, ...} | null")
    .with_capabilities(&["decode", "text", "utf8"])
    .with_metadata(&[("description", "Decodes UTF-8 bytes into text.")]));

// --- sha256 -----------------------------------------------------------------

#[derive(Default)]
struct Sha256Digest {
    raw: OnceLock<bool>,
}

impl Module for Sha256Digest {
    fn init(&self, context: &ModuleContext) -> Result<(), BoxError> {
        check_config_map(context.config())?;
        let output = config_choice(context.config(), "output", &["hex", "bytes"])?;
        let _ = self.raw.set(output == "bytes");
        Ok(())
    }

    fn process(&self, input: Value) -> Result<Value, BoxError> {
        let digest = Sha256::digest(input.bytes_or_text()?);
        if self.raw.get().copied().unwrap_or(false) {
            Ok(Value::Bytes(digest.to_vec()))
        } else {
            Ok(Value::Str(hex(&digest)))
        }
    }
}

/// Lower-case hexadecimal form of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

fn sha256(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::<Sha256Digest>::default())
}

native_module!(NativeModule::new("sha256", "1.0.0", sha256)
    .with_types("bytes | str", "str | bytes")
    .with_config_type("{output?: \"hex\" | \"bytes\" | null, ...} | null")
    .with_type(ModuleType::Security)
    .with_capabilities(&["digest", "hash", "sha256"])
    .with_metadata(&[(
        "description",
        "SHA-256 digest of bytes or text, as hex (or raw bytes)."
    )]));

// --- base64 -----------------------------------------------------------------

struct Base64Encode;

impl Module for Base64Encode {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        Ok(Value::Str(
            base64::engine::general_purpose::STANDARD.encode(input.bytes_or_text()?),
        ))
    }
}

fn base64_encode(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::new(Base64Encode))
}

native_module!(NativeModule::new("base64-encode", "1.0.0", base64_encode)
    .with_types("bytes | str", "str")
    .without_config()
    .with_capabilities(&["base64", "encode"])
    .with_metadata(&[(
        "description",
        "Encodes bytes or text as standard base64 text."
    )]));

struct Base64Decode;

impl Module for Base64Decode {
    fn process(&self, input: Value) -> Result<Value, BoxError> {
        base64::engine::general_purpose::STANDARD
            .decode(input.bytes_or_text()?)
            .map(Value::Bytes)
            .map_err(|e| Error::invalid_input(format!("not valid base64: {e}")).into())
    }
}

fn base64_decode(_: &ModuleContext) -> Result<Box<dyn Module>, BoxError> {
    Ok(Box::new(Base64Decode))
}

native_module!(NativeModule::new("base64-decode", "1.0.0", base64_decode)
    .with_types("bytes | str", "bytes")
    .without_config()
    .with_capabilities(&["base64", "decode"])
    .with_metadata(&[("description", "Decodes standard base64 text into bytes.")]));
