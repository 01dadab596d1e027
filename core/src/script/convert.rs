//! `Value` <-> Rhai `Dynamic`: unit, bool, integer, float, string (and char),
//! blob for bytes, array, object map; opaque values travel as a Rhai custom
//! type and come back unchanged.

use std::sync::Arc;

use rhai::{Array, Blob, Dynamic, ImmutableString, Map};

use crate::value::{Opaque, Value};

/// An opaque value inside a script.
#[derive(Clone)]
pub struct OpaqueHandle(pub Opaque);

/// A script value with no `Value` form, carried as an opaque value.
struct ScriptOnly(Dynamic);

/// `Value` -> `Dynamic`.
pub fn to_dynamic(value: Value) -> Dynamic {
    match value {
        Value::Null => Dynamic::UNIT,
        Value::Bool(b) => Dynamic::from_bool(b),
        Value::Int(i) => Dynamic::from_int(i),
        Value::Float(f) => Dynamic::from_float(f),
        Value::Str(s) => Dynamic::from(ImmutableString::from(s)),
        Value::Bytes(b) => Dynamic::from_blob(b),
        Value::List(items) => Dynamic::from_array(items.into_iter().map(to_dynamic).collect()),
        Value::Map(map) => Dynamic::from_map(
            map.into_iter()
                .map(|(k, v)| (k.into(), to_dynamic(v)))
                .collect(),
        ),
        Value::Opaque(o) => match o.downcast_ref::<ScriptOnly>() {
            Some(inner) => inner.0.clone(),
            None => Dynamic::from(OpaqueHandle(o)),
        },
    }
}

/// `Dynamic` -> `Value`.
pub fn from_dynamic(value: Dynamic) -> Value {
    if value.is_unit() {
        return Value::Null;
    }
    if let Some(b) = value.clone().try_cast::<bool>() {
        return Value::Bool(b);
    }
    if let Ok(i) = value.as_int() {
        return Value::Int(i);
    }
    if let Ok(f) = value.as_float() {
        return Value::Float(f);
    }
    if value.is_string() {
        return Value::Str(value.into_string().unwrap_or_default());
    }
    if let Ok(c) = value.as_char() {
        return Value::Str(c.to_string());
    }
    if value.is_blob() {
        return Value::Bytes(value.cast::<Blob>());
    }
    if value.is_array() {
        return Value::List(
            value
                .cast::<Array>()
                .into_iter()
                .map(from_dynamic)
                .collect(),
        );
    }
    if value.is_map() {
        return Value::Map(
            value
                .cast::<Map>()
                .into_iter()
                .map(|(k, v)| (k.to_string(), from_dynamic(v)))
                .collect(),
        );
    }
    if let Some(h) = value.clone().try_cast::<OpaqueHandle>() {
        return Value::Opaque(h.0);
    }
    Value::Opaque(Opaque::from_arc(Arc::new(ScriptOnly(value))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip_through_dynamic() {
        let v: Value = [
            ("n", Value::Null),
            ("b", Value::Bool(true)),
            ("i", Value::Int(-3)),
            ("f", Value::Float(0.5)),
            ("s", Value::from("x")),
            ("y", Value::Bytes(vec![0, 255])),
            ("l", Value::List(vec![Value::Int(1), Value::from("a")])),
        ]
        .into_iter()
        .collect();
        assert_eq!(from_dynamic(to_dynamic(v.clone())), v);
        let o = Opaque::new(7u8);
        match from_dynamic(to_dynamic(Value::Opaque(o.clone()))) {
            Value::Opaque(back) => assert!(back.ptr_eq(&o)),
            other => panic!("{other:?}"),
        }
    }
}
