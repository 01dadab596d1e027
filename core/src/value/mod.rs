//! [`Value`]: what flows between modules.

mod convert;

pub use convert::{from_value, to_value};
use std::any::Any;
use std::fmt;
use std::sync::Arc;

use indexmap::IndexMap;
use serde::de::{MapAccess, SeqAccess, Visitor};
use serde::ser::{self, SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::{Error, Result};

/// How deep arrays and maps may nest in a value made by a conversion (from
/// a script, from Python): past this, converting is an
/// [`Error::InvalidInput`], never a recursion as deep as the input.
pub const MAX_DEPTH: usize = 256;

/// An ordered map of values, the payload of [`Value::Map`].
pub type ValueMap = IndexMap<String, Value>;

/// A value the core cannot look into: a host object (a Python object, any
/// `Arc<dyn Any + Send + Sync>`) that passes through modules unchanged and
/// uncopied. Two opaque values are equal when they are the same object.
#[derive(Clone)]
pub struct Opaque(Arc<dyn Any + Send + Sync>, Arc<str>);

impl Opaque {
    /// Wrap any shareable value.
    pub fn new<T: Any + Send + Sync>(value: T) -> Self {
        Opaque(Arc::new(value), Arc::from(std::any::type_name::<T>()))
    }

    /// Wrap an existing `Arc` without copying (its type is named by what it
    /// is known as here: use [`named`](Self::named) to say more).
    pub fn from_arc(value: Arc<dyn Any + Send + Sync>) -> Self {
        Opaque(value, Arc::from("an opaque value"))
    }

    /// Wrap `value`, naming its type for errors and debugging (a binding
    /// names the foreign type it holds, such as a Python class).
    pub fn named(value: Arc<dyn Any + Send + Sync>, type_name: impl Into<Arc<str>>) -> Self {
        Opaque(value, type_name.into())
    }

    /// The name of the wrapped value's type, as errors give it.
    pub fn type_name(&self) -> &str {
        &self.1
    }

    /// Borrow the inner value as `T`, if it is one.
    pub fn downcast_ref<T: Any>(&self) -> Option<&T> {
        self.0.downcast_ref::<T>()
    }

    /// The shared handle.
    pub fn as_arc(&self) -> &Arc<dyn Any + Send + Sync> {
        &self.0
    }

    /// Whether both handles point to the same object.
    pub fn ptr_eq(&self, other: &Opaque) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl fmt::Debug for Opaque {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Opaque<{}>({:p})",
            self.1,
            Arc::as_ptr(&self.0) as *const ()
        )
    }
}

impl PartialEq for Opaque {
    fn eq(&self, other: &Self) -> bool {
        self.ptr_eq(other)
    }
}

/// The data that flows between modules.
///
/// Serde round-trips every variant but [`Value::Opaque`]; serialising an
/// opaque value is an error. `Bytes` serialise as bytes, which formats without
/// a bytes type (JSON) write as an array of numbers.
///
/// ```
/// use std::collections::BTreeMap;
/// use module_registry::Value;
///
/// let v = Value::from_iter([("name", Value::from("ada")), ("age", Value::from(36u8))]);
/// assert_eq!(v.to_string(), r#"{"name": "ada", "age": 36}"#);
/// assert_eq!(v.get("age").and_then(Value::as_int), Some(36));
/// let age: i64 = v.get("age").unwrap().try_into()?;
/// assert_eq!(age, 36);
/// // Wrong kinds are typed errors, never silent conversions.
/// assert!(i64::try_from(Value::from("36")).is_err());
/// let tags = Value::from(vec!["a", "b"]);
/// let scores = Value::from(BTreeMap::from([("x".to_string(), 1.5f64)]));
/// assert_eq!(tags.as_list().map(|l| l.len()), Some(2));
/// assert_eq!(scores.get("x"), Some(&Value::Float(1.5)));
/// assert_eq!(Value::from(vec![0u8, 255]), Value::Bytes(vec![0, 255]));
/// # Ok::<(), module_registry::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// No value.
    #[default]
    Null,
    /// A boolean.
    Bool(bool),
    /// A signed 64-bit integer.
    Int(i64),
    /// A 64-bit float.
    Float(f64),
    /// UTF-8 text.
    Str(String),
    /// Raw bytes.
    Bytes(Vec<u8>),
    /// A list of values.
    List(Vec<Value>),
    /// An ordered map from strings to values.
    Map(ValueMap),
    /// A host object passed through untouched.
    Opaque(Opaque),
}

impl Value {
    /// The variant's name, for error messages (`"str"`, `"bytes"`, ...).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "map",
            Value::Opaque(_) => "opaque",
        }
    }

    /// The variant's name for an error message, naming an opaque value's
    /// type too (`"opaque value (Python numpy.ndarray)"`): what a module
    /// says it got.
    pub fn describe(&self) -> std::borrow::Cow<'static, str> {
        match self {
            Value::Opaque(o) => format!("opaque value ({})", o.type_name()).into(),
            other => other.type_name().into(),
        }
    }

    /// Whether this is [`Value::Null`].
    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The text, if this is a `Str`.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// The bytes, if this is `Bytes`.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Value::Bytes(b) => Some(b),
            _ => None,
        }
    }

    /// The integer, if this is an `Int`.
    pub fn as_int(&self) -> Option<i64> {
        match self {
            Value::Int(i) => Some(*i),
            _ => None,
        }
    }

    /// The number as a float, if this is an `Int` or a `Float`.
    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            Value::Int(i) => Some(*i as f64),
            _ => None,
        }
    }

    /// The boolean, if this is a `Bool`.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The list, if this is a `List`.
    pub fn as_list(&self) -> Option<&[Value]> {
        match self {
            Value::List(l) => Some(l),
            _ => None,
        }
    }

    /// The map, if this is a `Map`.
    pub fn as_map(&self) -> Option<&ValueMap> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// Look up `key` if this is a `Map`.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.as_map().and_then(|m| m.get(key))
    }

    /// Bytes of a `Bytes` value, or the UTF-8 bytes of a `Str`; anything else
    /// is an [`Error::InvalidInput`]. Handy for modules that accept both.
    pub fn bytes_or_text(&self) -> Result<&[u8]> {
        match self {
            Value::Bytes(b) => Ok(b),
            Value::Str(s) => Ok(s.as_bytes()),
            other => Err(Error::invalid_input(format!(
                "expected bytes or str, got {}",
                other.describe()
            ))),
        }
    }

    /// Convert to a `serde_json::Value`. Bytes and opaque values have no JSON
    /// form and give an [`Error::InvalidInput`]; non-finite floats become `null`.
    pub fn to_json(&self) -> Result<serde_json::Value> {
        use serde_json::Value as J;
        Ok(match self {
            Value::Null => J::Null,
            Value::Bool(b) => J::Bool(*b),
            Value::Int(i) => J::from(*i),
            Value::Float(f) => J::Number(serde_json::Number::from_f64(*f).ok_or_else(|| {
                Error::invalid_input(format!("{f} has no JSON form (JSON numbers are finite)"))
            })?),
            Value::Str(s) => J::String(s.clone()),
            Value::Bytes(_) => {
                return Err(Error::invalid_input(
                    "bytes have no JSON form; decode them to text first",
                ))
            }
            Value::List(l) => J::Array(l.iter().map(Value::to_json).collect::<Result<_>>()?),
            Value::Map(m) => J::Object(
                m.iter()
                    .map(|(k, v)| Ok((k.clone(), v.to_json()?)))
                    .collect::<Result<_>>()?,
            ),
            Value::Opaque(o) => {
                return Err(Error::invalid_input(format!(
                    "an opaque value ({}) has no JSON form",
                    o.type_name()
                )))
            }
        })
    }

    /// Convert from a `serde_json::Value` (numbers become `Int` when they are
    /// whole and fit in an `i64`, `Float` otherwise: an integer past
    /// `i64::MAX` is rounded; [`try_from_json`](Self::try_from_json) refuses it).
    pub fn from_json(json: serde_json::Value) -> Value {
        match Self::json_to_value(json, false) {
            Ok(v) => v,
            Err(_) => unreachable!("only a strict conversion fails"),
        }
    }

    /// Convert from a `serde_json::Value`, refusing an integer no `i64`
    /// holds (a `u64` past `i64::MAX`) with an [`Error::InvalidInput`]
    /// rather than rounding it to a float.
    pub fn try_from_json(json: serde_json::Value) -> Result<Value> {
        Self::json_to_value(json, true)
    }

    fn json_to_value(json: serde_json::Value, strict: bool) -> Result<Value> {
        use serde_json::Value as J;
        Ok(match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int(i),
                None if strict && n.is_u64() => {
                    return Err(Error::invalid_input(format!(
                        "the integer {n} does not fit in a 64-bit signed integer; it is refused rather than rounded to a float"
                    )))
                }
                None => Value::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::Str(s),
            J::Array(a) => Value::List(
                a.into_iter()
                    .map(|v| Self::json_to_value(v, strict))
                    .collect::<Result<_>>()?,
            ),
            J::Object(o) => Value::Map(
                o.into_iter()
                    .map(|(k, v)| Ok((k, Self::json_to_value(v, strict)?)))
                    .collect::<Result<_>>()?,
            ),
        })
    }
}

macro_rules! from_impls {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl From<$t> for Value {
            fn from($v: $t) -> Self { $e }
        })*
    };
}

from_impls! {
    &str => |v| Value::Str(v.to_owned()),
    String => |v| Value::Str(v),
    &String => |v| Value::Str(v.clone()),
    &[u8] => |v| Value::Bytes(v.to_vec()),
    Vec<u8> => |v| Value::Bytes(v),
    i64 => |v| Value::Int(v),
    i32 => |v| Value::Int(v.into()),
    u32 => |v| Value::Int(v.into()),
    f64 => |v| Value::Float(v),
    bool => |v| Value::Bool(v),
    () => |_v| Value::Null,
    Vec<Value> => |v| Value::List(v),
    ValueMap => |v| Value::Map(v),
    Opaque => |v| Value::Opaque(v),
}

impl<const N: usize> From<&[u8; N]> for Value {
    fn from(v: &[u8; N]) -> Self {
        Value::Bytes(v.to_vec())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

impl<K: Into<String>, V: Into<Value>> FromIterator<(K, V)> for Value {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(iter: I) -> Self {
        Value::Map(
            iter.into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        match self {
            Value::Null => serializer.serialize_unit(),
            Value::Bool(b) => serializer.serialize_bool(*b),
            Value::Int(i) => serializer.serialize_i64(*i),
            Value::Float(f) => serializer.serialize_f64(*f),
            Value::Str(s) => serializer.serialize_str(s),
            Value::Bytes(b) => serializer.serialize_bytes(b),
            Value::List(l) => {
                let mut seq = serializer.serialize_seq(Some(l.len()))?;
                for v in l {
                    seq.serialize_element(v)?;
                }
                seq.end()
            }
            Value::Map(m) => {
                let mut map = serializer.serialize_map(Some(m.len()))?;
                for (k, v) in m {
                    map.serialize_entry(k, v)?;
                }
                map.end()
            }
            Value::Opaque(o) => Err(ser::Error::custom(format!(
                "an opaque value ({}) cannot be serialized",
                o.type_name()
            ))),
        }
    }
}

struct ValueVisitor;

impl<'de> Visitor<'de> for ValueVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any value")
    }
    fn visit_unit<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> std::result::Result<Value, D::Error> {
        Value::deserialize(d)
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Value, E> {
        Ok(Value::Int(v))
    }
    fn visit_u64<E: serde::de::Error>(self, v: u64) -> std::result::Result<Value, E> {
        // A float would round it: refuse rather than change the number.
        i64::try_from(v).map(Value::Int).map_err(|_| {
            E::custom(format!(
                "integer {v} does not fit in a 64-bit signed integer"
            ))
        })
    }
    fn visit_f64<E>(self, v: f64) -> std::result::Result<Value, E> {
        Ok(Value::Float(v))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Value, E> {
        Ok(Value::Str(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Value, E> {
        Ok(Value::Str(v))
    }
    fn visit_bytes<E>(self, v: &[u8]) -> std::result::Result<Value, E> {
        Ok(Value::Bytes(v.to_vec()))
    }
    fn visit_byte_buf<E>(self, v: Vec<u8>) -> std::result::Result<Value, E> {
        Ok(Value::Bytes(v))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<Value, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(4096));
        while let Some(v) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::List(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Value, A::Error> {
        let mut out = ValueMap::with_capacity(map.size_hint().unwrap_or(0).min(4096));
        while let Some((k, v)) = map.next_entry::<String, Value>()? {
            out.insert(k, v);
        }
        Ok(Value::Map(out))
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Value, D::Error> {
        deserializer.deserialize_any(ValueVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_impls_cover_the_seed_forms() {
        assert_eq!(Value::from(b"ab"), Value::Bytes(vec![b'a', b'b']));
        assert_eq!(Value::from(&b"ab"[..]), Value::Bytes(vec![b'a', b'b']));
        assert_eq!(Value::from("x"), Value::Str("x".into()));
        assert_eq!(Value::from(3i64), Value::Int(3));
        assert_eq!(Value::from(1.5), Value::Float(1.5));
        assert_eq!(Value::from(true), Value::Bool(true));
        assert_eq!(Value::from(None::<i64>), Value::Null);
    }

    #[test]
    fn opaque_equality_is_identity() {
        let a = Opaque::new(5u8);
        let b = Opaque::new(5u8);
        assert_eq!(Value::Opaque(a.clone()), Value::Opaque(a.clone()));
        assert_ne!(Value::Opaque(a), Value::Opaque(b));
    }

    #[test]
    fn json_round_trip_keeps_order_and_types() {
        let v: Value = [
            ("b", Value::Int(1)),
            ("a", Value::List(vec![Value::Float(0.5), Value::Null])),
        ]
        .into_iter()
        .collect();
        let text = serde_json::to_string(&v).unwrap();
        assert_eq!(text, r#"{"b":1,"a":[0.5,null]}"#);
        let back: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v);
        assert_eq!(Value::from_json(v.to_json().unwrap()), v);
    }

    #[test]
    fn opaque_does_not_serialize() {
        let err = serde_json::to_string(&Value::Opaque(Opaque::new(1u8))).unwrap_err();
        assert!(err.to_string().contains("opaque value (u8)"), "{err}");
        let err = Value::Opaque(Opaque::new(std::time::Instant::now()))
            .to_json()
            .unwrap_err();
        assert!(err.to_string().contains("std::time::Instant"), "{err}");
        assert!(Value::Bytes(vec![1]).to_json().is_err());
    }
}
