"""Bad input fails when the grammar is built, with a message that names the problem and the fix."""

from __future__ import annotations

from collections.abc import Callable

import pytest

import rudder
from rudder import (
    gen,
    lark,
    models,
    regex,
    select,
    special_token,
    substring,
    token_limit,
    with_temperature,
)
from rudder.errors import (
    CaptureNotFoundError,
    GrammarError,
    GrammarTypeError,
    MatchError,
    RudderError,
    RunError,
    SettingsError,
    TraceError,
    WrongTypeError,
)
from rudder.trace import load_trace


def test_hierarchy() -> None:
    assert issubclass(GrammarError, RudderError)
    assert issubclass(MatchError, RudderError)
    assert issubclass(rudder.errors.CaptureNameError, GrammarError)
    assert issubclass(rudder.errors.StatefulInGrammarError, GrammarError)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: regex("[a-"), "(?s)invalid regex '\\[a-'.*unclosed character class"),
        (lambda: regex("(?<=a)b"), "invalid regex"),
        (lambda: gen(regex="a{2,1}"), "invalid regex"),
        (lambda: gen(stop_regex="(", stop="x"), "invalid stop_regex"),
        (lambda: regex(3), "regex must be a str pattern"),  # type: ignore[arg-type]
        (lambda: lark("start: foo"), "invalid Lark grammar.*unknown name"),
        (lambda: lark("start: 'a"), "invalid Lark grammar"),
        (lambda: lark(b"start: 'a'"), "takes the grammar as a str"),  # type: ignore[arg-type]
        (lambda: rudder.gbnf_to_lark("root ::= ("), "cannot convert the GBNF grammar"),
        (lambda: select([]), "at least one option"),
        (lambda: select("abc"), "takes a list of options"),
        (lambda: gen(max_tokens=0), "max_tokens must be a positive int"),
        (lambda: gen(max_tokens=-3), "max_tokens must be a positive int"),
        (lambda: token_limit("a", 0), "max_tokens must be a positive int"),
        (lambda: gen(temperature=-1), "temperature must be >= 0"),
        (lambda: with_temperature("a", "hot"), "temperature must be a number"),  # type: ignore[arg-type]
        (lambda: gen(list_append=True), "list_append=True needs a name"),
        (lambda: gen("a", save_stop_text=True), "save_stop_text needs stop="),
        (lambda: gen(stop="x", save_stop_text=True), "save_stop_text=True needs a name"),
        (lambda: gen(name=""), "name must be a non-empty str"),
        (lambda: gen(stop=["a", 1]), "stop must be a str or a list of str"),  # type: ignore[list-item]
        (lambda: substring("abc", chunk="line"), "chunk must be 'word' or 'character'"),  # type: ignore[arg-type]
        (lambda: special_token(""), "exact text of one special token"),
        (lambda: rudder.sequence("a", min_length=-1), "min_length must be an int >= 0"),
        (lambda: rudder.sequence("a", 3, 2), "0 <= min <= max"),
        (lambda: rudder.exactly_n_repeats("a", 1.5), "n_repeats must be an int"),  # type: ignore[arg-type]
        (lambda: rudder.capture("a", ""), "capture name must be a non-empty str"),
    ],
)
def test_bad_input_is_refused_when_built(build: object, message: str) -> None:
    with pytest.raises(GrammarError, match=message):
        build()  # type: ignore[operator]


def test_stop_needs_a_plain_text_body() -> None:
    from rudder._grammar._nodes import Rule

    body = regex("[a-z]+", name="inner")
    grammar = Rule(body, stop=rudder.string("."))
    with pytest.raises(GrammarError, match="stop=, suffix= and lazy need a body of plain text"):
        grammar.to_llguidance()


def test_match_error_says_where_and_what_was_allowed() -> None:
    grammar = "id: " + regex("[0-9]{3}", name="id")
    with pytest.raises(MatchError) as raised:
        grammar.match("id: 12x", raise_exceptions=True)
    error = raised.value
    assert error.position == 6
    assert error.byte == b"x"
    assert error.consumed == b"id: 12"
    assert error.allowed_bytes == frozenset(bytes([c]) for c in b"0123456789")
    assert "byte 6" in str(error)
    assert "'0'" in str(error)


def test_match_error_when_the_input_ends_too_early() -> None:
    grammar = select(["yes", "no"])
    with pytest.raises(MatchError, match=r"ended at byte 2.*allow_partial=True") as raised:
        grammar.match("ye", raise_exceptions=True)
    assert raised.value.byte is None
    assert raised.value.allowed_bytes == frozenset({b"s"})


def test_match_partial() -> None:
    grammar = "n=" + regex("[0-9]+", name="n") + ";"
    assert grammar.match("n=12") is None
    partial = grammar.match("n=12", allow_partial=True)
    assert partial is not None
    assert partial.partial
    complete = grammar.match("n=12;")
    assert complete is not None
    assert not complete.partial
    assert complete["n"] == "12"


def test_match_takes_bytes_and_refuses_other_types() -> None:
    assert regex("é+").match("éé".encode()) is not None
    with pytest.raises(TypeError, match="str or bytes"):
        regex("a").match(12)  # type: ignore[arg-type]


def test_match_result_is_a_read_only_mapping() -> None:
    result = (regex("[a-z]+", name="a") + "=" + regex("[0-9]+", name="b")).match("x=1")
    assert result is not None
    assert dict(result) == {"a": "x", "b": "1"}
    assert result.captures == {"a": "x", "b": "1"}
    assert "a" in result
    assert len(result) == 2
    with pytest.raises(TypeError):
        result["a"] = "y"  # type: ignore[index]


def test_json_schema_with_nan_is_refused_clearly() -> None:
    with pytest.raises(GrammarError, match="cannot be written as JSON"):
        rudder.json(schema={"type": "integer", "minimum": float("nan")})


@pytest.mark.parametrize(
    ("build", "error", "builtin", "message"),
    [
        (lambda: gen(stop=5), GrammarTypeError, TypeError, r"stop must be a str or a list"),
        (lambda: gen(stop_regex=[b"x"]), GrammarTypeError, TypeError, "stop_regex must be a str"),
        (lambda: rudder.json(separators=5), GrammarTypeError, TypeError, "separators must be a"),
        (lambda: rudder.json(separators=(",",)), GrammarTypeError, TypeError, "pair of str"),
        (lambda: rudder.json(lenient="yes"), GrammarTypeError, TypeError, "lenient must be True"),
        (lambda: gen(list_append="x"), GrammarTypeError, TypeError, "list_append must be True"),
        (lambda: select(["a"], "n", list_append=1), GrammarTypeError, TypeError, "list_append"),
        (lambda: gen(name=5), GrammarTypeError, TypeError, "name must be a non-empty str"),
        (lambda: gen(max_tokens="3"), GrammarTypeError, TypeError, "max_tokens must be"),
        (lambda: gen(temperature=float("nan")), GrammarError, ValueError, "finite.*got nan"),
        (lambda: gen(temperature=float("inf")), GrammarError, ValueError, "finite.*got inf"),
        (lambda: gen(temperature=-0.5), GrammarError, ValueError, "must be >= 0"),
        (lambda: with_temperature("a", float("nan")), GrammarError, ValueError, "finite"),
        (lambda: lark("start: "), GrammarError, ValueError, "matches only the empty text"),
        (lambda: lark('start: ""'), GrammarError, ValueError, "matches only the empty text"),
        (lambda: lark("start: a\na: "), GrammarError, ValueError, "matches only the empty"),
        (lambda: lark(""), GrammarError, ValueError, "Empty grammar"),
        (lambda: lark('foo: "a"'), GrammarError, ValueError, "no start rule"),
        (lambda: special_token(5), GrammarTypeError, TypeError, "exact text of one special"),
        (lambda: models.Mock(5), WrongTypeError, TypeError, r"Mock\(\) takes its byte_patterns"),
        (lambda: models.Mock(["a", 5]), WrongTypeError, TypeError, "byte_patterns"),
        (lambda: models.Mock(merges=5), WrongTypeError, TypeError, "merges=.*list of str"),
        (lambda: rudder.run(5), WrongTypeError, TypeError, r"rudder.run\('5'\)"),
        (lambda: rudder.guidance(5), WrongTypeError, TypeError, "decorates functions"),
        (lambda: regex("a").match(5), WrongTypeError, TypeError, "str or bytes"),
        (lambda: models.Mock() + None, GrammarTypeError, TypeError, "cannot use a NoneType"),
        (lambda: select([b"x"]), GrammarTypeError, TypeError, "cannot use a bytes in select"),
        (lambda: rudder.gbnf_to_lark(5), GrammarTypeError, TypeError, "takes a str, not int"),
        (lambda: rudder.guidance(stateless="x"), WrongTypeError, TypeError, "stateless=...."),
        (lambda: models.Mock(echo="y"), SettingsError, ValueError, "echo must be True or False"),
        # Before any weight is read: the path does not exist, and that is not what is said.
        (lambda: models.Transformers("/no/model", echo=1), SettingsError, ValueError, "echo must"),
        (lambda: load_trace("{}"), TraceError, ValueError, "not a trace written by dump_trace"),
        (lambda: load_trace('{"nodes": []}'), TraceError, ValueError, "no nodes"),
    ],
)
def test_bad_values_get_rudder_errors_that_are_also_the_builtin_kind(
    build: Callable[[], object], error: type[RudderError], builtin: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message) as raised:
        build()
    assert isinstance(raised.value, builtin)


def test_wrong_model_calls_leave_the_model_unchanged() -> None:
    lm = models.Mock().set("kept", "yes")
    entries, node = lm.entries, lm.trace
    with pytest.raises(WrongTypeError, match=r"set\('a', \.\.\.\) takes a str or a list of str"):
        lm.set("a", 5)  # type: ignore[arg-type]
    with pytest.raises(WrongTypeError, match="capture name must be a non-empty str"):
        lm.set(5, "a")  # type: ignore[arg-type]
    with pytest.raises(SettingsError, match="unknown settings top_q; the settings are top_p"):
        lm.with_sampling(top_q=0.5)
    with pytest.raises(CaptureNotFoundError) as missing:
        lm["nope"]
    assert isinstance(missing.value, KeyError)
    assert str(missing.value) == "no capture named 'nope' (captures so far: 'kept')"
    assert lm.entries == entries
    assert lm.trace is node


def test_a_run_entered_twice_is_a_run_error() -> None:
    run = rudder.run("twice")
    with run:
        pass
    with pytest.raises(RunError, match=r"already entered; make a new rudder\.run") as raised:
        run.__enter__()
    assert isinstance(raised.value, RuntimeError)


LONE = "caf\u00e9 \ud83d then"  # the first half of an emoji's UTF-16 pair, alone


@pytest.mark.parametrize(
    ("build", "where"),
    [
        (lambda lm: lm + LONE, "the text added to the Model"),
        (lambda lm: lm + f"Say {LONE}: " + gen(max_tokens=2), "the text added to the Model"),
        (lambda lm: lm + select(["ok", LONE]), "the grammar's text"),
        (lambda lm: lm + gen(stop=LONE), "the grammar's text"),
        (lambda lm: lm + gen(regex=LONE), "the regex"),
        (lambda lm: lm + substring(LONE), "the substring's text"),
        (lambda lm: lm + lark(f'start: "{LONE}"'), "the Lark grammar"),
        (lambda lm: lm + rudder.json(schema={"const": LONE}), "the JSON schema"),
        (lambda lm: lm.set("x", LONE), "the value set for 'x'"),
        (lambda lm: lm.set("x", ["ok", LONE]), "the value set for 'x'"),
    ],
)
def test_text_with_a_lone_surrogate_is_refused_when_given(
    build: Callable[[rudder.models.Model], object], where: str
) -> None:
    lm = models.Mock(["hello"]).set("kept", "yes")
    entries, node = lm.entries, lm.trace
    with pytest.raises(rudder.errors.TextEncodingError, match="lone surrogate") as raised:
        build(lm)
    message = str(raised.value)
    assert message.startswith(where)
    assert "'\\ud83d' at position" in message
    assert isinstance(raised.value, UnicodeError)
    assert lm.entries == entries
    assert lm.trace is node
