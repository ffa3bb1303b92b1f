"""Fresh llguidance interpreters for a tokenizer, each grammar built once.

Building an ``LLInterpreter`` parses its grammar and sets up its lexer: 1.5 ms for a plain
``gen()`` and 3 to 6 ms for a JSON schema on a 32,000-token vocabulary, more than a short
generation's whole decode loop. A copy of an interpreter that has not started
(``deep_copy``) costs a few microseconds, so each tokenizer keeps the unstarted interpreters
of the grammars it ran last, and every generation starts from a copy of one. Programs run
the same few grammars over and over (a ``gen`` in a loop, a template's fields), so most
generations skip the build.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any

import llguidance

from rudder.errors import GrammarError

#: Unstarted interpreters kept per tokenizer (the grammars run last): a grammar's lexer
#: and parser tables take from kilobytes to a few megabytes, so the memory stays bounded
#: however many distinct grammars a long-running process makes.
KEPT = 32


class FreshInterpreters:
    """Interpreters for one llguidance tokenizer, copied from an unstarted one per grammar."""

    def __init__(self, tokenizer: Any) -> None:
        self._tokenizer = tokenizer
        self._unstarted: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()  # the cache, and each copy of a kept interpreter

    def fresh(self, grammar: str) -> Any:
        """An interpreter for ``grammar`` (llguidance's JSON form) that has seen nothing.

        Raises:
            GrammarError: llguidance rejects the grammar (nothing is kept for it).
        """
        with self._lock:
            unstarted = self._unstarted.get(grammar)
            if unstarted is not None:
                self._unstarted.move_to_end(grammar)
                return unstarted.deep_copy()
        built = self._build(grammar)  # outside the lock: other grammars need not wait
        with self._lock:
            self._unstarted[grammar] = built
            self._unstarted.move_to_end(grammar)
            while len(self._unstarted) > KEPT:
                self._unstarted.popitem(last=False)
            return built.deep_copy()

    def __len__(self) -> int:
        return len(self._unstarted)

    def _build(self, grammar: str) -> Any:
        try:
            return llguidance.LLInterpreter(
                self._tokenizer,
                grammar,
                enable_backtrack=True,
                enable_ff_tokens=True,
                log_level=0,
            )
        except ValueError as error:
            raise GrammarError(f"llguidance rejected the grammar: {error}") from None
