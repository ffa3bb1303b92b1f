"""Immutable grammar nodes and how they compose.

A grammar is a graph of nodes. Nodes are frozen: ``a + b`` builds a new :class:`Join` and
leaves both operands unchanged. Identity is equality (``eq=False``): nodes may form cycles
through :class:`RuleRef` (recursive ``@guidance`` functions), and comparing or hashing them
structurally would not terminate.

Every node knows the capture names below it (``capture_names``: name -> is it a list), so a
name used both as a list and as a single capture fails when the grammar is composed, not when
a model runs it. Serialisation to llguidance lives in :mod:`._lark`, matching in :mod:`._match`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING, Any
from typing import Literal as TypingLiteral

from rudder._grammar import _placeholders
from rudder.errors import (
    CaptureNameError,
    GrammarError,
    GrammarTypeError,
    StatefulInGrammarError,
    check_text,
)

if TYPE_CHECKING:
    from rudder._grammar._match import Match

CaptureNames = Mapping[str, bool]

#: The body of gen(): any text; and any text of at least one character.
ANY_TEXT = "(?s:.*)"
NON_EMPTY_TEXT = "(?s:.+)"
_NO_NAMES: CaptureNames = MappingProxyType({})


class GrammarNode:
    """Base of every grammar node: composes with ``+``, embeds in f-strings, checks text."""

    __slots__ = ()
    #: capture name -> whether it is a list capture; composite nodes set their own.
    capture_names: CaptureNames = _NO_NAMES

    def __add__(self, other: object) -> Any:
        return _compose(self, other)

    def __radd__(self, other: object) -> Any:
        return _compose(other, self)

    def __format__(self, format_spec: str) -> str:
        return _placeholders.embed(self)

    def __str__(self) -> str:
        return _placeholders.embed(self)

    def match(
        self,
        text: str | bytes,
        allow_partial: bool = False,
        raise_exceptions: bool = False,
    ) -> Match | None:
        """Check ``text`` against this grammar with no model.

        Returns the captures as a :class:`~rudder.Match`, or ``None`` when the text does not
        match. With ``raise_exceptions=True`` a mismatch raises :class:`~rudder.errors.MatchError`
        naming the byte offset and the bytes the grammar allowed there. With
        ``allow_partial=True`` a prefix of a match is accepted (``Match.partial`` is true).
        """
        from rudder._grammar._match import match

        return match(self, text, allow_partial=allow_partial, raise_exceptions=raise_exceptions)

    def to_llguidance(self) -> str:
        """The grammar in llguidance's JSON form (a Lark grammar plus any sub-grammars)."""
        from rudder._grammar._lark import compile_grammar

        return compile_grammar(self).llguidance

    def __repr__(self) -> str:
        # Fields left at their defaults are omitted: Rule(Regex('(?s:.*)'), capture='a').
        shown = [
            repr(getattr(self, spec.name))
            if index == 0
            else f"{spec.name}={getattr(self, spec.name)!r}"
            for index, spec in enumerate(dataclasses.fields(self))  # type: ignore[arg-type]
            if index == 0 or getattr(self, spec.name) != spec.default
        ]
        return f"{type(self).__name__}({', '.join(shown)})"

    def to_lark(self) -> str:
        """The top-level Lark text of the grammar, for reading and debugging."""
        from rudder._grammar._lark import compile_grammar

        return compile_grammar(self).lark


@dataclass(frozen=True, eq=False, repr=False)
class Literal(GrammarNode):
    """Fixed text."""

    text: str

    def __post_init__(self) -> None:
        check_text(self.text, "the grammar's text")


@dataclass(frozen=True, eq=False, repr=False)
class Regex(GrammarNode):
    """Text matching a regular expression (Rust ``regex`` syntax, as llguidance reads it)."""

    pattern: str

    def __post_init__(self) -> None:
        check_text(self.pattern, "the regex")


@dataclass(frozen=True, eq=False, repr=False)
class Substring(GrammarNode):
    """Any contiguous run of chunks (words or characters) of ``text``."""

    text: str
    chunk: TypingLiteral["word", "character"] = "word"

    def __post_init__(self) -> None:
        check_text(self.text, "the substring's text")


@dataclass(frozen=True, eq=False, repr=False)
class SpecialToken(GrammarNode):
    """One special token of the model's tokenizer, such as ``<|im_start|>``."""

    text: str


@dataclass(frozen=True, eq=False, repr=False)
class Json(GrammarNode):
    """A JSON value valid under a JSON schema, kept as canonical JSON text."""

    schema_text: str


@dataclass(frozen=True, eq=False, repr=False)
class Lark(GrammarNode):
    """A user-written Lark grammar (llguidance dialect), embedded as a sub-grammar."""

    text: str


@dataclass(frozen=True, eq=False, repr=False)
class Join(GrammarNode):
    """A sequence of nodes."""

    parts: tuple[GrammarNode, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "capture_names", _merge_names(self.parts))


@dataclass(frozen=True, eq=False, repr=False)
class Select(GrammarNode):
    """One of several alternatives."""

    options: tuple[GrammarNode, ...]

    def __post_init__(self) -> None:
        if not self.options:
            raise GrammarError("select() needs at least one option; got an empty list")
        object.__setattr__(self, "capture_names", _merge_names(self.options))


@dataclass(frozen=True, eq=False, repr=False)
class Repeat(GrammarNode):
    """``item`` repeated between ``min`` and ``max`` times (``max=None``: no upper bound)."""

    item: GrammarNode
    min: int
    max: int | None

    def __post_init__(self) -> None:
        if self.min < 0 or (self.max is not None and self.max < self.min):
            bound = "unbounded" if self.max is None else self.max
            raise GrammarError(
                f"a repetition needs 0 <= min <= max; got min={self.min}, max={bound}"
            )
        object.__setattr__(self, "capture_names", self.item.capture_names)


@dataclass(frozen=True, eq=False, repr=False)
class Rule(GrammarNode):
    """A named rule: where captures, temperature, token limits and stop conditions attach.

    ``stop`` and ``suffix`` are grammars of plain text (literals and regexes); ``stop`` is
    consumed and hidden from the capture and from the program text, ``suffix`` is kept in the
    text but not in the capture. ``stop_capture`` names a capture that receives the stop text.
    """

    body: GrammarNode
    name: str | None = None
    capture: str | None = None
    list_append: bool = False
    temperature: float | None = None
    max_tokens: int | None = None
    stop: GrammarNode | None = None
    suffix: GrammarNode | None = None
    stop_capture: str | None = None
    lazy: bool = False

    def __post_init__(self) -> None:
        own: dict[str, bool] = {}
        if self.capture is not None:
            own[self.capture] = self.list_append
        if self.stop_capture is not None:
            _add_name(own, self.stop_capture, is_list=False)
        object.__setattr__(self, "capture_names", _merge_names((self.body,), own))

    @property
    def lexeme_options(self) -> bool:
        """Whether llguidance needs the body to be a single lexeme (terminal)."""
        return bool(self.stop is not None or self.suffix is not None or self.lazy)


class RuleRef(GrammarNode):
    """A reference to a rule still being built: how recursive grammars close their cycle.

    The target is set exactly once, when the rule it stands for is finished.
    """

    __slots__ = ("_target", "capture_names", "name")

    def __init__(self, name: str) -> None:
        self.name = name
        self.capture_names = _NO_NAMES
        self._target: Rule | None = None

    @property
    def target(self) -> Rule:
        if self._target is None:
            raise GrammarError(
                f"the recursive grammar {self.name!r} was used before its definition finished"
            )
        return self._target

    def resolve(self, rule: Rule) -> None:
        if self._target is not None:
            raise GrammarError(f"the recursive grammar {self.name!r} was defined twice")
        self._target = rule

    def __repr__(self) -> str:
        return f"RuleRef({self.name!r})"


EMPTY = Literal("")


class Deferred:
    """Marker base for values that run later against a Model and are not grammars.

    Stateful ``@guidance`` calls derive from it; composing one with a grammar gives a
    sequence of steps, and putting one where a grammar is required is an error.
    """

    __slots__ = ()

    def __add__(self, other: object) -> Any:
        return _compose(self, other)

    def __radd__(self, other: object) -> Any:
        return _compose(other, self)

    def __format__(self, format_spec: str) -> str:
        # In an f-string, a placeholder: the Model runs the call where it stands.
        return _placeholders.embed(self)


def as_node(value: object, *, where: str = "a grammar") -> GrammarNode:
    """Turn a user value (text, number, node) into a grammar node, or fail clearly."""
    if isinstance(value, GrammarNode):
        return value
    if isinstance(value, str):
        return _text_node(value)
    if isinstance(value, bool):
        return Literal(str(value))
    if isinstance(value, (int, float)):
        return Literal(repr(value) if isinstance(value, float) else str(value))
    if isinstance(value, Deferred):
        raise StatefulInGrammarError(
            f"{value!s} is stateful (a function of lm) and cannot be part of {where}; "
            "add it to a Model instead (lm += ...), or decorate it with "
            "@guidance(stateless=True) if it only builds a grammar"
        )
    raise GrammarTypeError(
        f"cannot use a {type(value).__name__} in {where}; use a str, a number or a grammar "
        "such as gen(), select() or regex()"
    )


def join(parts: list[GrammarNode] | tuple[GrammarNode, ...]) -> GrammarNode:
    """Join nodes into one, flattening nested joins and merging adjacent literals."""
    flat: list[GrammarNode] = []
    for part in parts:
        for piece in part.parts if isinstance(part, Join) else (part,):
            if isinstance(piece, Literal) and flat and isinstance(flat[-1], Literal):
                flat[-1] = Literal(flat[-1].text + piece.text)
            elif not (isinstance(piece, Literal) and piece.text == ""):
                flat.append(piece)
    if not flat:
        return EMPTY
    return flat[0] if len(flat) == 1 else Join(tuple(flat))


def _text_node(text: str) -> GrammarNode:
    if not _placeholders.has_placeholder(text):
        return Literal(text)
    parts = _placeholders.split(text)
    return join([Literal(part) if isinstance(part, str) else as_node(part) for part in parts])


def text_steps(text: str) -> object:
    """``text`` with f-string placeholders as a grammar, or as steps for a Model when a
    placeholder stands for a stateful call (``f"Plan: {plan()}"``)."""
    parts = _placeholders.split(text)
    if not any(isinstance(part, Deferred) for part in parts):
        return _text_node(text)
    from rudder._decorator import StatefulSequence

    return StatefulSequence(tuple(parts))


def _compose(left: object, right: object) -> Any:
    # An f-string may hold stateful calls: then it is steps, and so is what it joins.
    left, right = (
        text_steps(value)
        if isinstance(value, str) and _placeholders.has_placeholder(value)
        else value
        for value in (left, right)
    )
    if isinstance(left, Deferred) or isinstance(right, Deferred):
        from rudder._decorator import sequence_of_steps

        return sequence_of_steps(left, right)
    return join([as_node(left, where="a grammar (+)"), as_node(right, where="a grammar (+)")])


def _add_name(names: dict[str, bool], name: str, *, is_list: bool) -> None:
    previous = names.get(name)
    if previous is not None and previous != is_list:
        raise CaptureNameError(
            f"the capture name {name!r} is used both with list_append=True and without it; "
            "use list_append=True everywhere for that name, or give the single capture "
            "another name"
        )
    names[name] = is_list


def _merge_names(
    children: tuple[GrammarNode, ...], own: dict[str, bool] | None = None
) -> CaptureNames:
    non_empty = [child.capture_names for child in children if child.capture_names]
    if not own and len(non_empty) <= 1:
        return non_empty[0] if non_empty else _NO_NAMES
    merged: dict[str, bool] = dict(own or {})
    for names in non_empty:
        for name, is_list in names.items():
            _add_name(merged, name, is_list=is_list)
    return MappingProxyType(merged)
