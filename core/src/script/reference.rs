//! The Markdown reference of the script API, made from the functions'
//! own registrations (see [`super::definitions`]): every function with a
//! description, grouped by what it is called on.

use std::fmt::Write;

use rhai::Engine;
use serde_json::Value as Json;

/// What a method is called on, in the order the page shows them, with
/// the variable name its examples use.
const RECEIVERS: &[(&str, &str, &str)] = &[
    ("Registry", "registry", "The registry"),
    ("Instance", "instance", "Instances"),
    ("Pool", "pool", "Pools"),
    ("Workflow", "wf", "Workflows"),
];

const HEADER: &str = "# Script API reference

Everything a Rhai script can call in a registry, beside Rhai's own
[language and packages](https://rhai.rs/book/). This page is generated from
the functions' registrations (`ModuleRegistry::script_reference`), the same
record the editor definitions come from (see
[Editor support](../guides/script-editor.md)); regenerate it with
`make script-api`. A test fails when it is stale.

## Globals

| name | where | what |
|---|---|---|
| `registry` | orchestration scripts, Rhai test files | the registry (below) |
| `input` | orchestration scripts | the script's input |
| `this` | a script module's `init`, `process`, `shutdown` | the instance's own state, a map |
| `this.deps` | a script module | each declared dependency by name: `#{ name, version, process }`; `this.deps[\"log-parse\"].process(x)` runs it |
| `MODULE` | a script module | its own declaration, a constant map |
";

struct Entry {
    group: usize,
    call: String,
    params: Vec<(String, String)>,
    returns: String,
    doc: String,
    example: String,
}

/// The page for `engine`'s own functions (not Rhai's packages).
pub(crate) fn markdown(engine: &Engine) -> String {
    let json = engine.gen_fn_metadata_to_json(false).unwrap_or_default();
    let parsed: Json = serde_json::from_str(&json).unwrap_or(Json::Null);
    let functions = parsed["functions"].as_array().cloned().unwrap_or_default();
    let mut entries: Vec<Entry> = functions.iter().filter_map(entry).collect();
    // Overloads with the same parameter names are told apart by their types.
    let calls: Vec<String> = entries.iter().map(|e| e.call.clone()).collect();
    for e in &mut entries {
        if calls.iter().filter(|c| **c == e.call).count() > 1 {
            if let Some(open) = e.call.find('(') {
                let typed: Vec<String> =
                    e.params.iter().map(|(n, t)| format!("{n}: {t}")).collect();
                e.call = format!("{}({})", &e.call[..open], typed.join(", "));
            }
        }
    }
    entries.sort_by(|a, b| {
        (a.group, &a.call, a.params.len()).cmp(&(b.group, &b.call, b.params.len()))
    });
    let mut page = String::from(HEADER);
    let mut group = usize::MAX;
    for e in &entries {
        if e.group != group {
            group = e.group;
            let title = RECEIVERS.get(group).map_or("Functions", |r| r.2);
            let _ = write!(page, "\n## {title}\n");
        }
        let _ = write!(page, "\n### `{}`\n\n{}\n", e.call, e.doc);
        if !e.params.is_empty() {
            page.push('\n');
            for (name, ty) in &e.params {
                let _ = writeln!(page, "- `{name}`: `{ty}`");
            }
        }
        if e.returns != "()" {
            let _ = write!(page, "\nReturns `{}`.\n", e.returns);
        }
        if !e.example.is_empty() {
            let _ = write!(page, "\n```rhai\n{}\n```\n", e.example);
        }
    }
    page
}

/// One function's entry, if it is described (has a doc comment).
fn entry(f: &Json) -> Option<Entry> {
    let name = f["name"].as_str()?;
    let comment = f["docComments"].as_array()?.first()?.as_str()?;
    let mut params: Vec<(String, String)> = f["params"]
        .as_array()
        .map(|ps| {
            ps.iter()
                .map(|p| {
                    let name = p["name"].as_str().unwrap_or("_").to_string();
                    (name, p["type"].as_str().unwrap_or("?").to_string())
                })
                .collect()
        })
        .unwrap_or_default();
    let receiver = params
        .first()
        .and_then(|(_, ty)| RECEIVERS.iter().position(|r| r.0 == ty));
    let group = receiver.unwrap_or(RECEIVERS.len());
    let (property, bare) = match name.split_once('$') {
        Some(("get", p)) => (true, p),
        Some(("set", p)) => (true, p),
        _ => (false, name),
    };
    let call = match receiver {
        Some(r) => {
            params.remove(0);
            let this = RECEIVERS[r].1;
            if property && name.starts_with("set$") {
                format!(
                    "{this}.{bare} = {}",
                    params.first().map_or("", |p| p.0.as_str())
                )
            } else if property {
                format!("{this}.{bare}")
            } else {
                format!("{this}.{bare}({})", names(&params))
            }
        }
        // A property of another type (`value.type_name`).
        None if property => {
            let this = match params.is_empty() {
                true => "value".to_string(),
                false => params.remove(0).0,
            };
            format!("{this}.{bare}")
        }
        None => format!("{bare}({})", names(&params)),
    };
    let (doc, example) = split_comment(comment);
    Some(Entry {
        group,
        call,
        params,
        returns: f["returnType"].as_str().unwrap_or("()").to_string(),
        doc,
        example,
    })
}

fn names(params: &[(String, String)]) -> String {
    params
        .iter()
        .map(|p| p.0.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A doc comment as [`super::definitions::described`] writes it: the
/// description, then the example's lines between ```` ```rhai ```` fences.
fn split_comment(comment: &str) -> (String, String) {
    let lines: Vec<&str> = comment
        .lines()
        .map(|l| {
            l.trim_start()
                .trim_start_matches("///")
                .strip_prefix(' ')
                .unwrap_or_else(|| l.trim_start().trim_start_matches("///"))
        })
        .collect();
    let fence = lines.iter().position(|l| l.starts_with("```"));
    let doc_lines = &lines[..fence.unwrap_or(lines.len())];
    let doc = doc_lines.join(" ").trim().to_string();
    let example = match fence {
        Some(start) => lines[start + 1..]
            .iter()
            .take_while(|l| !l.starts_with("```"))
            .copied()
            .collect::<Vec<_>>()
            .join("\n"),
        None => String::new(),
    };
    (doc, example)
}
