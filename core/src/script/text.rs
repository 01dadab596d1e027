//! Native text helpers registered into every script engine: whole-string
//! work that a character loop in Rhai would do 20-60 times slower. Each
//! takes and returns plain Rhai values, so any script can use them; the
//! results are subject to the engine's size limits like any other value.
//!
//! | Rhai | does |
//! |---|---|
//! | `lower_chars(text)` | each character lower-cased on its own (`"ΑΣ"` → `"ασ"`; no final-sigma rule) |
//! | `char_table(map)` | a `CharTable` made from a map of one-character keys to strings: built once (in `init`, kept in `this`), cheap to copy |
//! | `map_chars(text, table)` | each character that is a key of `table` (a `CharTable` or such a map) replaced by its value |
//! | `runs(text, class)` | the maximal runs of characters in `class`, in order (an array of strings) |
//! | `tally(items)` | a map from each item (as text) to how many times it occurs |
//! | `by_count(counts)` | `[key, count]` pairs of a map of counts, most frequent first, ties by key |
//! | `join(items, sep)` | the items (as text) joined by `sep` |
//! | `split_once(text, sep)` | `[before, after]` around the first `sep`, or `()` when there is none |
//! | `zip_map(keys, values, fill)` | a map from each key (as text) to the value at its position, `fill` past the values' end (later keys win; extra values are left out) |
//! | `html_escape(text)` | `&`, `<`, `>` and `"` escaped for HTML |
//! | `csv_rows(text, delimiter)` | CSV text as an array of rows (arrays of strings) |
//!
//! A character class is written as its characters and ranges: `"a-z0-9_"`;
//! a `-` first or last is itself; `"\x7f-\U0010ffff"` is every character
//! above ASCII's last printable one.

use std::sync::Arc;

use rhai::{Array, Dynamic, Engine, EvalAltResult, ImmutableString, Map};

use super::definitions::described;

type Res<T> = Result<T, Box<EvalAltResult>>;

fn error(message: String) -> Box<EvalAltResult> {
    message.into()
}

/// Registers the helpers into `engine`.
pub(crate) fn register(engine: &mut Engine) {
    engine.register_type_with_name::<CharTable>("CharTable");
    described(
        "char_table(table: Map) -> CharTable",
        "A `CharTable` from a map of one-character keys to strings: built once (in `init`, kept in `this`), cheap to copy.",
        r#"this.table = char_table(#{ "&": "and", "@": "at" });"#,
    )
    .register_into_engine(engine, CharTable::new);
    described(
        "lower_chars(text: String) -> String",
        "Each character lower-cased on its own (`\"ΑΣ\"` gives `\"ασ\"`; no final-sigma rule).",
        r#"lower_chars("Hello") == "hello""#,
    )
    .register_into_engine(engine, lower_chars);
    described(
        "map_chars(text: String, table: CharTable) -> String",
        "Each character that is a key of `table` replaced by its value.",
        r#"map_chars("a&b", char_table(#{ "&": " and " }))"#,
    )
    .register_into_engine(engine, |text: ImmutableString, table: CharTable| {
        table.apply(&text)
    });
    described(
        "map_chars(text: String, table: Map) -> String",
        "Each character that is a key of the map `table` replaced by its value.",
        r#"map_chars("a&b", #{ "&": " and " }) == "a and b""#,
    )
    .register_into_engine(engine, |text: ImmutableString, table: Map| {
        Ok::<_, Box<EvalAltResult>>(CharTable::new(table)?.apply(&text))
    });
    described(
        "runs(text: String, class: String) -> Array",
        "The maximal runs of characters in `class` (characters and ranges, `\"a-z0-9_\"`), in order.",
        r#"runs("hi there, you", "a-z") == ["hi", "there", "you"]"#,
    )
    .register_into_engine(engine, runs);
    described(
        "tally(items: Array) -> Map",
        "A map from each item (as text) to how many times it occurs.",
        r#"tally(["a", "b", "a"]) == #{ a: 2, b: 1 }"#,
    )
    .register_into_engine(engine, tally);
    described(
        "by_count(counts: Map) -> Array",
        "`[key, count]` pairs of a map of counts, most frequent first, ties by key.",
        "by_count(#{ a: 2, b: 5 }) == [[\"b\", 5], [\"a\", 2]]",
    )
    .register_into_engine(engine, by_count);
    described(
        "join(items: Array, separator: String) -> String",
        "The items (as text) joined by `separator`.",
        r#"join(["a", 1, "b"], "-") == "a-1-b""#,
    )
    .register_into_engine(engine, join);
    described(
        "split_once(text: String, separator: String) -> ?",
        "`[before, after]` around the first `separator`, or `()` when there is none.",
        r#"split_once("key=value", "=") == ["key", "value"]"#,
    )
    .register_into_engine(engine, split_once);
    described(
        "zip_map(keys: Array, values: Array, fill: ?) -> Map",
        "A map from each key (as text) to the value at its position, `fill` past the values' end.",
        r#"zip_map(["a", "b"], [1], 0) == #{ a: 1, b: 0 }"#,
    )
    .register_into_engine(engine, zip_map);
    described(
        "html_escape(text: String) -> String",
        "`&`, `<`, `>` and `\"` escaped for HTML.",
        r#"html_escape("<b>") == "&lt;b&gt;""#,
    )
    .register_into_engine(engine, html_escape);
    described(
        "csv_rows(text: String, delimiter: char) -> Array",
        "CSV text as an array of rows (arrays of strings); quoted fields may hold the delimiter, newlines and doubled quotes.",
        "csv_rows(\"a,b\\n1,2\\n\", ',') == [[\"a\", \"b\"], [\"1\", \"2\"]]",
    )
    .register_into_engine(engine, csv_rows);
    described(
        "utf8_text(bytes: Blob) -> String",
        "The bytes read as UTF-8 text, or an error saying where they stop being UTF-8.",
        r#"utf8_text(blob(2, 104)) == "hh""#,
    )
    .register_into_engine(engine, utf8_text);
}

fn lower_chars(text: ImmutableString) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c.to_ascii_lowercase());
        } else {
            out.extend(c.to_lowercase());
        }
    }
    out
}

/// Characters and what each becomes, sorted by character (shared: a copy
/// is a pointer).
#[derive(Clone)]
pub(crate) struct CharTable(Arc<Vec<(char, ImmutableString)>>);

impl CharTable {
    fn new(table: Map) -> Res<CharTable> {
        let mut pairs = Vec::with_capacity(table.len());
        for (key, value) in table {
            let mut chars = key.chars();
            let (Some(c), None) = (chars.next(), chars.next()) else {
                return Err(error(format!(
                    "char_table: the key {key:?} is not one character"
                )));
            };
            let to: ImmutableString = if value.is_char() {
                value.as_char()?.to_string().into()
            } else {
                value.into_immutable_string().map_err(|t| {
                    error(format!(
                        "char_table: the value for {c:?} is a {t}, not a string"
                    ))
                })?
            };
            pairs.push((c, to));
        }
        pairs.sort_by_key(|(c, _)| *c);
        Ok(CharTable(Arc::new(pairs)))
    }

    fn apply(&self, text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for c in text.chars() {
            match self.0.binary_search_by_key(&c, |(k, _)| *k) {
                Ok(i) => out.push_str(&self.0[i].1),
                Err(_) => out.push(c),
            }
        }
        out
    }
}

/// A parsed character class: ASCII members in a bit set, ranges beyond.
struct Class {
    ascii: u128,
    ranges: Vec<(char, char)>,
}

impl Class {
    fn parse(spec: &str) -> Res<Class> {
        let chars: Vec<char> = spec.chars().collect();
        let mut class = Class {
            ascii: 0,
            ranges: Vec::new(),
        };
        let mut i = 0;
        while i < chars.len() {
            let (low, high) = if i + 2 < chars.len() && chars[i + 1] == '-' {
                i += 3;
                (chars[i - 3], chars[i - 1])
            } else {
                i += 1;
                (chars[i - 1], chars[i - 1])
            };
            if low > high {
                return Err(error(format!(
                    "character class {spec:?}: the range {low}-{high} is reversed"
                )));
            }
            class.add(low, high);
        }
        Ok(class)
    }

    fn add(&mut self, low: char, high: char) {
        for c in (low as u32)..=(high as u32).min(127) {
            self.ascii |= 1 << c;
        }
        if high as u32 > 127 {
            self.ranges.push((low.max('\u{80}'), high));
        }
    }

    fn has(&self, c: char) -> bool {
        if c.is_ascii() {
            self.ascii & (1 << c as u32) != 0
        } else {
            self.ranges.iter().any(|&(low, high)| low <= c && c <= high)
        }
    }
}

fn runs(text: ImmutableString, class: ImmutableString) -> Res<Array> {
    let class = Class::parse(&class)?;
    let mut out = Array::new();
    let mut start = None;
    for (at, c) in text.char_indices() {
        match (class.has(c), start) {
            (true, None) => start = Some(at),
            (false, Some(from)) => {
                out.push(Dynamic::from(text[from..at].to_string()));
                start = None;
            }
            _ => {}
        }
    }
    if let Some(from) = start {
        out.push(Dynamic::from(text[from..].to_string()));
    }
    Ok(out)
}

/// An item as text: a string as it is, anything else as it prints.
fn text_of(item: &Dynamic) -> String {
    match item.read_lock::<ImmutableString>() {
        Some(s) => s.to_string(),
        None => item.to_string(),
    }
}

fn tally(items: Array) -> Map {
    let mut counts: std::collections::BTreeMap<String, rhai::INT> = Default::default();
    for item in &items {
        *counts.entry(text_of(item)).or_insert(0) += 1;
    }
    counts
        .into_iter()
        .map(|(k, n)| (k.into(), Dynamic::from(n)))
        .collect()
}

fn by_count(counts: Map) -> Res<Array> {
    let mut pairs = Vec::with_capacity(counts.len());
    for (key, value) in counts {
        let n = value.as_int().map_err(|t| {
            error(format!(
                "by_count: the count of {key:?} is a {t}, not an integer"
            ))
        })?;
        pairs.push((key, n));
    }
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(pairs
        .into_iter()
        .map(|(k, n)| Dynamic::from_array(vec![Dynamic::from(k.to_string()), Dynamic::from(n)]))
        .collect())
}

fn join(items: Array, sep: ImmutableString) -> String {
    let mut out = String::new();
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push_str(&sep);
        }
        match item.read_lock::<ImmutableString>() {
            Some(s) => out.push_str(&s),
            None => out.push_str(&item.to_string()),
        }
    }
    out
}

fn split_once(text: ImmutableString, sep: ImmutableString) -> Dynamic {
    match text.split_once(sep.as_str()) {
        Some((before, after)) => Dynamic::from_array(vec![
            Dynamic::from(before.to_string()),
            Dynamic::from(after.to_string()),
        ]),
        None => Dynamic::UNIT,
    }
}

fn zip_map(keys: Array, values: Array, fill: Dynamic) -> Map {
    let mut out = Map::new();
    for (i, key) in keys.iter().enumerate() {
        let value = values.get(i).cloned().unwrap_or_else(|| fill.clone());
        out.insert(text_of(key).into(), value);
    }
    out
}

fn html_escape(text: ImmutableString) -> ImmutableString {
    if !text.contains(['&', '<', '>', '"']) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            _ => out.push(c),
        }
    }
    out.into()
}

/// Rows of fields: quoted fields may hold the delimiter, newlines and
/// doubled quotes; a `\r` outside quotes is dropped; a last line without
/// a newline is a row unless it is empty.
fn csv_rows(text: ImmutableString, delimiter: char) -> Array {
    let mut rows = Array::new();
    let mut row = Array::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if quoted {
            if c == '"' {
                if chars.peek() == Some(&'"') {
                    field.push('"');
                    chars.next();
                } else {
                    quoted = false;
                }
            } else {
                field.push(c);
            }
        } else if c == '"' {
            quoted = true;
        } else if c == delimiter {
            row.push(std::mem::take(&mut field).into());
        } else if c == '\n' {
            row.push(std::mem::take(&mut field).into());
            rows.push(Dynamic::from_array(std::mem::take(&mut row)));
        } else if c != '\r' {
            field.push(c);
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field.into());
        rows.push(Dynamic::from_array(row));
    }
    rows
}

/// `utf8_text(bytes)`: the bytes read as UTF-8 text, or an error saying
/// where they stop being UTF-8 (never the lossy text `as_string` gives).
fn utf8_text(bytes: rhai::Blob) -> Res<String> {
    String::from_utf8(bytes).map_err(|e| {
        error(format!(
            "utf8_text: the bytes are not UTF-8 text (from byte {})",
            e.utf8_error().valid_up_to()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_class_takes_ranges_and_a_literal_dash() {
        let table = CharTable::new(Map::from_iter([
            ("é".into(), Dynamic::from("e")),
            ("ß".into(), Dynamic::from('s')),
        ]))
        .unwrap();
        assert_eq!(table.apply("éßx"), "esx");
        let two = Map::from_iter([("ab".into(), Dynamic::from("x"))]);
        assert!(CharTable::new(two).is_err());
        let number = Map::from_iter([("a".into(), Dynamic::from(1_i64))]);
        assert!(CharTable::new(number).is_err());
        let class = Class::parse("a-c-").unwrap();
        assert!(class.has('b') && class.has('-') && !class.has('d'));
        let wide = Class::parse("\u{7f}-\u{10ffff}").unwrap();
        assert!(wide.has('é') && wide.has('\u{7f}') && !wide.has('~'));
        assert!(Class::parse("z-a").is_err());
        assert!(!Class::parse("").unwrap().has('a'));
    }
}
