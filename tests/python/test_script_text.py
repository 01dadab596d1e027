"""The native text helpers every script engine has (`core/src/script/text.rs`),
and the shipped modules rewritten on them: each gives what its character-loop
version gave (`reference_scripts/`, the versions before the rewrite) on
ordinary, empty, unicode and very long inputs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import module_registry as mr

REFERENCE = Path(__file__).parent / "reference_scripts"


def run(source: str, value: Any) -> Any:
    registry = mr.ModuleRegistry()
    registry.register_script('const MODULE = #{ name: "t", version: "1.0.0" };\n' + source)
    return registry.create("t").process(value)


# -- the helpers --------------------------------------------------------------


def test_lower_chars_lowers_each_character_alone() -> None:
    # No final-sigma rule: each character as if it stood alone.
    assert run("fn process(x) { lower_chars(x) }", "ΣΑΣ Straße İ K") == "σασ straße i̇ k"
    assert run("fn process(x) { lower_chars(x) }", "") == ""


def test_char_table_and_map_chars() -> None:
    source = 'fn process(x) { let t = char_table(#{ "é": "e", "ß": "ss", "x": \'y\' }); [map_chars(x, t), map_chars(x, #{ "a": "A" }), type_of(t)] }'
    assert run(source, "éaßx") == ["eassy", "éAßx", "CharTable"]
    assert run(source, "") == ["", "", "CharTable"]


@pytest.mark.parametrize(
    ("table", "message"),
    [('#{ "ab": "x" }', "not one character"), ('#{ "": "x" }', "not one character"), ('#{ "a": 1 }', "not a string")],
)
def test_char_table_refuses_a_bad_table(table: str, message: str) -> None:
    with pytest.raises(mr.ScriptError, match=message):
        run(f"fn process(x) {{ char_table({table}) }}", 0)


def test_runs_of_a_character_class() -> None:
    source = "fn process(x) { runs(x, \"a-z0-9'-\") }"
    assert run(source, "don't stop-me NOW 42!") == ["don't", "stop-me", "42"]
    assert run(source, "") == []
    assert run(source, "!!!") == []
    assert run('fn process(x) { runs(x, "\\x7f-\\U0010ffff") }', "ab cé日本 x🎉") == ["é日本", "🎉"]
    with pytest.raises(mr.ScriptError, match="reversed"):
        run('fn process(x) { runs(x, "z-a") }', "abc")


def test_tally_and_by_count() -> None:
    source = "fn process(x) { by_count(tally(x)) }"
    assert run(source, ["b", "a", "b", "c", "a", "b", 1, 1]) == [["b", 3], ["1", 2], ["a", 2], ["c", 1]]
    assert run(source, []) == []
    with pytest.raises(mr.ScriptError, match="not an integer"):
        run('fn process(x) { by_count(#{ a: "many" }) }', 0)


def test_join_and_html_escape() -> None:
    assert run('fn process(x) { join(x, ", ") }', ["a", 1, "ü"]) == "a, 1, ü"
    assert run('fn process(x) { join(x, "-") }', []) == ""
    assert run("fn process(x) { html_escape(x) }", 'a < b & "c" > d') == "a &lt; b &amp; &quot;c&quot; &gt; d"
    assert run("fn process(x) { html_escape(x) }", "plain ünïcode") == "plain ünïcode"


def test_split_once_and_zip_map() -> None:
    source = 'fn process(x) { [split_once(x, "{{"), split_once(x, "}}}"), split_once("", "a")] }'
    assert run(source, "a {{b}} {{c}}") == [["a ", "b}} {{c}}"], None, None]
    assert run('fn process(x) { split_once(x, "é") }', "naïve café") == ["naïve caf", ""]
    source = 'fn process(x) { zip_map(["a", "b", "a", 1], x, "-") }'
    assert run(source, ["1", "2", "3", "4", "5"]) == {"a": "3", "b": "2", "1": "4"}
    assert run(source, ["only"]) == {"a": "-", "b": "-", "1": "-"}
    assert run('fn process(x) { zip_map([], x, ()) }', [1, 2]) == {}


def test_csv_rows() -> None:
    source = "fn process(x) { csv_rows(x, ',') }"
    assert run(source, 'a,"b,""c""\nd"\r\n\n1,2') == [["a", 'b,"c"\nd'], [""], ["1", "2"]]
    assert run(source, "") == []
    assert run("fn process(x) { csv_rows(x, ';') }", "a;b,c") == [["a", "b,c"]]


def test_a_helper_result_keeps_the_string_limit() -> None:
    registry = mr.ModuleRegistry(script_limits=mr.ScriptLimits(max_string_size=100))
    registry.register_script('const MODULE = #{ name: "t", version: "1.0.0" }; fn process(x) { lower_chars(x + x) }')
    with pytest.raises(mr.ScriptError):
        registry.create("t").process("A" * 60)


# -- the shipped modules against their earlier versions -----------------------

LONG = ("Crème brûlée & jalapeño — naïve café's ΣΑΣ İstanbul K 🎉 " * 2000)[:100_000]
TEXTS = [
    "",
    " ",
    "\n",
    "Hello, World!",
    "  Ünïcödé   Straße ÆØÅ œuvre — “quoted” ‘single’ … ",
    "ΣΑΣ σας İİ KELVIN\u212a \u00a0nbsp\u007fdel tab\tend\n",
    "emoji 🎉🎉 party-time 2024 it's don't\r\nwindows\r\n",
    "# Title\n\n- item *one*\n* item **two** `code`\n\nA [link](http://x.y/?a=1&b=2) <tag> \"q\"\n###### six\n####### seven\n",
    "a,b,c\n1,\"x, y\",3\n\n4,\"multi\nline\",\"\"\"q\"\"\"\n5\n",
    LONG,
]


def registries() -> tuple[mr.ModuleRegistry, mr.ModuleRegistry]:
    # The character loops pass the default operation limit on the long text.
    before = mr.ModuleRegistry(script_limits=mr.ScriptLimits.unlimited())
    before.load_scripts(REFERENCE)
    return before, mr.ModuleRegistry(bundled_scripts=True)


def outcome(instance: Any, value: Any) -> Any:
    try:
        return ("ok", instance.process(value))
    except mr.ModuleRegistryError as e:
        return ("error", type(e).__name__)


@pytest.mark.parametrize(
    ("name", "config"),
    [("slugify", None), ("slugify", {"max_length": 12}), ("text-stats", None), ("text-stats", {"top": 50}),
     ("markdown", None), ("csv-records", None), ("csv-records", {"delimiter": ";"})],
)  # fmt: skip
def test_a_rewritten_module_gives_what_it_gave(name: str, config: Any) -> None:
    before, after = registries()
    old, new = before.create(name, config=config), after.create(name, config=config)
    for text in TEXTS:
        assert outcome(new, text) == outcome(old, text), text[:80]
        # Bytes are read as the UTF-8 text they hold (the earlier versions
        # wrote bytes out as hex, the trust fix this replaces).
        assert outcome(new, text.encode()) == outcome(new, text), text[:80]


def test_csv_records_keeps_its_error_naming_the_row() -> None:
    before, after = registries()
    text = "a,b\n1,2\n3,4,5\n"
    for registry in (before, after):
        with pytest.raises(mr.ScriptError, match="row 3 has 3 fields but the header has 2"):
            registry.create("csv-records").process(text)


@pytest.mark.parametrize(
    "value",
    [
        {"template": "", "values": {}},
        {"template": "no placeholders", "values": {}},
        {"template": "Hi {{ user.name }}, {{{raw}}} & {{n}}!" * 300, "values": {"user": {"name": "Zoë <&>"}, "raw": "<b>", "n": 3}},
        {"template": "{{missing}}", "values": {}},
        {"template": "{{open", "values": {}},
    ],
)
def test_template_gives_what_it_gave(value: Any) -> None:
    before, after = registries()
    assert outcome(after.create("template"), value) == outcome(before.create("template"), value)


_PICK_DATA = {"users": [{"name": "a", "tags": ["x", "y"], "addresses": [{"city": "Oslo"}]}, {"name": "b"}], "meta": {"count": 2, "n": None}}


@pytest.mark.parametrize(
    ("config", "value"),
    [
        (None, {"data": _PICK_DATA, "path": "users[0].addresses[0].city"}),
        (None, {"data": _PICK_DATA, "path": "users[1]"}),
        (None, {"data": _PICK_DATA, "path": "users[0].tags[1]"}),
        (None, {"data": _PICK_DATA, "path": "users[5].name"}),
        (None, {"data": _PICK_DATA, "path": "users[-1]"}),
        (None, {"data": _PICK_DATA, "path": "meta.n"}),
        (None, {"data": _PICK_DATA, "path": "meta.count.deeper"}),
        (None, {"data": _PICK_DATA, "path": ""}),
        (None, {"data": [[1, [2, 3]]], "path": "[0][1][0]"}),
        (None, {"data": _PICK_DATA, "path": "users[0"}),
        (None, {"data": _PICK_DATA}),
        (None, "not a map"),
        ({"path": "meta"}, _PICK_DATA),
        ({"path": "users[0].name"}, _PICK_DATA),
        ({"path": "users[0].missing", "strict": True}, _PICK_DATA),
        ({"path": "users[9]", "strict": True}, _PICK_DATA),
    ],
)  # fmt: skip
def test_json_pick_gives_what_it_gave(config: Any, value: Any) -> None:
    """json-pick moves the data along its path instead of copying it at each
    step: the same value, `()` or error as the version that copied."""
    before, after = registries()
    assert outcome(after.create("json-pick", config=config), value) == outcome(before.create("json-pick", config=config), value)


def test_html_library_still_escapes_for_importers(tmp_path: Path) -> None:
    import shutil

    shutil.copy(mr.bundled_scripts() / "html.rhai", tmp_path / "html.rhai")
    (tmp_path / "page.rhai").write_text(
        'import "html" as html;\nconst MODULE = #{ name: "page", version: "1.0.0" };\nfn process(x) { "<p>" + html::escape(x) + "</p>" }\n'
    )
    registry = mr.ModuleRegistry()
    registry.load_scripts(tmp_path)
    assert registry.create("page").process('<a href="x">&</a>') == "<p>&lt;a href=&quot;x&quot;&gt;&amp;&lt;/a&gt;</p>"


def test_long_multibyte_bytes_are_read_under_the_default_limits() -> None:
    """Bytes are decoded natively (`utf8_text`): a 100,000-character text of
    accented letters as bytes (more bytes than the default array limit) reads
    as its text, and bytes that are not UTF-8 are refused naming the module."""
    registry = mr.ModuleRegistry(bundled_scripts=True)
    stats = registry.create("text-stats")
    text = "é" * 100_000
    assert stats.process(text.encode()) == stats.process(text)
    with pytest.raises(mr.ScriptError, match="text-stats: the bytes given are not UTF-8 text"):
        stats.process(b"ok \xff\xfe")
    out = registry.run_script('utf8_text(input)', "ça va".encode())
    assert out == "ça va"
    with pytest.raises(mr.ScriptError, match=r"not UTF-8 text \(from byte 2\)"):
        registry.run_script("utf8_text(input)", b"ab\xff")
