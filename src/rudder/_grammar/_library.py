"""The grammar library: guidance's functions, with guidance's names and signatures.

Each function checks its arguments and returns an immutable grammar node; nothing here runs a
model. Patterns, schemas and Lark text are checked by llguidance as they are built.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable, Sequence
from typing import Any
from typing import Literal as TypingLiteral

from rudder._grammar import _validate
from rudder._grammar._json_schema import schema_text
from rudder._grammar._lark import iter_nodes
from rudder._grammar._match import matches_only_empty_text
from rudder._grammar._nodes import (
    ANY_TEXT,
    EMPTY,
    NON_EMPTY_TEXT,
    Deferred,
    GrammarNode,
    Json,
    Lark,
    Literal,
    Regex,
    Repeat,
    Rule,
    Select,
    SpecialToken,
    Substring,
    as_node,
)
from rudder._roles import CapturedSteps
from rudder.errors import CaptureNameError, GrammarError, GrammarTypeError


def gen(
    name: str | None = None,
    *,
    max_tokens: int | None = None,
    stop: str | Sequence[str] | None = None,
    stop_regex: str | Sequence[str] | None = None,
    regex: str | None = None,
    temperature: float | None = None,
    list_append: bool = False,
    save_stop_text: bool | str = False,
    suffix: str | None = None,
) -> GrammarNode:
    """Free text from the model, optionally shaped by a regex and ended by stop strings.

    ``stop`` strings and ``stop_regex`` matches end the text and are left out of it (and of the
    capture); ``save_stop_text`` keeps the stop text that was hit in a capture of its own
    (``True``: named ``name + "_stop_text"``). ``suffix`` is fixed text written after the
    generation. ``max_tokens`` bounds the tokens generated, ``temperature`` overrides the
    sampling temperature for this piece.
    """
    _check_name(name, list_append)
    _check_max_tokens(max_tokens)
    _check_temperature(temperature)
    if regex is not None:
        _validate.check_regex(regex)
    stops = _stop_node(stop, stop_regex)
    stop_capture: str | None = None
    if save_stop_text is not False:
        if stops is None:
            raise GrammarError("save_stop_text needs stop= or stop_regex= to say what stops")
        if save_stop_text is True:
            if name is None:
                raise GrammarError("save_stop_text=True needs a name; or pass the capture name")
            stop_capture = f"{name}_stop_text"
        else:
            stop_capture = _checked_name(save_stop_text, "save_stop_text")
    if suffix is not None and not isinstance(suffix, str):
        raise GrammarTypeError(f"suffix must be a str, not {type(suffix).__name__}")
    body = Regex(regex if regex is not None else ANY_TEXT)
    if regex is None and stops is None and suffix is None:
        # Text ended by the model's end-of-sequence token (the empty stop), so a gen()
        # followed by more grammar ends where the model ends it. It is not empty: an
        # end-of-sequence lexeme that may be empty is reported as an empty capture first.
        stops = Literal("")
        body = Regex(NON_EMPTY_TEXT)
    return Rule(
        body,
        name="gen",
        capture=name,
        list_append=list_append,
        temperature=temperature,
        max_tokens=max_tokens,
        stop=stops,
        suffix=Literal(suffix) if suffix else None,
        stop_capture=stop_capture,
    )


def select(
    options: Sequence[object], name: str | None = None, list_append: bool = False
) -> GrammarNode:
    """Exactly one of ``options`` (strings, numbers or grammars)."""
    _check_name(name, list_append)
    if isinstance(options, (str, bytes)) or not isinstance(options, Sequence):
        raise GrammarTypeError(
            f"select() takes a list of options, not a {type(options).__name__}; "
            'write select(["yes", "no"])'
        )
    if not options:
        raise GrammarError("select() needs at least one option; got an empty list")
    nodes = tuple(as_node(option, where="select() options") for option in options)
    body = nodes[0] if len(nodes) == 1 else Select(nodes)
    return _named(body, name, list_append)


def regex(pattern: str, name: str | None = None, list_append: bool = False) -> GrammarNode:
    """Text matching ``pattern`` (Rust regex syntax, the dialect llguidance reads)."""
    _check_name(name, list_append)
    _validate.check_regex(pattern)
    return _named(Regex(pattern), name, list_append)


def json(
    name: str | None = None,
    *,
    schema: object = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
    separators: tuple[str, str] | None = None,
    whitespace_flexible: bool = False,
    whitespace_pattern: str | None = None,
    lenient: bool = False,
    list_append: bool = False,
) -> GrammarNode:
    """A JSON value valid under ``schema``.

    ``schema`` is a dict, a JSON string, a pydantic model class, a pydantic ``TypeAdapter``
    or another type pydantic can describe; ``None`` allows any JSON value. Output is compact
    (``{"a":1}``) unless ``separators``, ``whitespace_flexible`` or ``whitespace_pattern``
    say otherwise. ``lenient=True`` ignores keywords and formats llguidance does not support.
    """
    _check_name(name, list_append)
    _check_max_tokens(max_tokens)
    _check_temperature(temperature)
    _check_flag(whitespace_flexible, "whitespace_flexible")
    _check_flag(lenient, "lenient")
    if whitespace_pattern is not None and not isinstance(whitespace_pattern, str):
        raise GrammarTypeError(
            f"whitespace_pattern must be a str regex, not {type(whitespace_pattern).__name__}"
        )
    text = schema_text(
        schema,
        separators=separators,
        whitespace_flexible=whitespace_flexible,
        whitespace_pattern=whitespace_pattern,
        lenient=lenient,
    )
    _validate.check_json_schema(text)
    return Rule(
        Json(text),
        name="json",
        capture=name,
        list_append=list_append,
        temperature=temperature,
        max_tokens=max_tokens,
    )


def lark(
    grammar_text: str,
    *,
    name: str | None = None,
    temperature: float | None = None,
    max_tokens: int | None = None,
) -> GrammarNode:
    """A grammar written in Lark (llguidance's dialect: ``%json``, ``<special>`` tokens ...)."""
    if not isinstance(grammar_text, str):
        raise GrammarTypeError(
            f"lark() takes the grammar as a str, not {type(grammar_text).__name__}"
        )
    _check_name(name, False)
    _check_max_tokens(max_tokens)
    _check_temperature(temperature)
    _validate.check_lark(grammar_text)
    node: GrammarNode = Lark(grammar_text)
    if matches_only_empty_text(node):
        raise GrammarError(
            f"the Lark grammar {grammar_text[:80]!r} matches only the empty text (a rule "
            'with no body?); give start the text it should match, e.g. start: "yes" | "no"'
        )
    if name is None and temperature is None and max_tokens is None:
        return node
    return Rule(node, name="lark", capture=name, temperature=temperature, max_tokens=max_tokens)


def gbnf_to_lark(gbnf_text: str) -> str:
    """Convert a llama.cpp GBNF grammar to the Lark text :func:`lark` takes."""
    from llguidance.gbnf_to_lark import gbnf_to_lark as convert

    if not isinstance(gbnf_text, str):
        raise GrammarTypeError(f"gbnf_to_lark() takes a str, not {type(gbnf_text).__name__}")

    try:
        return convert(gbnf_text)
    except Exception as error:  # the converter raises plain exceptions on bad input
        raise GrammarError(f"cannot convert the GBNF grammar to Lark: {error}") from None


def one_or_more(value: object) -> GrammarNode:
    """``value`` once or more."""
    return Repeat(as_node(value), 1, None)


def zero_or_more(value: object) -> GrammarNode:
    """``value`` any number of times, possibly none."""
    return Repeat(as_node(value), 0, None)


def optional(value: object) -> GrammarNode:
    """``value`` or nothing."""
    return Repeat(as_node(value), 0, 1)


def sequence(value: object, min_length: int = 0, max_length: int | None = None) -> GrammarNode:
    """``value`` repeated between ``min_length`` and ``max_length`` times."""
    _check_count(min_length, "min_length")
    if max_length is not None:
        _check_count(max_length, "max_length")
    return _repeat(as_node(value), min_length, max_length)


def exactly_n_repeats(value: object, n_repeats: int) -> GrammarNode:
    """``value`` exactly ``n_repeats`` times."""
    _check_count(n_repeats, "n_repeats")
    return _repeat(as_node(value), n_repeats, n_repeats)


def at_most_n_repeats(value: object, n_repeats: int) -> GrammarNode:
    """``value`` between zero and ``n_repeats`` times."""
    _check_count(n_repeats, "n_repeats")
    return _repeat(as_node(value), 0, n_repeats)


def capture(value: object, name: str, list_append: bool = False) -> GrammarNode:
    """Whatever ``value`` matches, saved under ``name``.

    ``value`` may hold stateful calls (``capture("<c>" + plan() + "</c>", "c")``): then the
    text they write is captured, and the result is a step for a Model, not a grammar.
    """
    _checked_name(name, "capture name")
    if isinstance(value, Deferred):
        if list_append:
            raise GrammarError(
                "list_append=True is not supported when capturing stateful calls; capture "
                "under a name and append it yourself"
            )
        return CapturedSteps(value, name)  # type: ignore[return-value]
    return Rule(as_node(value), name="capture", capture=name, list_append=list_append)


def substring(
    target_string: str,
    *,
    chunk: TypingLiteral["word", "character"] = "word",
    name: str | None = None,
) -> GrammarNode:
    """Any contiguous part of ``target_string``, cut at word or character boundaries."""
    if not isinstance(target_string, str):
        raise GrammarTypeError(f"substring() takes a str, not {type(target_string).__name__}")
    if chunk not in ("word", "character"):
        raise GrammarError(f"chunk must be 'word' or 'character', not {chunk!r}")
    _check_name(name, False)
    return _named(Substring(target_string, chunk), name, False)


def special_token(text: str) -> GrammarNode:
    """One special token of the model's tokenizer, e.g. ``special_token("<|im_start|>")``.

    This is the one way a grammar emits a special token: text that merely looks like one
    (fixed text, options, regexes, JSON constants, program or model text) stays text.
    ``text`` must be the exact text of one special token of the tokenizer, written
    ``<...>``; the model checks it against its tokenizer when the grammar runs.
    """
    if not isinstance(text, str) or _SPECIAL_TOKEN_TEXT.fullmatch(text) is None:
        error = GrammarError if isinstance(text, str) else GrammarTypeError
        raise error(
            f"special_token() takes the exact text of one special token, such as "
            f"'<|im_start|>' (one '<...>' without spaces); got {text!r}. Text that is not "
            "one special token is ordinary text: append it as text instead"
        )
    return SpecialToken(text)


#: What llguidance's grammars can name as one special token (``<[...]>`` names ids instead).
_SPECIAL_TOKEN_TEXT = re.compile(r"<(?!\[)[^<>\s]+>")


def string(value: str) -> GrammarNode:
    """Exactly the text ``value``."""
    if not isinstance(value, str):
        raise GrammarTypeError(f"string() takes a str, not {type(value).__name__}")
    return Literal(value)


def with_temperature(value: object, temperature: float) -> GrammarNode:
    """``value``, sampled at ``temperature`` (a ``json()`` or ``lark()`` given its own keeps it).

    Raises:
        GrammarError: ``value`` holds a ``json()`` or ``lark()`` grammar within more grammar
            (see :func:`_on_a_grammar_alone`).
    """
    _check_temperature(temperature)
    return _on_a_grammar_alone(
        value, "with_temperature", "temperature", temperature, lambda own, given: own
    )


def token_limit(value: object, max_tokens: int) -> GrammarNode:
    """``value``, generated in at most ``max_tokens`` tokens (a ``json()`` or ``lark()``
    given a tighter limit of its own keeps it).

    Raises:
        GrammarError: ``value`` holds a ``json()`` or ``lark()`` grammar within more grammar
            (see :func:`_on_a_grammar_alone`).
    """
    _check_max_tokens(max_tokens)
    return _on_a_grammar_alone(value, "token_limit", "max_tokens", max_tokens, min)


def _on_a_grammar_alone(
    value: object,
    name: str,
    field: str,
    setting: float,
    kept: Callable[[float, float], float],
) -> GrammarNode:
    """``value`` under a rule whose ``field`` (``temperature`` or ``max_tokens``) is
    ``setting``.

    llguidance samples and counts the tokens of a nested grammar (``%json``, ``@grammar``)
    apart: an option on a rule around one never reaches it. So a ``json()`` or ``lark()``
    alone takes the option itself (``kept(own, setting)`` when it has its own), and one
    within more grammar is refused rather than left without it.
    """
    node = as_node(value)
    option: dict[str, Any] = {field: setting}
    if isinstance(node, (Json, Lark)):
        return Rule(node, name=name, **option)
    if isinstance(node, Rule) and isinstance(node.body, (Json, Lark)):
        own = getattr(node, field)
        if own is not None:
            option[field] = kept(own, setting)
        return dataclasses.replace(node, **option)
    try:
        nested = next((n for n in iter_nodes(node) if isinstance(n, (Json, Lark))), None)
    except GrammarError:  # a recursive grammar still being defined: nothing to look into yet
        nested = None
    if nested is not None:
        kind = "json()" if isinstance(nested, Json) else "lark()"
        raise GrammarError(
            f"{name}() cannot reach a {kind} grammar within more grammar: llguidance samples "
            f"and counts its tokens apart, so {field}={setting!r} would not hold there; give "
            f"that {kind} its own {field}=, or apply {name}() to it alone"
        )
    return Rule(node, name=name, **option)


def _repeat(item: GrammarNode, low: int, high: int | None) -> GrammarNode:
    if high == 0 and low == 0:
        return EMPTY  # zero repetitions: llguidance has no x{0}
    return Repeat(item, low, high)


# -- argument checks ------------------------------------------------------------------------


def _named(body: GrammarNode, name: str | None, list_append: bool) -> GrammarNode:
    if name is None:
        return body
    return Rule(body, name=name, capture=name, list_append=list_append)


def _stop_node(
    stop: str | Sequence[str] | None, stop_regex: str | Sequence[str] | None
) -> GrammarNode | None:
    options: list[GrammarNode] = []
    for text in _as_list(stop, "stop"):
        if text:
            options.append(Literal(text))
    for pattern in _as_list(stop_regex, "stop_regex"):
        _validate.check_regex(pattern, what="stop_regex")
        options.append(Regex(pattern))
    if not options:
        return None
    return options[0] if len(options) == 1 else Select(tuple(options))


def _as_list(value: str | Sequence[str] | None, what: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value):
        raise GrammarTypeError(
            f'{what} must be a str or a list of str, got {value!r}; e.g. {what}=[".", "\\n"]'
        )
    return list(value)


def _check_name(name: str | None, list_append: bool) -> None:
    _check_flag(list_append, "list_append")
    if name is not None:
        _checked_name(name, "name")
    elif list_append:
        raise GrammarError("list_append=True needs a name to append to")


def _checked_name(name: object, what: str) -> str:
    if not isinstance(name, str):
        raise GrammarTypeError(f"{what} must be a non-empty str, got {name!r}")
    if not name:
        raise CaptureNameError(f"{what} must be a non-empty str, got {name!r}")
    return name


def _check_flag(value: object, what: str) -> None:
    if not isinstance(value, bool):
        raise GrammarTypeError(f"{what} must be True or False, got {value!r}")


def _check_max_tokens(max_tokens: int | None) -> None:
    if max_tokens is None:
        return
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        error = GrammarError if isinstance(max_tokens, int) else GrammarTypeError
        raise error(
            f"max_tokens must be a positive int, got {max_tokens!r}; "
            "leave it out (None) for no limit"
        )


def _check_temperature(temperature: float | None) -> None:
    if temperature is None:
        return
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
        raise GrammarTypeError(f"temperature must be a number, got {temperature!r}")
    if not math.isfinite(temperature) or temperature < 0:
        raise GrammarError(
            f"temperature must be >= 0 and finite (0 picks the likeliest token), got {temperature}"
        )


def _check_count(value: int, what: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        error = GrammarError if isinstance(value, int) else GrammarTypeError
        raise error(f"{what} must be an int >= 0, got {value!r}")
