"""rudder.json(): every schema form and keyword family, output formatting, captures, errors.

Each schema is checked both ways: valid instances match (and the captured text is JSON that
``jsonschema`` accepts under the same schema), invalid text does not.
"""

from __future__ import annotations

import dataclasses
import enum
import json as stdlib_json
import uuid
from typing import Any

import jsonschema
import pydantic
import pytest
from typing_extensions import TypedDict

import rudder
from rudder.errors import GrammarError, MatchError

FORMAT_CHECKER = jsonschema.FormatChecker()


def spaced(text: str) -> str:
    """Compact JSON text written as json() writes it by default: ", " and ": " (as
    ``json.dumps``), keeping every other character (number forms, escapes) as it is."""
    out: list[str] = []
    in_string = escaped = False
    for char in text:
        out.append(char)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in ",:":
            out.append(" ")
    return "".join(out)


def test_spaced_leaves_strings_alone() -> None:
    assert spaced('{"a:b,c":[1,"x, y"],"d":{}}') == '{"a:b,c": [1, "x, y"], "d": {}}'


def assert_valid(grammar: rudder.GrammarNode, text: str, schema: dict[str, Any]) -> None:
    """``text`` matches, is captured whole under "value", and is valid under ``schema``."""
    result = grammar.match(text)
    assert result is not None, f"{text!r} should match"
    assert result["value"] == text
    jsonschema.validate(stdlib_json.loads(result["value"]), schema, format_checker=FORMAT_CHECKER)


def assert_invalid(grammar: rudder.GrammarNode, text: str, schema: dict[str, Any]) -> None:
    """``text`` does not match; if it is JSON at all, ``jsonschema`` rejects it too."""
    assert grammar.match(text) is None, f"{text!r} should not match"
    try:
        value = stdlib_json.loads(text)
    except ValueError:
        return
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(value, schema, format_checker=FORMAT_CHECKER)


def check(
    schema: object,
    as_dict: dict[str, Any],
    valid: list[str],
    invalid: list[str],
    grammar_only_invalid: tuple[str, ...] = (),
) -> None:
    """``valid`` texts match, ``invalid`` ones do not (and ``jsonschema`` agrees on both).

    ``grammar_only_invalid`` are rejected by the grammar although ``jsonschema`` (whose format
    checks are looser) would let them through.
    """
    grammar = rudder.json("value", schema=schema)
    for text in valid:
        assert_valid(grammar, spaced(text), as_dict)
    for text in invalid:
        assert_invalid(grammar, spaced(text), as_dict)
    for text in grammar_only_invalid:
        assert grammar.match(spaced(text)) is None, f"{text!r} should not match"


# -- schema forms ---------------------------------------------------------------------------

POINT_DICT: dict[str, Any] = {
    "type": "object",
    "properties": {"x": {"type": "integer"}, "y": {"type": "integer"}},
    "required": ["x", "y"],
    "additionalProperties": False,
}
POINT_VALID = ['{"x":1,"y":-2}', '{"x":0,"y":100}']
POINT_INVALID = [
    '{"x":1}',  # missing required property
    '{"y":2}',
    '{"x":1,"y":"2"}',  # wrong type
    '{"x":1.5,"y":2}',  # a number, not an integer
    '{"x":1,"y":null}',
    "[1,2]",  # not an object
    '{"x":1,"y":2',  # unterminated
]


class Point(pydantic.BaseModel):
    x: int
    y: int


@dataclasses.dataclass
class PointDataclass:
    x: int
    y: int


class PointTypedDict(TypedDict):
    x: int
    y: int


@pytest.mark.parametrize(
    ("schema", "as_dict"),
    [
        pytest.param(POINT_DICT, POINT_DICT, id="dict"),
        pytest.param(stdlib_json.dumps(POINT_DICT), POINT_DICT, id="json-string"),
        pytest.param(Point, Point.model_json_schema(), id="basemodel"),
        pytest.param(
            PointDataclass, pydantic.TypeAdapter(PointDataclass).json_schema(), id="dataclass"
        ),
        pytest.param(
            PointTypedDict, pydantic.TypeAdapter(PointTypedDict).json_schema(), id="typeddict"
        ),
        pytest.param(
            pydantic.TypeAdapter(Point), Point.model_json_schema(), id="typeadapter-of-model"
        ),
    ],
)
def test_object_schema_forms(schema: object, as_dict: dict[str, Any]) -> None:
    assert as_dict["required"] == ["x", "y"]
    check(schema, as_dict, POINT_VALID, POINT_INVALID)


def test_additional_properties_false_in_dict_schema() -> None:
    check(POINT_DICT, POINT_DICT, POINT_VALID, ['{"x":1,"y":2,"z":3}', '{"z":3,"x":1,"y":2}'])


@pytest.mark.parametrize(
    "schema",
    [
        pytest.param(pydantic.TypeAdapter(list[int]), id="typeadapter"),
        pytest.param(list[int], id="bare-type"),
        pytest.param({"type": "array", "items": {"type": "integer"}}, id="dict"),
        pytest.param('{"type": "array", "items": {"type": "integer"}}', id="json-string"),
    ],
)
def test_list_of_int_schema_forms(schema: object) -> None:
    as_dict = pydantic.TypeAdapter(list[int]).json_schema()
    check(schema, as_dict, ["[]", "[1]", "[1,-2,30]"], ['["1"]', "[1.5]", "[null]", "1", "{}"])


def test_pydantic_model_schema_is_the_models_json_schema_without_extra_keys() -> None:
    # pydantic drops extra keys of a plain model, so json() does not let the model write them.
    as_dict = {**Point.model_json_schema(), "additionalProperties": False}
    check(Point, as_dict, ['{"x":1,"y":2}'], ['{"y":2}', '{"x":1,"y":2,"z":"extra"}'])


class OpenPoint(pydantic.BaseModel, extra="allow"):
    x: int


class ClosedPoint(pydantic.BaseModel, extra="forbid"):
    x: int


def test_a_model_that_allows_extra_keys_may_get_them() -> None:
    check(OpenPoint, OpenPoint.model_json_schema(), ['{"x":1,"z":"extra"}'], ['{"z":1}'])
    check(ClosedPoint, ClosedPoint.model_json_schema(), ['{"x":1}'], ['{"x":1,"z":2}'])


class JustX(pydantic.BaseModel):
    x: int


def test_a_plain_model_generates_no_extra_keys() -> None:
    # The Mock would rather go on with more keys; its second choice closes the object.
    lm = rudder.models.Mock([b'<s>{"x": 1, "z": "extra"}<s>', b'<s>{"x": 1}<s>'])
    bare_schema = JustX.model_json_schema()  # pydantic's own: extra keys not excluded
    assert (lm + rudder.json("p", schema=bare_schema))["p"] == '{"x": 1, "z": "extra"}'
    out = lm + rudder.json("p", schema=JustX)
    assert out["p"] == '{"x": 1}'
    assert JustX.model_validate_json(out["p"]) == JustX(x=1)


def test_no_schema_allows_any_json_value() -> None:
    grammar = rudder.json("value")
    for text in ["1", "-2.5e3", "null", "true", '"s"', "[]", '[1,{"a":null}]', '{"a":{"b":[]}}']:
        assert_valid(grammar, spaced(text), {})
    for text in ["", "nul", "'s'", "[1,]", "{a:1}", "01", "True"]:
        assert grammar.match(text) is None, text


def test_empty_dict_schema_allows_any_json_value() -> None:
    grammar = rudder.json("value", schema={})
    for text in ["1", "null", '"s"', '[{"a":[true]}]']:
        assert_valid(grammar, spaced(text), {})


@pytest.mark.parametrize("schema", [True, {}, None])
def test_true_empty_and_no_schema_allow_any_json_value(schema: object) -> None:
    grammar = rudder.json("value", schema=schema)
    for text in ["1", '{"a": [true, null]}', '"</script>"']:
        assert_valid(grammar, text, {})


def test_false_schema_is_unsatisfiable() -> None:
    with pytest.raises(GrammarError) as caught:
        rudder.json("value", schema=False)
    assert caught.value.args[0] == "Unsatisfiable schema: schema is false"


def test_unsatisfiable_schemas_say_so_in_llguidances_words() -> None:
    with pytest.raises(GrammarError) as caught:
        rudder.json(schema={"type": "string", "minLength": 10, "maxLength": 5})
    assert caught.value.args[0] == (
        "Unsatisfiable schema: minLength (10) is greater than maxLength (5)"
    )


def test_overlapping_one_of_is_read_as_any_of_with_a_warning() -> None:
    schema = {"oneOf": [{"enum": ["a", "b", "c"]}, {"enum": ["c", 2, 3]}]}
    with pytest.warns(UserWarning, match="oneOf not fully supported, falling back to anyOf"):
        grammar = rudder.json("value", schema=schema)
    for text in ['"a"', '"c"', "3"]:
        assert grammar.match(text) is not None, text
    assert grammar.match('"d"') is None


def test_disjoint_one_of_gives_no_warning() -> None:
    # filterwarnings = error: any warning here fails the test.
    grammar = rudder.json("value", schema={"oneOf": [{"type": "integer"}, {"type": "boolean"}]})
    assert grammar.match("true") is not None


@pytest.mark.parametrize(
    "schema",
    [
        pydantic.TypeAdapter(dict[int, int]),
        dict[int, str],
        pydantic.create_model("M", d=(dict[int, int], ...)),
    ],
)
def test_non_string_keys_are_refused(schema: object) -> None:
    with pytest.raises(GrammarError, match="JSON does not support non-string keys, got type int"):
        rudder.json(schema=schema)


def test_string_keys_are_fine() -> None:
    grammar = rudder.json("value", schema=pydantic.TypeAdapter(dict[str, int]))
    assert grammar.match('{"a": 1, "日本": 2}') is not None
    assert grammar.match('{"a": "x"}') is None


def test_schema_dict_is_not_modified() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "integer"}}}
    before = stdlib_json.dumps(schema)
    rudder.json("value", schema=schema, separators=(", ", ": "), lenient=True)
    assert stdlib_json.dumps(schema) == before


# -- keywords -------------------------------------------------------------------------------


class Address(pydantic.BaseModel):
    street: str
    zip: str = pydantic.Field(pattern=r"^[0-9]{5}$")


class Person(pydantic.BaseModel):
    name: str
    address: Address
    previous: list[Address] = pydantic.Field(max_length=2)


def test_ref_and_defs_from_nested_pydantic_model() -> None:
    as_dict = Person.model_json_schema()
    assert "Address" in as_dict["$defs"]
    assert as_dict["properties"]["address"] == {"$ref": "#/$defs/Address"}
    home = '{"street":"Main St","zip":"12345"}'
    check(
        Person,
        as_dict,
        [
            f'{{"name":"Ann","address":{home},"previous":[]}}',
            f'{{"name":"Bo","address":{home},"previous":[{home},{home}]}}',
        ],
        [
            '{"name":"Ann","address":{"street":"Main St","zip":"1234"},"previous":[]}',
            '{"name":"Ann","address":{"street":"Main St"},"previous":[]}',
            f'{{"name":"Ann","address":"{home}","previous":[]}}',
            f'{{"name":"Bo","address":{home},"previous":[{home},{home},{home}]}}',
        ],
    )


def test_ref_and_defs_in_dict_schema() -> None:
    schema = {
        "$defs": {"pos": {"type": "integer", "minimum": 1}},
        "type": "array",
        "items": {"$ref": "#/$defs/pos"},
    }
    check(schema, schema, ["[1,2,300]"], ["[0]", "[-1]", '["1"]'])


def test_recursive_ref() -> None:
    schema = {
        "$defs": {
            "node": {
                "type": "object",
                "properties": {
                    "v": {"type": "integer"},
                    "next": {"anyOf": [{"$ref": "#/$defs/node"}, {"type": "null"}]},
                },
                "required": ["v", "next"],
                "additionalProperties": False,
            }
        },
        "$ref": "#/$defs/node",
    }
    check(
        schema,
        schema,
        ['{"v":1,"next":null}', '{"v":1,"next":{"v":2,"next":{"v":3,"next":null}}}'],
        ['{"v":1}', '{"v":1,"next":{"v":"2","next":null}}', '{"v":1,"next":{}}'],
    )


class WithUnions(pydantic.BaseModel):
    key: int | str
    note: str | None = None


def test_any_of_from_pydantic_union_and_optional() -> None:
    as_dict = WithUnions.model_json_schema()
    assert "anyOf" in as_dict["properties"]["key"]
    assert "anyOf" in as_dict["properties"]["note"]
    check(
        WithUnions,
        as_dict,
        ['{"key":1}', '{"key":"one"}', '{"key":1,"note":null}', '{"key":"k","note":"hi"}'],
        ['{"key":null}', '{"key":1.5}', '{"key":[1]}', '{"key":1,"note":2}', '{"note":"x"}'],
    )


def test_any_of_in_dict_schema() -> None:
    schema = {"anyOf": [{"type": "integer", "minimum": 10}, {"type": "boolean"}]}
    check(schema, schema, ["10", "99", "true", "false"], ["9", "null", '"10"', "1.5"])


class Color(enum.Enum):
    RED = "red"
    GREEN = "green"


class Paint(pydantic.BaseModel):
    color: Color
    coats: int


def test_python_enum_in_pydantic_model() -> None:
    as_dict = Paint.model_json_schema()
    assert as_dict["$defs"]["Color"]["enum"] == ["red", "green"]
    check(
        Paint,
        as_dict,
        ['{"color":"red","coats":2}', '{"color":"green","coats":1}'],
        ['{"color":"blue","coats":2}', '{"color":"RED","coats":2}', '{"color":0,"coats":2}'],
    )


def test_enum_in_dict_schema() -> None:
    schema = {"enum": ["a", 1, None, True, [1, 2]]}
    check(schema, schema, ['"a"', "1", "null", "true", "[1,2]"], ['"b"', "2", "false", "[2,1]"])


@pytest.mark.parametrize(
    ("schema", "valid", "invalid"),
    [
        ({"const": "fixed"}, ['"fixed"'], ['"fixe"', '"fixedd"', "1"]),
        ({"const": 42}, ["42"], ["43", '"42"']),
        (
            {
                "type": "object",
                "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}},
                "required": ["kind", "r"],
            },
            ['{"kind":"circle","r":1.5}'],
            ['{"kind":"square","r":1.5}', '{"r":1.5}'],
        ),
    ],
)
def test_const(schema: dict[str, Any], valid: list[str], invalid: list[str]) -> None:
    check(schema, schema, valid, invalid)


def test_array_min_and_max_items() -> None:
    schema = {"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3}
    check(schema, schema, ["[1]", "[1,2]", "[1,2,3]"], ["[]", "[1,2,3,4]", '["a"]'])


class Bounded(pydantic.BaseModel):
    tags: list[str] = pydantic.Field(min_length=1, max_length=2)
    age: int = pydantic.Field(ge=0, le=150)
    code: str = pydantic.Field(min_length=2, max_length=3)


def test_pydantic_field_constraints() -> None:
    as_dict = Bounded.model_json_schema()
    check(
        Bounded,
        as_dict,
        ['{"tags":["a"],"age":0,"code":"ab"}', '{"tags":["a","b"],"age":150,"code":"abc"}'],
        [
            '{"tags":[],"age":1,"code":"ab"}',
            '{"tags":["a","b","c"],"age":1,"code":"ab"}',
            '{"tags":["a"],"age":-1,"code":"ab"}',
            '{"tags":["a"],"age":151,"code":"ab"}',
            '{"tags":["a"],"age":1,"code":"a"}',
            '{"tags":["a"],"age":1,"code":"abcd"}',
        ],
    )


@pytest.mark.parametrize(
    ("schema", "valid", "invalid"),
    [
        (
            {"type": "string", "minLength": 2, "maxLength": 4},
            ['"ab"', '"abcd"', '"éé"', '"\\n\\n"'],
            ['"a"', '""', '"abcde"', "12"],
        ),
        (
            {"type": "string", "pattern": "^[a-z]+[0-9]$"},
            ['"a1"', '"abc9"'],
            ['"1"', '"a"', '"A1"', '"a12"'],
        ),
        (
            {"type": "integer", "minimum": -5, "maximum": 10},
            ["-5", "0", "10"],
            ["-6", "11", "100", "5.5", '"5"'],
        ),
        (
            {"type": "integer", "exclusiveMinimum": 0, "exclusiveMaximum": 3},
            ["1", "2"],
            ["0", "3"],
        ),
        (
            {"type": "number", "minimum": 0.5, "maximum": 2},
            ["0.5", "1", "1.75", "2"],
            ["0.25", "2.5", "-1"],
        ),
        ({"type": "boolean"}, ["true", "false"], ["0", '"true"', "null"]),
        ({"type": "null"}, ["null"], ["0", '"null"', "false"]),
    ],
)
def test_scalar_keywords(schema: dict[str, Any], valid: list[str], invalid: list[str]) -> None:
    check(schema, schema, valid, invalid)


@pytest.mark.parametrize(
    ("fmt", "valid", "invalid"),
    [
        ("date", ["2024-01-31", "1999-12-01"], ["2024-13-01", "2024-1-31", "31.01.2024"]),
        (
            "date-time",
            ["2024-01-31T12:00:00Z", "2024-01-31T23:59:59+02:00"],
            ["2024-01-31", "2024-01-31 12:00", "12:00:00Z"],
        ),
        ("email", ["a@b.com", "first.last@example.org"], ["ab.com", "a.b"]),
        (
            "uuid",
            [str(uuid.UUID(int=0)), "123e4567-e89b-12d3-a456-426614174000"],
            ["xyz", "123e4567e89b12d3a456426614174000x", "123e4567-e89b-12d3-a456"],
        ),
        ("ipv4", ["192.168.0.1", "0.0.0.0"], ["256.1.1.1", "1.2.3", "a.b.c.d"]),
    ],
)
def test_string_formats(fmt: str, valid: list[str], invalid: list[str]) -> None:
    schema = {"type": "string", "format": fmt}
    check(
        schema,
        schema,
        [stdlib_json.dumps(text) for text in valid],
        [stdlib_json.dumps(text) for text in invalid],
    )


def test_email_format_is_stricter_than_jsonschemas_check() -> None:
    schema = {"type": "string", "format": "email"}
    check(schema, schema, ['"a@b.co"'], [], grammar_only_invalid=('"a@"', '"@b.com"', '"a@@b"'))


# -- output formatting ----------------------------------------------------------------------

PAIR = {
    "type": "object",
    "properties": {"a": {"type": "integer"}, "b": {"type": "array", "items": {"type": "integer"}}},
    "required": ["a", "b"],
    "additionalProperties": False,
}


@pytest.mark.parametrize(
    ("options", "valid", "invalid"),
    [
        pytest.param(
            {},
            ['{"a": 1, "b": [1, 2]}'],
            ['{"a":1,"b":[1,2]}', '{"a": 1,"b": [1, 2]}', '{"a":  1, "b": []}', ' {"a": 1}'],
            id="json-dumps-default",
        ),
        pytest.param(
            {"separators": (",", ":")},
            ['{"a":1,"b":[1,2]}'],
            ['{"a": 1,"b":[1,2]}', '{"a":1, "b":[1,2]}', '{"a":1,"b":[1, 2]}', ' {"a":1,"b":[]}'],
            id="compact",
        ),
        pytest.param(
            {"separators": (", ", ": ")},
            ['{"a": 1, "b": [1, 2]}'],
            ['{"a":1,"b":[1,2]}', '{"a": 1,"b": [1, 2]}', '{"a":  1, "b": []}'],
            id="separators",
        ),
        pytest.param(
            {"separators": (",\n", " = ")},
            ['{"a" = 1,\n"b" = [1,\n2]}'],
            ['{"a":1,"b":[1,2]}', '{"a" = 1,"b" = []}'],
            id="separators-with-newline",
        ),
        pytest.param(
            {"separators": (" | ", ". ")},
            ['{"a". 1 | "b". [1 | 2]}'],
            ['{"a"x 1 | "b". []}', '{"a". 1 x "b". []}'],
            id="separators-with-regex-characters",
        ),
        pytest.param(
            {"whitespace_flexible": True},
            ['{"a":1,"b":[1,2]}', '{"a": 1, "b": [1, 2]}', '{ "a" :\n\t1 ,\n  "b" : [ 1 , 2 ] }'],
            ['{"a":1 "b":[1,2]}', '{"a"=1,"b":[]}'],
            id="whitespace-flexible",
        ),
    ],
)
def test_formatting(options: dict[str, Any], valid: list[str], invalid: list[str]) -> None:
    grammar = rudder.json("value", schema=PAIR, **options)
    for text in valid:
        result = grammar.match(text)
        assert result is not None, text
        assert result["value"] == text
        # Back to standard separators, the text is the same JSON value in every case.
        plain = text
        for key_sep, item_sep in [(" = ", ",\n"), (". ", " | ")]:
            plain = plain.replace(key_sep, ":").replace(item_sep, ",")
        assert stdlib_json.loads(plain) == {"a": 1, "b": [1, 2]}
    for text in invalid:
        assert grammar.match(text) is None, text


def test_compact_and_spaced_output_parse_to_the_same_value() -> None:
    compact = rudder.json("value", schema=PAIR, separators=(",", ":")).match('{"a":1,"b":[1,2]}')
    spaced = rudder.json("value", schema=PAIR).match('{"a": 1, "b": [1, 2]}')
    assert compact is not None
    assert spaced is not None
    assert stdlib_json.loads(compact["value"]) == stdlib_json.loads(spaced["value"])
    jsonschema.validate(stdlib_json.loads(spaced["value"]), PAIR)


def test_x_guidance_options_in_the_schema_are_kept() -> None:
    schema = {**PAIR, "x-guidance": {"item_separator": ",", "key_separator": ":"}}
    grammar = rudder.json("value", schema=schema)
    assert grammar.match('{"a":1,"b":[1,2]}') is not None
    assert grammar.match('{"a": 1, "b": [1, 2]}') is None


def test_compact_mismatch_raises_match_error_at_the_space() -> None:
    grammar = rudder.json("value", schema=PAIR, separators=(",", ":"))
    with pytest.raises(MatchError, match="rejected byte 5") as caught:
        grammar.match('{"a": 1,"b":[]}', raise_exceptions=True)
    assert caught.value.position == 5
    assert caught.value.byte == b" "
    assert caught.value.consumed == b'{"a":'
    assert b"1" in caught.value.allowed_bytes
    assert b" " not in caught.value.allowed_bytes


def test_wrong_type_raises_match_error() -> None:
    grammar = rudder.json("value", schema={"type": "integer"})
    with pytest.raises(MatchError) as caught:
        grammar.match('"1"', raise_exceptions=True)
    assert caught.value.position == 0
    assert caught.value.byte == b'"'


def test_incomplete_value_raises_match_error_at_the_end() -> None:
    grammar = rudder.json("value", schema=PAIR)
    with pytest.raises(MatchError, match="ended at byte 7") as caught:
        grammar.match('{"a": 1', raise_exceptions=True)
    assert caught.value.byte is None
    assert b"," in caught.value.allowed_bytes
    assert b"}" not in caught.value.allowed_bytes  # "b" is required


def test_partial_match_of_a_prefix() -> None:
    result = rudder.json("value", schema=PAIR).match('{"a": 1, "b": [', allow_partial=True)
    assert result is not None
    assert result.partial


# -- captures -------------------------------------------------------------------------------


def test_capture_inside_surrounding_text() -> None:
    grammar = "Answer: " + rudder.json("answer", schema=Point) + "\nDone."
    result = grammar.match('Answer: {"x": 3, "y": 4}\nDone.')
    assert result is not None
    assert dict(result) == {"answer": '{"x": 3, "y": 4}'}
    assert Point.model_validate_json(result["answer"]) == Point(x=3, y=4)


def test_no_name_means_no_capture() -> None:
    result = rudder.json(schema={"type": "integer"}).match("12")
    assert result is not None
    assert dict(result) == {}


def test_two_json_captures_with_different_names() -> None:
    grammar = (
        rudder.json("n", schema={"type": "integer"})
        + " "
        + rudder.json("s", schema={"type": "string"})
    )
    result = grammar.match('7 "seven"')
    assert result is not None
    assert dict(result) == {"n": "7", "s": '"seven"'}


def test_list_append_collects_every_value() -> None:
    schema = {"type": "object", "properties": {"v": {"type": "integer"}}, "required": ["v"]}
    item = rudder.json("xs", schema=schema, list_append=True)
    grammar = item + "," + item
    result = grammar.match('{"v": 1},{"v": 22}')
    assert result is not None
    assert result["xs"] == ['{"v": 1}', '{"v": 22}']
    for text in result["xs"]:
        jsonschema.validate(stdlib_json.loads(text), schema)
    assert grammar.match('{"v": 1},{"v": "x"}') is None
    assert grammar.match('{"v": 1}') is None


def test_list_append_separately_built_grammars_and_repeats() -> None:
    grammar = (
        rudder.json("xs", schema={"type": "integer"}, list_append=True)
        + ","
        + rudder.json("xs", schema={"type": "integer"}, list_append=True)
    )
    result = grammar.match("1,-22")
    assert result is not None
    assert result["xs"] == ["1", "-22"]

    repeated = rudder.one_or_more(rudder.json("xs", schema={"type": "boolean"}, list_append=True))
    result = repeated.match("truefalsetrue")
    assert result is not None
    assert result["xs"] == ["true", "false", "true"]


# -- errors ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        pytest.param(
            {"schema": {"type": "strin"}},
            r"unsupported or invalid JSON schema: .*strin",
            id="bad-type-name",
        ),
        pytest.param(
            {"schema": {"type": "object", "properties": {"a": {"type": "intger"}}}},
            r"unsupported or invalid JSON schema: .*intger",
            id="bad-nested-type-name",
        ),
        pytest.param({"schema": "{not json"}, "the schema string is not valid JSON", id="not-json"),
        pytest.param({"schema": ""}, "the schema string is not valid JSON", id="empty-string"),
        pytest.param({"schema": "[1, 2]"}, "must be a JSON object", id="json-array-string"),
        pytest.param({"schema": '"integer"'}, "must be a JSON object", id="json-string-string"),
        pytest.param(
            {"schema": Point(x=1, y=2)},
            r"takes the model class, not an instance: pass Point, not Point\(\.\.\.\)",
            id="model-instance",
        ),
        pytest.param(
            {"schema": {"type": "string", "format": "no-such-format"}},
            r"Unknown format: no-such-format(.|\n)*lenient=True",
            id="unknown-format",
        ),
        pytest.param(
            {"schema": {"type": "string", "format": "uri-reference"}},
            "Unknown format: uri-reference",
            id="unsupported-format",
        ),
        pytest.param({"schema": object()}, "cannot make a JSON schema from <object", id="object"),
        pytest.param({"schema": 5}, "cannot make a JSON schema from 5", id="int"),
        pytest.param(
            {"schema": b'{"type": "integer"}'}, "cannot make a JSON schema from b'", id="bytes"
        ),
        pytest.param(
            {"schema": {"enum": {1, 2}}}, "cannot be written as JSON.*set", id="unserializable"
        ),
        pytest.param({"max_tokens": 0}, "max_tokens must be a positive int, got 0", id="zero"),
        pytest.param({"max_tokens": -3}, "max_tokens must be a positive int, got -3", id="neg"),
        pytest.param({"max_tokens": True}, "max_tokens must be a positive int", id="bool"),
        pytest.param({"max_tokens": 2.5}, "max_tokens must be a positive int", id="float"),
        pytest.param({"temperature": -1}, "temperature must be >= 0", id="temperature"),
    ],
)
def test_bad_input_raises_grammar_error(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(GrammarError, match=message):
        rudder.json("value", **kwargs)


def test_grammar_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="not valid JSON"):
        rudder.json(schema="{")


@pytest.mark.parametrize(
    ("name", "list_append", "message"),
    [
        ("", False, "name must be a non-empty str"),
        (3, False, "name must be a non-empty str"),
        (None, True, "list_append=True needs a name"),
    ],
)
def test_bad_name_raises_grammar_error(name: object, list_append: bool, message: str) -> None:
    with pytest.raises(GrammarError, match=message):
        rudder.json(name, schema={"type": "integer"}, list_append=list_append)  # type: ignore[arg-type]


def test_lenient_accepts_unknown_format_and_ignores_it() -> None:
    schema = {"type": "string", "format": "no-such-format"}
    with pytest.warns(UserWarning, match="Unknown format: no-such-format"):
        grammar = rudder.json("value", schema=schema, lenient=True)
    result = grammar.match('"anything at all"')
    assert result is not None
    assert result["value"] == '"anything at all"'
    assert grammar.match("1") is None
