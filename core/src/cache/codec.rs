//! The compact binary form of values kept on disk: a tag byte, then
//! lengths (LEB128) and contents; bytes stay bytes. Opaque host objects
//! have no such form (they stay in memory only).

use crate::error::{Error, Result};
use crate::value::{Value, ValueMap, MAX_DEPTH};

/// `value` encoded, or `None` when it holds an opaque object.
pub(crate) fn encode(value: &Value) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    write(&mut out, value)?;
    Some(out)
}

/// The value `bytes` encode; an error for anything else (a damaged entry).
pub(crate) fn decode(bytes: &[u8]) -> Result<Value> {
    let mut reader = Reader { bytes, at: 0 };
    let value = reader.value(0)?;
    if reader.at != bytes.len() {
        return Err(damaged("trailing bytes"));
    }
    Ok(value)
}

fn write(out: &mut Vec<u8>, value: &Value) -> Option<()> {
    match value {
        Value::Null => out.push(0),
        Value::Bool(b) => out.extend([1, u8::from(*b)]),
        Value::Int(i) => {
            out.push(2);
            out.extend(i.to_le_bytes());
        }
        Value::Float(f) => {
            out.push(3);
            out.extend(f.to_bits().to_le_bytes());
        }
        Value::Str(s) => {
            out.push(4);
            bytes(out, s.as_bytes());
        }
        Value::Bytes(b) => {
            out.push(5);
            bytes(out, b);
        }
        Value::List(items) => {
            out.push(6);
            length(out, items.len());
            for item in items {
                write(out, item)?;
            }
        }
        Value::Map(map) => {
            out.push(7);
            length(out, map.len());
            for (key, item) in map {
                bytes(out, key.as_bytes());
                write(out, item)?;
            }
        }
        Value::Opaque(_) => return None,
    }
    Some(())
}

fn length(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let byte = (n & 0x7f) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    length(out, b.len());
    out.extend_from_slice(b);
}

fn damaged(what: &str) -> Error {
    Error::Serialization {
        message: format!("a cached value is damaged: {what}"),
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8]> {
        let end = self.at.checked_add(n).filter(|&e| e <= self.bytes.len());
        let end = end.ok_or_else(|| damaged("it ends early"))?;
        let out = &self.bytes[self.at..end];
        self.at = end;
        Ok(out)
    }

    fn length(&mut self) -> Result<usize> {
        let mut n: usize = 0;
        for shift in (0..64).step_by(7) {
            let byte = self.take(1)?[0];
            n |= usize::from(byte & 0x7f)
                .checked_shl(shift)
                .ok_or_else(|| damaged("a length overflows"))?;
            if byte & 0x80 == 0 {
                // A length can never exceed what is left to read.
                if n > self.bytes.len() - self.at {
                    return Err(damaged("a length runs past the end"));
                }
                return Ok(n);
            }
        }
        Err(damaged("a length overflows"))
    }

    fn text(&mut self) -> Result<String> {
        let n = self.length()?;
        String::from_utf8(self.take(n)?.to_vec()).map_err(|_| damaged("text is not UTF-8"))
    }

    fn value(&mut self, depth: usize) -> Result<Value> {
        if depth > MAX_DEPTH {
            return Err(damaged("it nests too deeply"));
        }
        let tag = self.take(1)?[0];
        Ok(match tag {
            0 => Value::Null,
            1 => Value::Bool(self.take(1)?[0] != 0),
            2 => Value::Int(i64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            )),
            3 => Value::Float(f64::from_bits(u64::from_le_bytes(
                self.take(8)?.try_into().expect("8 bytes"),
            ))),
            4 => Value::Str(self.text()?),
            5 => {
                let n = self.length()?;
                Value::Bytes(self.take(n)?.to_vec())
            }
            6 => {
                let n = self.length()?;
                let mut items = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    items.push(self.value(depth + 1)?);
                }
                Value::List(items)
            }
            7 => {
                let n = self.length()?;
                let mut map = ValueMap::with_capacity(n.min(1024));
                for _ in 0..n {
                    let key = self.text()?;
                    map.insert(key, self.value(depth + 1)?);
                }
                Value::Map(map)
            }
            other => return Err(damaged(&format!("unknown tag {other}"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_round_trip() {
        let mut map = ValueMap::new();
        map.insert("b".into(), Value::Bytes(vec![0, 255, 7]));
        map.insert(
            "a".into(),
            Value::List(vec![Value::Float(-0.0), Value::Int(i64::MIN)]),
        );
        let value = Value::List(vec![
            Value::Null,
            Value::Bool(true),
            Value::Str("é".repeat(200)),
            Value::Map(map),
        ]);
        assert_eq!(decode(&encode(&value).unwrap()).unwrap(), value);
        assert!(encode(&Value::Opaque(crate::value::Opaque::new(1u8))).is_none());
    }

    /// A damaged entry is an error, never a crash, a hang or a huge allocation.
    #[test]
    fn damaged_bytes_are_refused() {
        let good = encode(&Value::List(vec![Value::Str("text".into()); 3])).unwrap();
        for cut in 0..good.len() {
            assert!(decode(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut trailing = good.clone();
        trailing.push(0);
        assert!(decode(&trailing).is_err());
        // Deeper than any value may nest: refused before the stack is at risk.
        let deep = [6u8, 1].repeat(100_000);
        assert!(decode(&deep)
            .unwrap_err()
            .to_string()
            .contains("nests too deeply"));
        // A list claiming 2^62 items, a length that never ends, an unknown tag.
        let mut huge = vec![6u8];
        huge.extend([0xff; 8]);
        huge.push(0x3f);
        assert!(decode(&huge).is_err());
        assert!(decode(&[5u8, 0x80, 0x80, 0x80]).is_err());
        assert!(decode(
            &[5u8; 1]
                .iter()
                .chain([0xff; 11].iter())
                .copied()
                .collect::<Vec<_>>()
        )
        .is_err());
        assert!(decode(&[9u8]).is_err());
        assert!(decode(&[4u8, 2, 0xff, 0xfe])
            .unwrap_err()
            .to_string()
            .contains("UTF-8"));
    }
}
