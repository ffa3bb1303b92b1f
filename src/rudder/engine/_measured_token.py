"""A generated token whose candidates are made when first read.

The decode loop measures each step in numbers (a probability, the ids of the top
candidates); the :class:`~rudder._state.Candidate` objects the views read are made only
when something asks for them (a view, the trace's records, ``explore``), and then kept.
When nothing watches a generation, most tokens' candidates are never made. To everything
that reads it, the token is an ordinary :class:`~rudder._state.Token`: equal to one with
the same figures, copied and pickled as one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rudder._state import Candidate, Token, TokenKind

#: A step's candidates: the top ones and the top allowed ones.
Measured = tuple[tuple[Candidate, ...], tuple[Candidate, ...]]

# Token's own storage (its slots: it is frozen), set directly; the properties below stand
# in front of the candidates'.
_TOKEN_ID: Any = Token.__dict__["token_id"]
_BYTES: Any = Token.__dict__["bytes"]
_KIND: Any = Token.__dict__["kind"]
_PROB: Any = Token.__dict__["prob"]
_LATENCY: Any = Token.__dict__["latency"]
_SPECIAL: Any = Token.__dict__["special"]
_TOP: Any = Token.__dict__["top"]
_TOP_ALLOWED: Any = Token.__dict__["top_allowed"]


class MeasuredToken(Token):
    """A :data:`~rudder._state.TokenKind.GENERATED` token whose ``top`` and ``top_allowed``
    come from calling ``measured``, once, when one of them is first read."""

    __slots__ = ("_measured",)
    _measured: Callable[[], Measured] | None

    def __init__(  # Token's own signature, so that dataclasses.replace() works
        self,
        token_id: int,
        bytes: bytes,
        kind: TokenKind = TokenKind.GENERATED,
        prob: float | None = None,
        latency: float = 0.0,
        top: tuple[Candidate, ...] = (),
        top_allowed: tuple[Candidate, ...] = (),
        special: bool = False,
        *,
        measured: Callable[[], Measured] | None = None,
    ) -> None:
        _TOKEN_ID.__set__(self, token_id)
        _BYTES.__set__(self, bytes)
        _KIND.__set__(self, kind)
        _PROB.__set__(self, prob)
        _LATENCY.__set__(self, latency)
        _SPECIAL.__set__(self, special)
        _TOP.__set__(self, top)
        _TOP_ALLOWED.__set__(self, top_allowed)
        object.__setattr__(self, "_measured", measured)

    def _settle(self) -> None:
        measured = self._measured
        if measured is None:
            return
        top, top_allowed = measured()
        _TOP.__set__(self, top)
        _TOP_ALLOWED.__set__(self, top_allowed)
        object.__setattr__(self, "_measured", None)  # what it was made from can be freed

    @property
    def top(self) -> tuple[Candidate, ...]:
        self._settle()
        value: tuple[Candidate, ...] = _TOP.__get__(self, Token)
        return value

    @property
    def top_allowed(self) -> tuple[Candidate, ...]:
        self._settle()
        value: tuple[Candidate, ...] = _TOP_ALLOWED.__get__(self, Token)
        return value

    def settled(self) -> Token:
        """The plain token with the same figures."""
        return Token(
            self.token_id,
            self.bytes,
            self.kind,
            prob=self.prob,
            latency=self.latency,
            top=self.top,
            top_allowed=self.top_allowed,
            special=self.special,
        )

    def __eq__(self, other: object) -> bool:
        return self.settled() == other if isinstance(other, Token) else NotImplemented

    def __hash__(self) -> int:
        return hash(self.settled())

    def __repr__(self) -> str:
        return repr(self.settled())

    def __reduce__(self) -> str | tuple[Any, ...]:
        return self.settled().__reduce__()
