//! `Value` <-> Rhai `Dynamic`: unit, bool, integer, float, string (and char),
//! blob for bytes, array, object map; opaque values travel as a Rhai custom
//! type and come back unchanged.

use std::sync::Arc;

use rhai::{Array, Blob, Dynamic, ImmutableString, Map};

use crate::error::{Error, Result};
use crate::value::{Opaque, Value, ValueMap, MAX_DEPTH};

/// An opaque value inside a script.
#[derive(Clone)]
pub struct OpaqueHandle(pub Opaque);

/// A script value with no `Value` form, carried as an opaque value.
struct ScriptOnly(Dynamic);

/// `Value` -> `Dynamic`. A value that came through a conversion (from a
/// script, Python or JSON) nests at most [`MAX_DEPTH`] levels.
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

/// `Dynamic` -> `Value`; a script value nested deeper than [`MAX_DEPTH`]
/// levels is an [`Error::InvalidInput`] (the conversion stops there, rather
/// than recursing as deep as the script built it).
pub fn from_dynamic(value: Dynamic) -> Result<Value> {
    // A script that used an opaque value as text may hold that text here.
    if let Some(refused) = super::opaque::refused() {
        dismantle(value);
        return Err(refused);
    }
    convert_dynamic(value, 0)
}

fn convert_dynamic(value: Dynamic, depth: usize) -> Result<Value> {
    if depth > MAX_DEPTH {
        dismantle(value);
        return Err(too_deep());
    }
    Ok(if value.is_unit() {
        Value::Null
    } else if let Ok(b) = value.as_bool() {
        // Not `value.clone().try_cast()`: cloning an array clones all of it.
        Value::Bool(b)
    } else if let Ok(i) = value.as_int() {
        Value::Int(i)
    } else if let Ok(f) = value.as_float() {
        Value::Float(f)
    } else if value.is_string() {
        Value::Str(value.into_string().unwrap_or_default())
    } else if let Ok(c) = value.as_char() {
        Value::Str(c.to_string())
    } else if value.is_blob() {
        Value::Bytes(value.cast::<Blob>())
    } else if value.is_array() {
        let mut items = value.cast::<Array>().into_iter();
        let mut out = Vec::with_capacity(items.len());
        while let Some(item) = items.next() {
            match convert_dynamic(item, depth + 1) {
                Ok(v) => out.push(v),
                Err(e) => {
                    items.for_each(dismantle);
                    return Err(e);
                }
            }
        }
        Value::List(out)
    } else if value.is_map() {
        let mut entries = value.cast::<Map>().into_iter();
        let mut out = ValueMap::default();
        while let Some((k, v)) = entries.next() {
            match convert_dynamic(v, depth + 1) {
                Ok(v) => {
                    out.insert(k.to_string(), v);
                }
                Err(e) => {
                    entries.for_each(|(_, v)| dismantle(v));
                    return Err(e);
                }
            }
        }
        Value::Map(out)
    } else if value.is::<OpaqueHandle>() {
        Value::Opaque(value.cast::<OpaqueHandle>().0)
    } else {
        // Named by its Rhai type, so errors about it say what it is.
        let name = format!("Rhai {}", value.type_name());
        Value::Opaque(Opaque::named(Arc::new(ScriptOnly(value)), name))
    })
}

/// Drops a script value of any depth without recursing: containers are
/// emptied into a work list first, so each one dropped is flat.
fn dismantle(value: Dynamic) {
    let mut pending = vec![value];
    while let Some(v) = pending.pop() {
        if v.is_array() {
            pending.extend(v.cast::<Array>());
        } else if v.is_map() {
            pending.extend(v.cast::<Map>().into_values());
        }
    }
}

fn too_deep() -> Error {
    Error::invalid_input(format!(
        "a script value nests deeper than {MAX_DEPTH} levels of arrays and maps"
    ))
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
        assert_eq!(from_dynamic(to_dynamic(v.clone())).unwrap(), v);
        let o = Opaque::new(7u8);
        match from_dynamic(to_dynamic(Value::Opaque(o.clone()))).unwrap() {
            Value::Opaque(back) => assert!(back.ptr_eq(&o)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn nesting_past_the_limit_is_an_error_not_a_deep_recursion() {
        let mut deep = Dynamic::from_array(Array::new());
        for _ in 0..MAX_DEPTH {
            deep = Dynamic::from_array(vec![deep]);
        }
        // MAX_DEPTH levels below the top: allowed.
        assert!(from_dynamic(deep.clone()).is_ok());
        let deeper = Dynamic::from_array(vec![deep]);
        let err = from_dynamic(deeper).unwrap_err();
        assert!(matches!(err, Error::InvalidInput { .. }), "{err}");
        assert!(err.to_string().contains("256 levels"), "{err}");
        // A map inside a list counts too.
        let mut mixed = Dynamic::UNIT;
        for i in 0..10_000 {
            mixed = if i % 2 == 0 {
                Dynamic::from_array(vec![mixed])
            } else {
                let mut m = Map::new();
                m.insert("k".into(), mixed);
                Dynamic::from_map(m)
            };
        }
        assert!(from_dynamic(mixed).is_err());
    }
}
