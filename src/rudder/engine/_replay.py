"""A server's tokens replayed through llguidance: the remote half of the decode loop.

A server that enforces the grammar samples token by token under llguidance's mask, with no
fast-forward and no backtracking. Replaying its tokens through a local interpreter over the
same tokenizer gives exactly what the local loop would have kept: tokens the grammar fixed
are forced (no probability, as locally), a stop string the server wrote is taken back, and
the captures come from the interpreter, with their log-probabilities from the server's. A
token the grammar does not allow means the server did not keep the grammar: that is a
:class:`GenerationError` naming the server.

Tokens the interpreter fast-forwards are owed by the server: its next tokens must spell
the same bytes (it may split them differently), and are not committed again.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from rudder._grammar._lark import CompiledGrammar
from rudder._state import Candidate, Token, TokenKind
from rudder.engine._loop import (
    Generation,
    Output,
    StepCallback,
    _allowed,
    _read_response,
    _single,
)
from rudder.engine._remote import RemoteEngine, RemoteRequest, ServerEnd, ServerToken
from rudder.engine._tokenizer import EngineTokenizer
from rudder.errors import GenerationError


def replay(
    tokenizer: EngineTokenizer,
    grammar: CompiledGrammar,
    stream: Iterable[ServerToken | ServerEnd],
    *,
    server: str,
    prompt_tokens: int,
    on_step: StepCallback | None = None,
    on_failure: Callable[[Generation], None] | None = None,
) -> Generation:
    """The generation ``stream`` (a server's answer to ``grammar``) amounts to.

    ``server`` names the server in errors; ``prompt_tokens`` is what rudder sent (the
    server's own count replaces it when it reports one). When the replay fails or is
    interrupted, ``on_failure`` gets what it produced up to then, as in the local loop.
    """
    replayed = _Replay(tokenizer, grammar, on_step, server)
    started = time.perf_counter()
    try:
        return replayed.run(stream, prompt_tokens)
    except BaseException:
        if on_failure is not None:
            replayed.result.total_s = time.perf_counter() - started
            on_failure(replayed.result)
        raise


class _Replay(Output):
    def __init__(
        self,
        tokenizer: EngineTokenizer,
        grammar: CompiledGrammar,
        on_step: StepCallback | None,
        server: str,
    ) -> None:
        super().__init__(tokenizer, grammar, on_step)
        self.server = server
        self.owed = b""  # bytes the interpreter fixed that the server has not sent yet
        self.stopped = False
        self.interpreter: Any = None
        self.last_arrival = 0.0  # when the previous server token arrived

    def run(self, stream: Iterable[ServerToken | ServerEnd], prompt_tokens: int) -> Generation:
        started = time.perf_counter()
        result = self.result
        result.prompt_tokens = prompt_tokens
        self.interpreter = self._interpreter()
        self._step(self.interpreter, self.interpreter.start_without_prompt)
        end: ServerEnd | None = None
        for item in stream:
            if isinstance(item, ServerEnd):
                end = item
                break
            if result.time_to_first_token_s is None:
                result.time_to_first_token_s = item.arrived_s
            result.forward_passes += 1
            mask_started = time.perf_counter()
            self._feed(item.token_id, item.bytes, item)
            self.last_arrival = item.arrived_s
            result.mask_s += time.perf_counter() - mask_started
        if end is None:
            raise GenerationError(f"{self.server} closed the stream without finishing it")
        self._end(end)
        result.total_s = time.perf_counter() - started
        result.forward_s = max(result.total_s - result.mask_s, 0.0)
        if end.prompt_tokens is not None:
            result.prompt_tokens = end.prompt_tokens
        result.cached_prompt_tokens = end.cached_prompt_tokens or 0
        self._finish(self.interpreter, result)
        return result

    def _feed(self, token_id: int | None, data: bytes, sent: ServerToken | None) -> None:
        """Commit one server token (or the part of it the interpreter does not owe)."""
        if self.owed:
            if self.owed.startswith(data):
                self.owed = self.owed[len(data) :]
                return
            if not data.startswith(self.owed):
                self._violation(data)
            data, token_id, sent = data[len(self.owed) :], None, None
            self.owed = b""
        if token_id == self.tokenizer.eos_token_id:
            self._end_of_sequence()
            return
        if token_id is not None and not 0 <= token_id < self.tokenizer.vocab_size:
            raise GenerationError(
                f"{self.server} sent token id {token_id}, outside the tokenizer's "
                f"{self.tokenizer.vocab_size} tokens: is rudder's tokenizer the model's?"
            )
        if not data:
            return
        if token_id is None or self.tokenizer.token_bytes(token_id) != data:
            # Not one token of the tokenizer (a piece left after owed bytes, or a server
            # that names tokens by text): its bytes as the tokenizer splits them.
            for piece in self.tokenizer.ll.tokenize_bytes(data):
                self._feed(piece, self.tokenizer.token_bytes(piece), None)
            return
        allowed = self._mask()
        if self.stopped and not self.owed:
            self._violation(data)
        if allowed is None:  # the grammar fixed the next bytes: the server owes them
            self._feed(token_id, data, sent)
            return
        if not allowed[token_id]:
            self._violation(data)
        record = None if _single(allowed) is not None else self._record(token_id, sent, allowed)
        self._commit(token_id, record, data)

    def _commit(self, token_id: int, record: Token | None, sent: bytes) -> None:
        """Commit a token; what the grammar adds beyond the bytes sent is owed."""
        chosen = functools.partial(self.interpreter.commit_token, token_id)
        backtrack, forced = self._step(self.interpreter, chosen)
        first_new = len(self.out) - backtrack
        self._apply(backtrack, forced, record, self.tokenizer.eos_token_id, self.result)
        # A stop string the server wrote is not kept: the interpreter's tokens replace it.
        added = b"".join(t.bytes for t in self.out[first_new:])
        common = 0
        while common < min(len(added), len(sent)) and added[common] == sent[common]:
            common += 1
        self.owed += added[common:]

    def _mask(self) -> Any:
        """The allowed tokens now; None when the grammar is complete (``stopped``) or fixed
        the next bytes (committed now, and owed by the server)."""
        mask, response = self._step(self.interpreter, self.interpreter.compute_mask)
        stop, _ = _read_response(response, self._collect_captures)
        if stop:
            self.stopped = True
            return None
        if mask is not None:
            return _allowed(mask, self.tokenizer.vocab_size)
        before = len(self.out)
        commit = functools.partial(self.interpreter.commit_token, None)
        backtrack, forced = self._step(self.interpreter, commit)
        self._apply(backtrack, forced, None, self.tokenizer.eos_token_id, self.result)
        self.owed += b"".join(t.bytes for t in self.out[before - backtrack :])
        return None

    def _end(self, end: ServerEnd) -> None:
        """The server stopped: the grammar must be complete."""
        if end.finish_reason == "length" and not self.stopped:
            raise GenerationError(
                f"{self.server} stopped at its max_tokens before the grammar was complete; "
                f"output so far: {self._text()!r}; bound the generation in the grammar "
                "(gen(max_tokens=...)) or raise the Model's max_tokens="
            )
        self._end_of_sequence()

    def _end_of_sequence(self) -> None:
        """Finish the grammar as the model's end-of-sequence token does."""
        eos = self.tokenizer.eos_token_id
        while not self.stopped:
            if self.owed:
                raise GenerationError(
                    f"{self.server} ended the output before the text the grammar fixes "
                    f"({self.owed.decode('utf-8', errors='replace')!r}); output so far: "
                    f"{self._text()!r}"
                )
            allowed = self._mask()
            if allowed is None:
                continue
            if not allowed[eos]:
                raise GenerationError(
                    f"{self.server} ended the output where the grammar is not complete; "
                    f"output so far: {self._text()!r}"
                )
            self._commit(eos, None, b"")

    def _record(self, token_id: int, sent: ServerToken | None, allowed: Any) -> Token:
        prob = None
        top: tuple[Candidate, ...] = ()
        if sent is not None and sent.logprob is not None:
            prob = math.exp(sent.logprob)
        if sent is not None and sent.top is not None:
            top = tuple(
                Candidate(
                    c.token_id,
                    self.tokenizer.token_bytes(c.token_id),
                    math.exp(c.logprob),
                    bool(allowed[c.token_id]),
                )
                for c in sent.top
                if c.token_id is not None and 0 <= c.token_id < self.tokenizer.vocab_size
            )
        return Token(
            token_id,
            self.tokenizer.token_bytes(token_id),
            TokenKind.GENERATED,
            prob=prob,
            latency=0.0 if sent is None else max(sent.arrived_s - self.last_arrival, 0.0),
            top=top,
            top_allowed=tuple(c for c in top if c.allowed),
            special=self.tokenizer.is_special(token_id),
        )

    def _violation(self, data: bytes) -> NoReturn:
        raise GenerationError(
            f"{self.server} did not keep the grammar: it sent "
            f"{data.decode('utf-8', errors='replace')!r} after {self._text()!r}, which the "
            "grammar does not allow there (is its structured-output backend on?)"
        )


def run_remote(
    engine: RemoteEngine,
    request: RemoteRequest,
    on_step: StepCallback | None = None,
    on_failure: Callable[[Generation], None] | None = None,
) -> Generation:
    """Send ``request`` to ``engine`` and replay its answer (see :func:`replay`)."""
    prompt_tokens = len(request.prompt_ids) if request.prompt_ids is not None else 0
    return replay(
        engine.tokenizer,
        request.grammar,
        engine.stream(request),
        server=engine.name,
        prompt_tokens=prompt_tokens,
        on_step=on_step,
        on_failure=on_failure,
    )
