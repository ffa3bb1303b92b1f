"""Early checks of regexes, JSON schemas and Lark text, by llguidance itself.

A grammar piece is checked when it is built, so a bad pattern fails at the line that wrote it
rather than when a model runs. Results are cached: the same pattern is checked once.
"""

from __future__ import annotations

import functools
import warnings

import llguidance

from rudder.errors import GrammarError, GrammarTypeError, check_text

_NAMES = {"regex": "the regex", "json": "the JSON schema", "lark": "the Lark grammar"}


@functools.lru_cache(maxsize=2048)
def _check(kind: str, text: str) -> tuple[str, tuple[str, ...]]:
    """llguidance's error (empty when there is none) and its warnings."""
    check_text(text, _NAMES[kind])
    if kind == "regex":
        grammar = llguidance.LLMatcher.grammar_from_regex(text)
    elif kind == "json":
        grammar = llguidance.LLMatcher.grammar_from_json_schema(text)
    else:
        grammar = llguidance.LLMatcher.grammar_from_lark(text)
    is_error, messages = llguidance.LLMatcher.validate_grammar_with_warnings(grammar, None)
    if is_error:
        return (messages[0] if messages else "unknown error"), ()
    return "", tuple(messages)


def _problem(kind: str, text: str) -> str:
    return _check(kind, text)[0]


def check_regex(pattern: str, *, what: str = "regex") -> None:
    if not isinstance(pattern, str):
        raise GrammarTypeError(f"{what} must be a str pattern, not {type(pattern).__name__}")
    problem = _problem("regex", pattern)
    if problem:
        raise GrammarError(
            f"invalid {what} {pattern!r}: {_first_lines(problem)}\n"
            "Patterns use Rust regex syntax (as llguidance reads them): no lookarounds or "
            "backreferences."
        )


def check_json_schema(schema_text: str) -> None:
    """Raise for a schema llguidance cannot use; warn as llguidance does (as guidance does).

    An unsatisfiable schema's message is llguidance's own, as in guidance: it names the
    keywords that contradict each other.
    """
    problem, warnings_given = _check("json", schema_text)
    for warning in warnings_given:
        warnings.warn(warning, UserWarning, stacklevel=3)  # at the json() call
    if problem.startswith("Unsatisfiable schema"):
        raise GrammarError(problem)
    if problem:
        raise GrammarError(
            f"unsupported or invalid JSON schema: {_first_lines(problem)}\n"
            "Check the schema's types and keywords; llguidance supports most of JSON Schema "
            "2020-12 (see docs/architecture.md). For unknown formats or keywords, pass "
            "lenient=True to ignore them."
        )


def check_lark(text: str) -> None:
    problem = _problem("lark", text)
    if problem:
        raise GrammarError(f"invalid Lark grammar: {_first_lines(problem, 8)}")


def _first_lines(text: str, count: int = 4) -> str:
    return "\n".join(text.strip().splitlines()[:count])
