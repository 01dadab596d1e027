"""Plain-Python equivalents of the shipped script modules, and realistic
inputs for them: titles of 20-80 characters, texts of 0.5-5 KB.

Each function gives the same output as its module on these inputs (the
benchmarks check it); it is written as a Python user would write it, with
the standard library (`re`, `csv`, `collections`) where that is natural.
"""

from __future__ import annotations

import csv
import io
import random
import re
from collections import Counter
from typing import Any, Optional

# -- inputs -----------------------------------------------------------------

_WORDS = (
    "the quick brown fox jumps over lazy dog data pipeline module registry "
    "café naïve résumé façade über straße crème brûlée jalapeño smörgåsbord "
    "rust python workflow cache batch worker dask scheduler 2024 v1.2 it's "
    "don't user's analysis report summary release notes performance test"
).split()


def _rng(seed: int) -> random.Random:
    return random.Random(seed)


def titles(n: int = 50, seed: int = 1) -> list[str]:
    """Titles of 20-80 characters: words, accents, punctuation, numbers."""
    rng = _rng(seed)
    out = []
    while len(out) < n:
        words = [rng.choice(_WORDS) for _ in range(rng.randint(3, 12))]
        if rng.random() < 0.5:
            words[0] = words[0].capitalize()
        title = " ".join(words)
        title = title.replace(" ", rng.choice([" ", " - ", ": ", ", ", " "]), 1)
        if rng.random() < 0.3:
            title += rng.choice(["!", "?", " (2nd edition)", " & more", "..."])
        if 20 <= len(title) <= 80:
            out.append(title)
    return out


def _sentence(rng: random.Random) -> str:
    words = [rng.choice(_WORDS) for _ in range(rng.randint(5, 18))]
    words[0] = words[0].capitalize()
    return " ".join(words) + rng.choice([".", ".", ".", "!", "?"])


def texts(n: int = 20, seed: int = 2) -> list[str]:
    """Prose of 0.5-5 KB in paragraphs."""
    rng = _rng(seed)
    out = []
    for _ in range(n):
        size = rng.randint(500, 5000)
        parts: list[str] = []
        while sum(len(p) for p in parts) < size:
            parts.append(" ".join(_sentence(rng) for _ in range(rng.randint(2, 5))))
        out.append("\n\n".join(parts)[:size].rstrip() + "\n")
    return out


def markdown_texts(n: int = 20, seed: int = 3) -> list[str]:
    """Markdown of 0.5-5 KB: headings, paragraphs, lists, inline markup."""
    rng = _rng(seed)
    out = []
    for _ in range(n):
        size = rng.randint(500, 5000)
        lines: list[str] = []
        while sum(len(x) + 1 for x in lines) < size:
            kind = rng.random()
            if kind < 0.15:
                lines += ["#" * rng.randint(1, 3) + " " + _sentence(rng).rstrip(".!?"), ""]
            elif kind < 0.35:
                lines += ["- " + _inline(rng) for _ in range(rng.randint(2, 5))] + [""]
            else:
                lines += [_inline(rng) for _ in range(rng.randint(1, 3))] + [""]
        out.append("\n".join(lines))
    return out


def _inline(rng: random.Random) -> str:
    s = _sentence(rng)
    words = s.split(" ")
    i = rng.randrange(len(words))
    words[i] = rng.choice([f"**{words[i]}**", f"*{words[i]}*", f"`{words[i]}`", f"[{words[i]}](https://example.org/{i})", words[i] + " & <b>"])
    return " ".join(words)


def csv_texts(n: int = 20, seed: int = 4) -> list[str]:
    """CSV of 0.5-5 KB: a header, quoted fields with commas and quotes."""
    rng = _rng(seed)
    out = []
    for _ in range(n):
        size = rng.randint(500, 5000)
        rows = ["id,name,city,score,note"]
        k = 0
        while sum(len(r) + 1 for r in rows) < size:
            k += 1
            note = rng.choice(["", "ok", '"said ""hi"", then left"', '"a, b"', "naïve café"])
            rows.append(f"{k},{rng.choice(_WORDS)} {rng.choice(_WORDS)},{rng.choice(_WORDS)},{rng.randint(0, 100)},{note}")
        out.append("\n".join(rows) + "\n")
    return out


def template_inputs(n: int = 20, seed: int = 5) -> list[dict[str, Any]]:
    """Templates of 0.5-5 KB with placeholders, and their values."""
    rng = _rng(seed)
    out = []
    for _ in range(n):
        size = rng.randint(500, 5000)
        parts: list[str] = []
        while sum(len(p) for p in parts) < size:
            parts.append(_sentence(rng) + " ")
            parts.append(rng.choice(["{{user.name}}", "{{ title }}", "{{{raw}}}", "{{count}}", "{{user.city}}"]) + " ")
        values = {"user": {"name": "Zoë <admin>", "city": "Zürich"}, "title": 'Fish & "Chips"', "raw": "<b>bold</b>", "count": 42}
        out.append({"template": "".join(parts), "values": values})
    return out


def json_inputs(n: int = 20, seed: int = 6) -> list[dict[str, Any]]:
    """Nested records (as parsed JSON of 0.5-5 KB) and a path into each."""
    rng = _rng(seed)
    out = []
    for _ in range(n):
        users = [
            {"name": rng.choice(_WORDS), "age": rng.randint(18, 90), "addresses": [{"city": rng.choice(_WORDS), "zip": str(rng.randint(10000, 99999))} for _ in range(rng.randint(1, 3))]}
            for _ in range(rng.randint(3, 30))
        ]
        i = rng.randrange(len(users))
        out.append({"data": {"users": users, "meta": {"count": len(users)}}, "path": f"users[{i}].addresses[0].city"})
    return out


# -- plain Python -----------------------------------------------------------

_PLAIN = str.maketrans(
    {
        "à": "a", "á": "a", "â": "a", "ä": "a", "ã": "a", "å": "a",
        "ç": "c", "è": "e", "é": "e", "ê": "e", "ë": "e",
        "ì": "i", "í": "i", "î": "i", "ï": "i", "ñ": "n",
        "ò": "o", "ó": "o", "ô": "o", "ö": "o", "õ": "o", "ø": "o",
        "ù": "u", "ú": "u", "û": "u", "ü": "u", "ý": "y", "ÿ": "y",
        "ß": "ss", "æ": "ae", "œ": "oe",
    }
)  # fmt: skip
_NOT_SLUG = re.compile(r"[^a-z0-9]+")


def slugify(text: str, max_length: Optional[int] = None) -> str:
    slug = "-".join(w for w in _NOT_SLUG.split(text.lower().translate(_PLAIN)) if w)
    if max_length is not None and len(slug) > max_length:
        slug = slug[:max_length]
        cut = slug.rfind("-")
        if cut > 0:
            slug = slug[:cut]
    return slug


_WORD = re.compile("[a-zA-Z0-9'\x7f-\U0010ffff]+")


def text_stats(text: str, top: int = 3) -> dict[str, Any]:
    words = _WORD.findall(text.lower())
    pairs = sorted(Counter(words).items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    lines = 0 if not text else text.count("\n") + 1 - text.endswith("\n")
    return {"lines": lines, "words": len(words), "chars": len(text), "top_words": [list(p) for p in pairs]}


def csv_records(text: str, delimiter: str = ",") -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(text), delimiter=delimiter))
    if not rows:
        return []
    header, records = rows[0], []
    for number, row in enumerate(rows[1:], 2):
        if not row or row == [""]:
            continue
        if len(row) > len(header):
            raise ValueError(f"row {number} has {len(row)} fields but the header has {len(header)}")
        records.append({name: row[i] if i < len(row) else "" for i, name in enumerate(header)})
    return records


def escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _pairs(text: str, marker: str, tag: str) -> str:
    parts = text.split(marker)
    if len(parts) < 3:
        return text
    out = []
    for i, part in enumerate(parts):
        if i % 2 == 1 and i == len(parts) - 1:
            out.append(marker + part)
        elif i % 2 == 1:
            out.append(f"<{tag}>{part}</{tag}>")
        else:
            out.append(part)
    return "".join(out)


def _links(text: str) -> str:
    out, rest = [], text
    while True:
        start = rest.find("[")
        mid = rest.find("](")
        if start < 0 or mid < start:
            break
        end = rest.find(")", mid)
        if end < 0:
            break
        out.append(rest[:start] + f'<a href="{rest[mid + 2 : end]}">{rest[start + 1 : mid]}</a>')
        rest = rest[end + 1 :]
    return "".join(out) + rest


def _inline_md(text: str) -> str:
    return _links(_pairs(_pairs(_pairs(text, "`", "code"), "**", "strong"), "*", "em"))


def markdown(text: str) -> str:
    html: list[str] = []
    paragraph: list[str] = []
    items: list[str] = []
    for raw in text.split("\n"):
        line = raw.strip()
        is_item = line.startswith(("- ", "* "))
        if (not line or line.startswith("#") or is_item) and paragraph:
            html.append("<p>" + _inline_md(escape(" ".join(paragraph))) + "</p>")
            paragraph = []
        if not is_item and items:
            html.append("<ul>" + "".join(items) + "</ul>")
            items = []
        if not line:
            continue
        if line.startswith("#"):
            level = min(len(line) - len(line.lstrip("#")), 6)
            html.append(f"<h{level}>" + _inline_md(escape(line[level:].strip())) + f"</h{level}>")
        elif is_item:
            items.append("<li>" + _inline_md(escape(line[2:])) + "</li>")
        else:
            paragraph.append(line)
    if paragraph:
        html.append("<p>" + _inline_md(escape(" ".join(paragraph))) + "</p>")
    if items:
        html.append("<ul>" + "".join(items) + "</ul>")
    return "\n".join(html)


def _lookup(values: Any, path: str) -> Any:
    here = values
    for key in path.split("."):
        if not isinstance(here, dict) or key not in here:
            raise KeyError(f"no value for {{{{{path}}}}}")
        here = here[key]
    return here


def template(inp: dict[str, Any]) -> str:
    text, values = inp["template"], inp["values"]
    out, rest = [], text
    while True:
        start = rest.find("{{")
        if start < 0:
            break
        raw = rest.startswith("{{{", start)
        width = 3 if raw else 2
        end = rest.find("}" * width, start)
        if end < 0:
            raise ValueError("unclosed {{ in template")
        value = str(_lookup(values, rest[start + width : end].strip()))
        out.append(rest[:start] + (value if raw else escape(value)))
        rest = rest[end + width :]
    return "".join(out) + rest


_STEP = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def json_pick(inp: dict[str, Any]) -> Any:
    here = inp["data"]
    for name, index in _STEP.findall(inp["path"]):
        if index:
            i = int(index)
            here = here[i] if isinstance(here, list) and i < len(here) else None
        else:
            here = here.get(name) if isinstance(here, dict) else None
        if here is None:
            return None
    return here


#: module name -> (plain-Python function, inputs).
CASES: dict[str, tuple[Any, Any]] = {
    "slugify": (slugify, titles),
    "text-stats": (text_stats, texts),
    "csv-records": (csv_records, csv_texts),
    "markdown": (markdown, markdown_texts),
    "template": (template, template_inputs),
    "json-pick": (json_pick, json_inputs),
}
