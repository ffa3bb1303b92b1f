"""What the decode loop needs of a tokenizer, whatever the engine.

This module is the one place that says how text becomes tokens. There are two encodings:

- **plain** (``special=False``): program text, model text, and every byte the constraint
  engine tokenizes (fixed grammar text, ``select`` options, regex and JSON constants, the
  bytes token healing re-makes). It never yields a special token: a special token's text is
  written with ordinary tokens, so text can never become a role marker.
- **special** (``special=True``): only text a chat template wrote, where role markers are
  special tokens.

The only other way a special token enters a sequence is ``special_token(text)`` with the exact
text of one of :attr:`EngineTokenizer.special_token_ids`. llguidance's tokenizer (``ll``) is
built here, over the vocabulary's bytes and the plain encoding, so llguidance cannot parse a
special token out of text either. An engine supplies its vocabulary and the two encodings.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import llguidance

from rudder.engine._interpreters import FreshInterpreters
from rudder.errors import GrammarError


class EngineTokenizer(abc.ABC):
    """A tokenizer as rudder uses it.

    Args:
        tokens: the bytes of every token, by id (a special token's text for special tokens).
        special_ids: the ids of the special tokens (markers, end-of-sequence ...): these come
            only from template text and ``special_token()``, never from plain text.
        special_tokens: ``bos_token``, ``eos_token`` ... as strings, for chat templates.
    """

    def __init__(
        self,
        tokens: Sequence[bytes],
        *,
        special_ids: Iterable[int],
        eos_token_id: int,
        bos_token_id: int | None,
        add_bos: bool,
        special_tokens: Mapping[str, str],
        chat_template: str | None,
    ) -> None:
        self.eos_token_id = eos_token_id
        self.bos_token_id = bos_token_id
        self.add_bos = add_bos
        self.special_tokens = dict(special_tokens)
        self.chat_template = chat_template
        self.special_ids = frozenset(special_ids)
        #: Special token text -> id: what ``special_token()`` may name. (A byte-fallback
        #: vocabulary's 0xFF token counts as special for llguidance, but has no text.)
        self.special_token_ids: dict[str, int] = {
            tokens[i].decode("utf-8", errors="replace"): i
            for i in sorted(self.special_ids)
            if tokens[i]
        }
        self.encode = functools.lru_cache(maxsize=4096)(self._checked_encode)  # type: ignore[method-assign]
        self.ll: Any = llguidance.LLTokenizer(
            llguidance.TokenizerWrapper(_PlainVocabulary(self, tokens))
        )
        self.vocab_size: int = self.ll.vocab_size
        #: Where generations get their llguidance interpreters (each grammar built once).
        self.interpreters = FreshInterpreters(self.ll)
        self._bytes: dict[int, bytes] = {}

    @abc.abstractmethod
    def _encode(self, text: str, special: bool) -> list[int]:
        """Token ids of ``text`` at the start of a prompt segment; special-token text is
        parsed only when ``special``."""

    def _encode_continuation(self, text: str) -> list[int]:
        """Token ids of plain ``text`` that continues a sequence (what llguidance asks for).

        Engines whose tokenizer adds a prefix space at the start of a text (SentencePiece)
        override this to leave it out; the result is checked like any plain encoding.
        """
        return self._encode(text, False)

    def encode(self, text: str, special: bool) -> list[int]:  # replaced by a cache in __init__
        return self._checked_encode(text, special)

    def _checked_encode(self, text: str, special: bool) -> list[int]:
        ids = self._encode(text, special)
        return ids if special else self._without_specials(ids)

    def encode_continuation(self, text: str) -> list[int]:
        return self._without_specials(self._encode_continuation(text))

    def _without_specials(self, ids: list[int]) -> list[int]:
        """``ids`` with any special token written as ordinary tokens of its text.

        A backend may match more than its special tokens while encoding plain text (Hugging
        Face matches added tokens such as ``<think>`` that are not flagged special): the
        contract holds whatever the backend does.
        """
        if not self.special_ids.intersection(ids):
            return ids
        out: list[int] = []
        for token_id in ids:
            if token_id in self.special_ids:
                out += self.ll.greedy_tokenize(self.token_bytes(token_id).decode())
            else:
                out.append(token_id)
        return out

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token (a special token's text for special tokens)."""
        data = self._bytes.get(token_id)
        if data is None:
            data = self.ll.decode_bytes([token_id])
            self._bytes[token_id] = data
        return data

    def is_special(self, token_id: int) -> bool:
        return token_id in self.special_ids

    def check_special_token(self, text: str) -> int:
        """The id of the special token whose text is exactly ``text``, else GrammarError."""
        token_id = self.special_token_ids.get(text)
        if token_id is None:
            known = ", ".join(repr(t) for t in self.special_token_ids) or "none"
            raise GrammarError(
                f"special_token({text!r}) names no special token of this model's tokenizer; "
                f"its special tokens are: {known}. Write one of them exactly, or write the "
                "text as ordinary text"
            )
        return token_id


class _PlainVocabulary:
    """What ``llguidance.TokenizerWrapper`` reads: the vocabulary and the plain encoding."""

    def __init__(self, tokenizer: EngineTokenizer, tokens: Sequence[bytes]) -> None:
        self.tokens = list(tokens)
        self.eos_token_id = tokenizer.eos_token_id
        self.bos_token_id = tokenizer.bos_token_id
        self.special_token_ids = sorted(tokenizer.special_ids)
        self._tokenizer = tokenizer

    def __call__(self, text: str | bytes) -> list[int]:
        # llguidance hands over a valid UTF-8 prefix of the bytes it tokenizes.
        data = text.decode() if isinstance(text, bytes) else text
        return self._tokenizer.encode_continuation(data)
