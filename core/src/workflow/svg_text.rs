//! The text of the SVG pictures (`picture.rs`): cut, clipped, escaped.

/// `text` cut to `limit` characters, saying how many were left out.
pub(super) fn cut(text: &str, limit: usize) -> String {
    let n = text.chars().count();
    if n <= limit {
        return text.to_string();
    }
    let kept: String = text.chars().take(limit).collect();
    format!("{kept}… ({} more characters)", n - limit)
}

/// A line cut to `limit` characters, ending in `…` when cut.
pub(super) fn clip(line: &str, limit: usize) -> String {
    if line.chars().count() <= limit {
        return line.to_string();
    }
    let mut kept: String = line.chars().take(limit - 1).collect();
    kept.push('…');
    kept
}

/// Text for SVG content and attribute values: `&`, `<`, `>`, quotes
/// escaped, tab, newline and carriage return as character references, and
/// the characters XML does not allow (other control characters, U+FFFE,
/// U+FFFF) as U+FFFD.
pub(super) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            // As references, so attribute values keep them too.
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => out.push('\u{FFFD}'),
            c => out.push(c),
        }
    }
    out
}
