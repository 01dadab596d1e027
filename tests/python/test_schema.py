"""`Schema`: the type of values, from Python.

Type expressions parsed and printed canonically, values checked (with the
path, the expected type and what was found), assignability, JSON Schema
out and in (round trips against pydantic's own JSON Schema for the same
annotation), equality, hashing and pickling.
"""

from __future__ import annotations

import pickle
from collections import OrderedDict
from typing import Any, Literal, Optional, Union

import pytest
from typing_extensions import TypedDict

import module_registry as mr
from module_registry import Schema, SchemaError


def test_a_type_expression_is_read_and_printed_canonically() -> None:
    post = Schema("{title: str, tags?: list[str]}")
    assert str(post) == "{tags?: list[str], title: str}"
    assert repr(post) == "Schema('{tags?: list[str], title: str}')"
    assert Schema(str(post)) == post
    assert str(Schema("null | int")) == "int | null"
    assert str(Schema('"slow" | "fast"')) == '"fast" | "slow"'
    assert str(Schema("map[str,float]")) == "map[str, float]"
    assert str(Schema("{a: int, ...}")) == "{a: int, ...}"
    assert str(Schema("opaque[pandas.core.frame.DataFrame]")) == "opaque[pandas.core.frame.DataFrame]"


def test_a_bad_expression_is_a_schema_error_saying_where() -> None:
    with pytest.raises(SchemaError, match=r'unknown type "lst" at column 1') as caught:
        Schema("lst[str]")
    err = caught.value
    assert isinstance(err, mr.ValidationError) and isinstance(err, mr.ModuleRegistryError)
    assert (err.path, err.expected, err.found) == (None, None, None)
    with pytest.raises(SchemaError, match="did you mean str"):
        Schema("string")
    with pytest.raises(TypeError):
        Schema(3)  # type: ignore[arg-type]


def test_hostile_expressions_are_refused_quickly() -> None:
    with pytest.raises(SchemaError, match="deeper than 64"):
        Schema("list[" * 10_000 + "int" + "]" * 10_000)
    with pytest.raises(SchemaError, match="more than 10000 nodes"):
        Schema(" | ".join(["1"] * 1_000_000))


@pytest.mark.parametrize(
    ("text", "value", "fits"),
    [
        ("str", "x", True),
        ("str", b"x", False),
        ("bytes", b"x", True),
        ("int", True, False),
        ("bool", True, True),
        ("float", 3, True),
        ("int", 3.0, False),
        ("null", None, True),
        ("list[int]", [1, 2], True),
        ("list[int]", (1, 2), True),  # a tuple is a list
        ("list[int]", [1, "2"], False),
        ("map[str, float]", {"a": 1, "b": 2.5}, True),
        ("{title: str, tags?: list[str]}", {"title": "t"}, True),
        ("{title: str, tags?: list[str]}", {"title": "t", "x": 1}, False),
        ("{title: str, ...}", {"title": "t", "x": 1}, True),
        ('"fast" | "slow"', "fast", True),
        ('"fast" | "slow"', "medium", False),
        ("1 | 2", 2, True),
        ("opaque", object(), True),
        ("opaque[collections.OrderedDict]", OrderedDict(), True),
        ("opaque[dict]", OrderedDict(), True),  # an instance of a subclass
        ("opaque[collections.OrderedDict]", {1: 2}, False),
        ("any", object(), True),
    ],
)
def test_values_are_checked_against_types(text: str, value: Any, fits: bool) -> None:
    schema = Schema(text)
    assert schema.accepts(value) is fits
    if fits:
        schema.validate(value)
    else:
        with pytest.raises(SchemaError):
            schema.validate(value)


class Frame:
    pass


class SubFrame(Frame):
    pass


def test_opaque_names_the_class_and_takes_subclasses() -> None:
    name = f"{Frame.__module__}.{Frame.__qualname__}"
    schema = Schema(f"opaque[{name}]")
    assert schema.accepts(Frame()) and schema.accepts(SubFrame())
    assert not Schema(f"opaque[{name}Other]").accepts(Frame())
    sub = Schema(f"opaque[{SubFrame.__module__}.{SubFrame.__qualname__}]")
    assert not sub.accepts(Frame())
    with pytest.raises(SchemaError) as caught:
        sub.validate(Frame())
    assert caught.value.found == f"opaque[Python {name}]"


def test_a_mismatch_says_path_expected_and_found() -> None:
    schema = Schema("{title: str, tags?: list[str]}")
    with pytest.raises(SchemaError) as caught:
        schema.validate({"title": "hi", "tags": ["a", "b", 3]})
    err = caught.value
    assert (err.path, err.expected, err.found) == ("$.tags[2]", "str", "int")
    assert str(err) == "value at $.tags[2] does not fit: expected str, found int"
    with pytest.raises(SchemaError) as caught:
        schema.validate({})
    assert (caught.value.path, caught.value.found) == ("$.title", "nothing")
    with pytest.raises(SchemaError) as caught:
        Schema('{speed: "fast" | "slow"}').validate({"speed": "medium"})
    assert (caught.value.expected, caught.value.found) == ('"fast" | "slow"', '"medium"')


def test_assignability() -> None:
    assert Schema("int").is_assignable_to(Schema("float"))
    assert Schema("int").is_assignable_to("float | null")
    assert not Schema("bool").is_assignable_to("int")
    assert Schema('"fast" | "slow"').is_assignable_to("str")
    assert Schema("{a: int, b: str}").is_assignable_to("{a: float, ...}")
    assert not Schema("{a: int, b: str}").is_assignable_to("{a: float}")
    assert Schema("opaque[x.Y]").is_assignable_to("opaque")
    assert not Schema("opaque").is_assignable_to("opaque[x.Y]")
    with pytest.raises(SchemaError):
        Schema("int").is_assignable_to("nope")


def test_json_schema_out_and_in() -> None:
    schema = Schema("{title: str, data?: bytes}")
    out = schema.to_json_schema()
    assert out == {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "type": "object",
        "properties": {
            "data": {"type": "string", "contentEncoding": "base64"},
            "title": {"type": "string"},
        },
        "required": ["title"],
        "additionalProperties": False,
    }
    assert Schema.from_json_schema(out) == schema
    assert Schema.from_json_schema(True) == Schema("any")
    with pytest.raises(SchemaError, match='keyword "minLength"'):
        Schema.from_json_schema({"type": "string", "minLength": 1})
    with pytest.raises(SchemaError, match='"\\$ref" loop'):
        Schema.from_json_schema({"$defs": {"A": {"$ref": "#/$defs/A"}}, "$ref": "#/$defs/A"})
    with pytest.raises(SchemaError, match="a JSON Schema is JSON"):
        Schema.from_json_schema({"const": float("nan")})
    with pytest.raises(SchemaError, match="a JSON Schema is JSON"):
        Schema.from_json_schema({"const": object()})


def test_equality_hashing_and_pickling() -> None:
    a, b = Schema("{b: int, a: str}"), Schema("{ a: str, b: int }")
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert a != Schema("{a: str, b: int, ...}")
    assert a != "{a: str, b: int}"
    for protocol in range(pickle.HIGHEST_PROTOCOL + 1):
        back = pickle.loads(pickle.dumps(a, protocol=protocol))
        assert back == a and str(back) == str(a)


def shout(text: str) -> str:
    return text.upper()


def test_a_declaration_carries_three_types() -> None:
    config = mr.ModuleConfig("word-count", "1.0.0", input="str", output=Schema("int"), config_type="{min?: int}")
    assert (config.input, config.output, config.config_type) == (Schema("str"), Schema("int"), Schema("{min?: int}"))
    plain = mr.ModuleConfig("plain")
    assert plain.input == plain.output == plain.config_type == Schema("any")
    built = mr.ModuleConfig("b").with_input("list[str]").with_output("int").with_config_type("{x: float}")
    assert (str(built.input), str(built.output), str(built.config_type)) == ("list[str]", "int", "{x: float}")
    assert config != mr.ModuleConfig("word-count", "1.0.0", input="str", output="float", config_type="{min?: int}")
    # Declaring any is not declaring.
    assert mr.ModuleConfig("plain", input="any") == plain
    with pytest.raises(SchemaError, match="unknown type"):
        mr.ModuleConfig("bad", input="lst[str]")
    with pytest.raises(TypeError, match="type expression"):
        mr.ModuleConfig("bad").with_output(int)  # type: ignore[arg-type]


def test_declared_types_reach_module_info_pickles_and_registry_pickles() -> None:
    registry = mr.ModuleRegistry()
    config = mr.ModuleConfig("shout", "1.0.0", input="str", output="str")
    info = registry.register(config, shout)
    assert (info.input, info.output, info.config_type) == (Schema("str"), Schema("str"), Schema("any"))
    plain = registry.register(mr.ModuleConfig("plain"), shout)
    assert plain.input == Schema("any")
    assert repr(info).endswith(', types="str -> str")') and "types" not in repr(plain)
    html = info._repr_html_()
    assert "<code>str</code> → <code>str</code>" in html and "config type" in html
    for obj in (config, info):
        back = pickle.loads(pickle.dumps(obj))
        assert back == obj and back.input == Schema("str")
    rebuilt = pickle.loads(pickle.dumps(registry))
    assert rebuilt.get("shout").output == Schema("str")
    assert rebuilt.get("plain").output == Schema("any")
    assert rebuilt.create("shout").process("hi") == "HI"


def test_the_decorator_declares_types() -> None:
    registry = mr.ModuleRegistry()

    @registry.module(name="count", input="str", output=Schema("int"), config_type="{min?: int}")
    def count(text: str) -> int:
        return len(text.split())

    info = registry.get("count")
    assert info is not None
    assert (str(info.input), str(info.output), str(info.config_type)) == ("str", "int", "{min?: int}")
    assert registry.create("count").process("a b c") == 3
    with pytest.raises(SchemaError):
        registry.module(name="bad", input="lst")(count)
    assert registry.get("bad") is None


pydantic = pytest.importorskip("pydantic")
from pydantic import BaseModel, TypeAdapter, conint  # noqa: E402


class Post(TypedDict, total=False):
    title: str
    views: int


class Tag(BaseModel):
    name: str


class Article(BaseModel):
    title: str
    tags: list[Tag]
    score: Optional[float] = None


@pytest.mark.parametrize(
    ("annotation", "text"),
    [
        (str, "str"),
        (int, "int"),
        (float, "float"),
        (bool, "bool"),
        (bytes, "bytes"),
        (type(None), "null"),
        (Any, "any"),
        (list[str], "list[str]"),
        (tuple[int, ...], "list[int]"),
        (dict[str, int], "map[str, int]"),
        (Optional[int], "int | null"),
        (Union[int, str], "int | str"),
        (Literal["fast", "slow"], '"fast" | "slow"'),
        (Literal[1, 2], "1 | 2"),
        (list[dict[str, Optional[str]]], "list[map[str, str | null]]"),
        (Post, "{title?: str, views?: int, ...}"),
        (Tag, "{name: str, ...}"),
        (Article, "{score?: float | null, tags: list[{name: str, ...}], title: str, ...}"),
    ],
)
def test_pydantic_json_schema_reads_as_the_same_type(annotation: Any, text: str) -> None:
    theirs = TypeAdapter(annotation).json_schema()
    schema = Schema.from_json_schema(theirs)
    assert schema == Schema(text), theirs
    # And ours, read back by us, is the same type again.
    assert Schema.from_json_schema(schema.to_json_schema()) == schema


def test_pydantic_json_schema_we_cannot_express_is_refused_by_name() -> None:
    import datetime

    theirs = TypeAdapter(datetime.datetime).json_schema()
    with pytest.raises(SchemaError, match='"format" "date-time"'):
        Schema.from_json_schema(theirs)
    constrained = TypeAdapter(conint(ge=0)).json_schema()
    with pytest.raises(SchemaError, match='keyword "minimum"'):
        Schema.from_json_schema(constrained)
