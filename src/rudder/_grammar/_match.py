"""Checking text against a grammar with no model.

llguidance runs the grammar over a byte-level tokenizer: one token per byte, an end-of-text
token, and one token per special token the grammar names. The input is fed token by token;
where llguidance refuses a byte, the bytes it would have taken there come from its mask.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import llguidance

from rudder._grammar._captures import Report, settle
from rudder._grammar._lark import CompiledGrammar, capture_name, compile_grammar
from rudder._grammar._nodes import GrammarNode
from rudder.errors import GrammarError, MatchError, WrongTypeError

_END_OF_TEXT = 256


class Match(Mapping[str, "str | list[str]"]):
    """The captures of a successful :meth:`GrammarNode.match`.

    A read-only mapping from capture name to text (a list of texts for ``list_append``
    captures). ``partial`` is true when the text was only a prefix of a match.
    """

    __slots__ = ("_captures", "partial")

    def __init__(self, captures: dict[str, str | list[str]], *, partial: bool) -> None:
        self._captures = captures
        self.partial = partial

    @property
    def captures(self) -> dict[str, str | list[str]]:
        return dict(self._captures)

    def __getitem__(self, name: str) -> str | list[str]:
        return self._captures[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._captures)

    def __len__(self) -> int:
        return len(self._captures)

    def __repr__(self) -> str:
        flag = ", partial=True" if self.partial else ""
        return f"Match({self._captures!r}{flag})"


class _ByteTokenizer:
    """The token-per-byte vocabulary llguidance needs, plus the grammar's special tokens."""

    def __init__(self, special_tokens: tuple[str, ...]) -> None:
        self.special_tokens = special_tokens
        specials = [b"\xff" + text.encode() for text in special_tokens]
        # llguidance marks special tokens with a leading 0xFF byte.
        self.tokens = [bytes([i]) for i in range(256)] + [b"\xff<|end_of_text|>", *specials]
        self.eos_token_id = _END_OF_TEXT
        self.bos_token_id = None
        self.special_token_ids = list(range(_END_OF_TEXT, len(self.tokens)))

    def __call__(self, data: bytes | str) -> list[int]:
        return list(data.encode() if isinstance(data, str) else data)

    def split(self, data: bytes) -> tuple[list[int], list[int]]:
        """Token ids of ``data`` and the byte offset where each starts."""
        markers = [
            (text.encode(), _END_OF_TEXT + 1 + i) for i, text in enumerate(self.special_tokens)
        ]
        tokens: list[int] = []
        offsets: list[int] = []
        position = 0
        while position < len(data):
            for marker, token in markers:
                if data.startswith(marker, position):
                    tokens.append(token)
                    offsets.append(position)
                    position += len(marker)
                    break
            else:
                tokens.append(data[position])
                offsets.append(position)
                position += 1
        return tokens, offsets


@functools.lru_cache(maxsize=64)
def _byte_tokenizer(special_tokens: tuple[str, ...]) -> tuple[_ByteTokenizer, Any]:
    wrapper = _ByteTokenizer(special_tokens)
    return wrapper, llguidance.LLTokenizer(llguidance.TokenizerWrapper(wrapper), slices=[])


def new_matcher(compiled: CompiledGrammar) -> tuple[_ByteTokenizer, llguidance.LLMatcher]:
    """A fresh llguidance matcher for ``compiled`` over the byte tokenizer."""
    wrapper, tokenizer = _byte_tokenizer(compiled.special_tokens)
    matcher = llguidance.LLMatcher(tokenizer, compiled.llguidance, log_level=0)
    if matcher.is_error():
        raise GrammarError(f"llguidance rejected the grammar: {matcher.get_error()}")
    return wrapper, matcher


def matches_only_empty_text(node: GrammarNode) -> bool:
    """Whether the empty text is the only text ``node`` matches (``lark("start: ")``).

    A grammar that names special tokens cannot be checked without the model's vocabulary;
    it counts as matching more.
    """
    compiled = compile_grammar(node)
    wrapper, tokenizer = _byte_tokenizer(compiled.special_tokens)
    matcher = llguidance.LLMatcher(tokenizer, compiled.llguidance, log_level=0)
    if matcher.is_error():
        return False
    return bool(matcher.is_accepting()) and not _allowed_bytes(wrapper, matcher)


def match(
    node: GrammarNode, text: str | bytes, *, allow_partial: bool, raise_exceptions: bool
) -> Match | None:
    if not isinstance(text, (str, bytes)):
        raise WrongTypeError(f"match() takes str or bytes, not {type(text).__name__}")
    data = text.encode() if isinstance(text, str) else text
    compiled = compile_grammar(node)
    wrapper, matcher = new_matcher(compiled)
    tokens, offsets = wrapper.split(data)
    reports: list[Report] = []
    consumed = _consume(matcher, wrapper, tokens, reports)
    complete = consumed == len(tokens) and matcher.is_accepting()
    if consumed == len(tokens) and not complete and _ends_at_end_of_text(matcher):
        complete = ended = True
    else:
        ended = False
    if consumed < len(tokens) or not (complete or allow_partial):
        if raise_exceptions:
            position = offsets[consumed] if consumed < len(tokens) else len(data)
            raise _mismatch(wrapper, matcher, data, position)
        return None
    if complete and not ended:
        # End of text closes the last lexeme; llguidance reports its capture only then.
        matcher.consume_token(_END_OF_TEXT)
    _note_reports(matcher, reports, len(data))
    captures = settle(reports, data)
    return Match(_captures(captures, compiled.list_captures), partial=not complete)


def _ends_at_end_of_text(matcher: llguidance.LLMatcher) -> bool:
    """Whether end-of-text completes the grammar (a gen() ended by end-of-sequence).

    The matcher consumes end-of-text only when it is allowed, so a False answer leaves it
    unchanged for the error report.
    """
    if not matcher.try_consume_tokens([_END_OF_TEXT]):
        return False
    return bool(matcher.is_stopped() or matcher.is_accepting())


def _consume(
    matcher: llguidance.LLMatcher,
    wrapper: _ByteTokenizer,
    tokens: list[int],
    reports: list[Report],
) -> int:
    """Feed tokens one by one, noting at which byte offset each capture is reported."""
    offset = 0
    for index, token in enumerate(tokens):
        if not matcher.try_consume_tokens([token]):
            return index
        offset += len(wrapper.tokens[token].removeprefix(b"\xff"))
        _note_reports(matcher, reports, offset)
    return len(tokens)


def _note_reports(matcher: llguidance.LLMatcher, reports: list[Report], offset: int) -> None:
    for label, value in matcher.get_captures()[len(reports) :]:
        reports.append((capture_name(label), value, offset))


def _captures(
    settled: list[tuple[str, bytes, int]], list_names: frozenset[str]
) -> dict[str, str | list[str]]:
    captures: dict[str, str | list[str]] = {name: [] for name in sorted(list_names)}
    for name, value, _ in settled:
        text = value.decode("utf-8", errors="replace")
        entry = captures.get(name)
        if isinstance(entry, list):
            entry.append(text)
        else:
            captures[name] = text
    return captures


def _mismatch(
    wrapper: _ByteTokenizer, matcher: llguidance.LLMatcher, data: bytes, position: int
) -> MatchError:
    allowed = _allowed_bytes(wrapper, matcher)
    shown = ", ".join(sorted(repr(b)[1:] for b in allowed)[:20]) or "nothing"
    if len(allowed) > 20:
        shown += f", ... ({len(allowed)} in all)"
    if position < len(data):
        byte = data[position : position + 1]
        message = (
            f"the grammar rejected byte {position} ({byte!r}) after {data[:position]!r}; "
            f"allowed there: {shown}"
        )
    else:
        byte = None
        message = (
            f"the input ended at byte {position} before the grammar was complete; "
            f"it expected more: {shown} (pass allow_partial=True to accept a prefix)"
        )
    return MatchError(
        message, position=position, byte=byte, allowed_bytes=allowed, consumed=data[:position]
    )


def _allowed_bytes(wrapper: _ByteTokenizer, matcher: llguidance.LLMatcher) -> frozenset[bytes]:
    if matcher.is_error():
        return frozenset()
    mask = matcher.compute_bitmask()
    allowed: set[bytes] = set()
    for token, data in enumerate(wrapper.tokens):
        if token != _END_OF_TEXT and mask[token // 8] >> (token % 8) & 1:
            allowed.add(data.removeprefix(b"\xff") if token > _END_OF_TEXT else data)
    return frozenset(allowed)
