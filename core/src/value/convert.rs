//! Values to and from Rust types: `From` for the common types, `TryFrom`
//! back, `Display`, and [`to_value`] / [`from_value`] through serde for
//! structs (a module reading its config into a typed struct).

use std::borrow::{Borrow, Cow};
use std::collections::{BTreeMap, HashMap};
use std::fmt;

use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{Value, MAX_DEPTH};
use crate::error::{Error, Result};

macro_rules! from_ints {
    ($($t:ty),*) => {
        $(impl From<$t> for Value {
            fn from(v: $t) -> Self { Value::Int(i64::from(v)) }
        })*
    };
}

from_ints!(i8, i16, u8, u16);

impl From<f32> for Value {
    fn from(v: f32) -> Self {
        Value::Float(f64::from(v))
    }
}

impl From<char> for Value {
    fn from(v: char) -> Self {
        Value::Str(v.to_string())
    }
}

impl From<Cow<'_, str>> for Value {
    fn from(v: Cow<'_, str>) -> Self {
        Value::Str(v.into_owned())
    }
}

impl<T: Into<Value>> From<HashMap<String, T>> for Value {
    /// A map; its keys sorted, so that equal maps give equal values.
    fn from(v: HashMap<String, T>) -> Self {
        let mut entries: Vec<(String, T)> = v.into_iter().collect();
        entries.sort_by(|a, b| a.0.cmp(&b.0));
        entries.into_iter().collect()
    }
}

impl<T: Into<Value>> From<BTreeMap<String, T>> for Value {
    fn from(v: BTreeMap<String, T>) -> Self {
        v.into_iter().collect()
    }
}

macro_rules! from_lists {
    ($($t:ty),*) => {
        $(impl From<Vec<$t>> for Value {
            fn from(v: Vec<$t>) -> Self { Value::List(v.into_iter().map(Value::from).collect()) }
        })*
    };
}

// Not a blanket `Vec<T>`: `Vec<u8>` is `Bytes`.
from_lists!(&str, String, i64, f64, bool);

/// The error of a `TryFrom<Value>` that found another kind of value.
fn expected(what: &str, found: &Value) -> Error {
    Error::invalid_input(format!("expected {what}, found {}", found.describe()))
}

/// `TryFrom<&Value>` through the value's own accessor (`as_int`, ...).
macro_rules! try_from_ref {
    ($($t:ty => $what:literal, |$v:ident| $get:expr;)*) => {
        $(impl TryFrom<&Value> for $t {
            type Error = Error;
            fn try_from($v: &Value) -> Result<$t> {
                $get.ok_or_else(|| expected($what, $v))
            }
        })*
    };
}

try_from_ref! {
    i64 => "an integer", |v| v.as_int();
    f64 => "a number", |v| v.as_float();
    bool => "a bool", |v| v.as_bool();
    String => "a string", |v| v.as_str().map(str::to_string);
    Vec<u8> => "bytes", |v| v.as_bytes().map(<[u8]>::to_vec);
}

impl TryFrom<&Value> for u64 {
    type Error = Error;
    fn try_from(v: &Value) -> Result<u64> {
        let i = v
            .as_int()
            .ok_or_else(|| expected("a non-negative integer", v))?;
        u64::try_from(i).map_err(|_| {
            Error::invalid_input(format!("expected a non-negative integer, found {i}"))
        })
    }
}

macro_rules! try_from_owned {
    ($($t:ty),*) => {
        $(impl TryFrom<Value> for $t {
            type Error = Error;
            fn try_from(v: Value) -> Result<$t> { <$t>::try_from(&v) }
        })*
    };
}

/// `TryFrom<&Value>` for the other integer widths: the value must be an
/// `Int` that fits, or the error says which range it missed.
macro_rules! try_from_ints {
    ($($t:ty),*) => {
        $(impl TryFrom<&Value> for $t {
            type Error = Error;
            fn try_from(v: &Value) -> Result<$t> {
                let i = v.as_int().ok_or_else(|| expected("an integer", v))?;
                <$t>::try_from(i).map_err(|_| {
                    Error::invalid_input(format!(
                        "expected an integer from {} to {} ({}), found {i}",
                        <$t>::MIN,
                        <$t>::MAX,
                        stringify!($t)
                    ))
                })
            }
        })*
    };
}

try_from_ints!(i8, i16, i32, isize, u8, u16, u32, usize, i128, u128);

try_from_owned!(i64, u64, f64, bool, i8, i16, i32, isize, u8, u16, u32, usize, i128, u128);

impl TryFrom<&Value> for f32 {
    type Error = Error;
    /// A number as `f32` (rounded to the nearest `f32`, as `as` does).
    fn try_from(v: &Value) -> Result<f32> {
        #[allow(clippy::cast_possible_truncation)]
        v.as_float()
            .map(|x| x as f32)
            .ok_or_else(|| expected("a number", v))
    }
}

impl TryFrom<Value> for f32 {
    type Error = Error;
    fn try_from(v: Value) -> Result<f32> {
        f32::try_from(&v)
    }
}

/// A JSON value as a [`Value`], as [`Value::from_json`] converts it:
/// `serde_json::json!({"a": 1}).into()`.
impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Self {
        Value::from_json(json)
    }
}

/// A [`Value`] as JSON, as [`Value::to_json`] converts it: bytes, opaque
/// values and non-finite floats have no JSON form and are an error.
impl TryFrom<Value> for serde_json::Value {
    type Error = Error;
    fn try_from(v: Value) -> Result<serde_json::Value> {
        v.to_json()
    }
}

impl TryFrom<&Value> for serde_json::Value {
    type Error = Error;
    fn try_from(v: &Value) -> Result<serde_json::Value> {
        v.to_json()
    }
}

/// `Value::Null`, what indexing gives for a missing key or position.
static NULL: Value = Value::Null;

/// `value["key"]`: the map's entry, or `Value::Null` when the key is missing
/// or the value is not a map (as `serde_json::Value` indexes).
///
/// ```
/// use module_registry::Value;
/// let v: Value = serde_json::json!({"user": {"name": "ada", "langs": ["en", "fr"]}}).into();
/// assert_eq!(v["user"]["name"], Value::from("ada"));
/// assert_eq!(v["user"]["langs"][1], Value::from("fr"));
/// assert!(v["missing"]["deeper"][3].is_null());
/// ```
impl std::ops::Index<&str> for Value {
    type Output = Value;
    fn index(&self, key: &str) -> &Value {
        self.get(key).unwrap_or(&NULL)
    }
}

/// `value[i]`: the list's item, or `Value::Null` when `i` is past the end
/// or the value is not a list.
impl std::ops::Index<usize> for Value {
    type Output = Value;
    fn index(&self, i: usize) -> &Value {
        self.as_list().and_then(|l| l.get(i)).unwrap_or(&NULL)
    }
}

impl TryFrom<Value> for String {
    type Error = Error;
    fn try_from(v: Value) -> Result<String> {
        match v {
            Value::Str(s) => Ok(s),
            other => Err(expected("a string", &other)),
        }
    }
}

impl TryFrom<Value> for Vec<u8> {
    type Error = Error;
    fn try_from(v: Value) -> Result<Vec<u8>> {
        match v {
            Value::Bytes(b) => Ok(b),
            other => Err(expected("bytes", &other)),
        }
    }
}

/// Any serializable value as a [`Value`] (through its JSON form, as
/// `serde_json::to_value`): structs and maps become maps, sequences lists;
/// an integer no `i64` holds (a `u64` past `i64::MAX`) is an error, not a
/// rounded float. (A NaN or infinite float becomes null here, as serde_json makes
/// it; build such a `Value::Float` directly.)
///
/// ```
/// #[derive(serde::Serialize)]
/// struct Greeting { greeting: String, times: u32 }
///
/// let v = module_registry::to_value(&Greeting { greeting: "hi".into(), times: 2 })?;
/// assert_eq!(v.to_string(), r#"{"greeting": "hi", "times": 2}"#);
/// # Ok::<(), module_registry::Error>(())
/// ```
pub fn to_value<T: Serialize + ?Sized>(value: &T) -> Result<Value> {
    Value::try_from_json(serde_json::to_value(value)?)
}

/// A [`Value`] as any deserializable type (through its JSON form, as
/// `serde_json::from_value`): a module reads its config into a typed struct.
/// Bytes and opaque values have no JSON form and are an error.
///
/// ```
/// use module_registry::{from_value, Value};
///
/// #[derive(serde::Deserialize)]
/// struct Config { greeting: String, #[serde(default)] times: u32 }
///
/// let config: Config = from_value([("greeting", "hello")].into_iter().collect::<Value>())?;
/// assert_eq!((config.greeting.as_str(), config.times), ("hello", 0));
/// assert!(from_value::<Config>(Value::Int(1)).is_err());
/// # Ok::<(), module_registry::Error>(())
/// ```
///
/// It takes the value or a reference to it: `from_value::<Config>(&value)`
/// needs no clone.
pub fn from_value<T: DeserializeOwned>(value: impl Borrow<Value>) -> Result<T> {
    Ok(serde_json::from_value(value.borrow().to_json()?)?)
}

/// JSON-like text: `null`, `true`, `3`, `1.5`, `"text"` (quoted, escaped),
/// `b"\x00bytes"`, `[1, 2]`, `{"key": value}`, `<opaque type>`; nesting past
/// [`MAX_DEPTH`] is shown as `…`.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_value(self, f, 0)
    }
}

fn write_value(v: &Value, f: &mut fmt::Formatter<'_>, depth: usize) -> fmt::Result {
    if depth >= MAX_DEPTH {
        return f.write_str("…");
    }
    match v {
        Value::Null => f.write_str("null"),
        Value::Bool(b) => write!(f, "{b}"),
        Value::Int(i) => write!(f, "{i}"),
        Value::Float(x) => write!(f, "{x:?}"),
        Value::Str(s) => write!(f, "{s:?}"),
        Value::Bytes(b) => write!(f, "b\"{}\"", b.escape_ascii()),
        Value::List(items) => {
            f.write_str("[")?;
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write_value(item, f, depth + 1)?;
            }
            f.write_str("]")
        }
        Value::Map(map) => {
            f.write_str("{")?;
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                write!(f, "{k:?}: ")?;
                write_value(item, f, depth + 1)?;
            }
            f.write_str("}")
        }
        Value::Opaque(o) => write!(f, "<opaque {}>", o.type_name()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_types_convert_both_ways() {
        assert_eq!(Value::from(7u8), Value::Int(7));
        assert_eq!(Value::from(-7i16), Value::Int(-7));
        assert_eq!(Value::from(1.5f32), Value::Float(1.5));
        assert_eq!(Value::from('x'), Value::from("x"));
        assert_eq!(Value::from(Cow::Borrowed("c")), Value::from("c"));
        assert_eq!(
            Value::from(vec!["a", "b"]),
            Value::List(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            Value::from(vec![1i64, 2]),
            Value::List(vec![Value::Int(1), Value::Int(2)])
        );
        assert_eq!(Value::from(vec![1u8, 2]), Value::Bytes(vec![1, 2]));
        let hm: HashMap<String, i64> = [("b".to_string(), 2), ("a".to_string(), 1)].into();
        let bt: BTreeMap<String, i64> = [("a".to_string(), 1), ("b".to_string(), 2)].into();
        assert_eq!(Value::from(hm), Value::from(bt));
        assert_eq!(i64::try_from(Value::Int(3)).unwrap(), 3);
        assert_eq!(u64::try_from(&Value::Int(3)).unwrap(), 3);
        assert!(u64::try_from(Value::Int(-3)).is_err());
        assert_eq!(f64::try_from(Value::Int(2)).unwrap(), 2.0);
        assert!(bool::try_from(Value::Null).is_err());
        assert_eq!(String::try_from(Value::from("s")).unwrap(), "s");
        assert_eq!(Vec::<u8>::try_from(Value::Bytes(vec![9])).unwrap(), vec![9]);
        let err = String::try_from(Value::Int(1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid input: expected a string, found int"
        );
    }

    #[test]
    fn display_is_json_like_and_bounded() {
        let v: Value = [(
            "k",
            Value::List(vec![Value::Null, Value::Bytes(b"\x00a".to_vec())]),
        )]
        .into_iter()
        .collect();
        assert_eq!(v.to_string(), r#"{"k": [null, b"\x00a"]}"#);
        assert_eq!(Value::from("a\"b").to_string(), r#""a\"b""#);
        assert_eq!(Value::Float(1.0).to_string(), "1.0");
        let mut deep = Value::Null;
        for _ in 0..100_000 {
            deep = Value::List(vec![deep]);
        }
        let text = deep.to_string();
        assert!(!text.ends_with("…") && text.contains("…"));
        // Dropping a value this deep is the caller's business; keep the test's stack small.
        let mut v = deep;
        while let Value::List(mut items) = v {
            v = items.pop().unwrap_or(Value::Null);
        }
    }
}
