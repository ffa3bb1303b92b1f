"""What the decode loop needs of a tokenizer, whatever the engine."""

from __future__ import annotations

import abc
import functools
from collections.abc import Mapping
from typing import Any


class EngineTokenizer(abc.ABC):
    """A tokenizer as rudder uses it.

    ``ll`` is the llguidance tokenizer the constraint engine runs on. ``encode`` has two
    modes: program and model text is encoded with ``special=False``, so a special token's
    text stays text; only text a chat template wrote is encoded with ``special=True``.
    """

    def __init__(
        self,
        ll: Any,
        *,
        eos_token_id: int,
        bos_token_id: int | None,
        add_bos: bool,
        special_tokens: Mapping[str, str],
        chat_template: str | None,
    ) -> None:
        self.ll = ll
        self.eos_token_id = eos_token_id
        self.bos_token_id = bos_token_id
        self.add_bos = add_bos
        #: bos_token, eos_token ... as strings, for chat templates.
        self.special_tokens = dict(special_tokens)
        self.chat_template = chat_template
        self.vocab_size: int = ll.vocab_size
        self._bytes: dict[int, bytes] = {}
        self.encode = functools.lru_cache(maxsize=4096)(self._encode)  # type: ignore[method-assign]

    @abc.abstractmethod
    def _encode(self, text: str, special: bool) -> list[int]:
        """Token ids of ``text``; special-token text is parsed only when ``special``."""

    def encode(self, text: str, special: bool) -> list[int]:  # replaced by a cache in __init__
        return self._encode(text, special)

    def token_bytes(self, token_id: int) -> bytes:
        """The bytes of one token (a special token's text for special tokens)."""
        data = self._bytes.get(token_id)
        if data is None:
            data = self.ll.decode_bytes([token_id])
            self._bytes[token_id] = data
        return data

    def is_special(self, token_id: int) -> bool:
        return bool(self.ll.is_special_token(token_id))
