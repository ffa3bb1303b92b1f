"""``MockServer``: a remote engine that behaves as a grammar-enforcing server does.

It answers each request the way vLLM's guidance backend does: llguidance's matcher (no
fast-forward, no backtracking) masks the Mock's logits token by token, the likeliest
allowed token is chosen, and it is reported with its log-probability and top candidates
after the mask. A stop string is written out, as a server writes it. So the remote path
(request, stream, replay) runs in the unit tier with no server. ``chat=True`` makes it
apply the chat template itself, as a server does for chat completions.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

import llguidance

from rudder._chat import ChatTemplate
from rudder.engine._remote import (
    RemoteEngine,
    RemoteRequest,
    ServerCandidate,
    ServerEnd,
    ServerToken,
    Support,
)
from rudder.models._mock import _EOS, MockEngine, MockTokenizer
from rudder.models._model import Model
from rudder.models._server_dialects import LLGUIDANCE_PREFIX

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt


class MockServerEngine(RemoteEngine):
    """The Mock's logits served under a server-side grammar (see the module docstring).

    ``keep_grammar=False`` makes a server that ignores the grammar (errors are tested with
    it); ``report_logprobs=False`` one that reports no probabilities.
    """

    def __init__(
        self,
        byte_patterns: Sequence[bytes],
        *,
        chat: bool = False,
        keep_grammar: bool = True,
        report_logprobs: bool = True,
    ) -> None:
        tokenizer = MockTokenizer()
        super().__init__(
            tokenizer,
            name="the mock server",
            support=Support(
                grammars=True,
                json_schema=True,
                logprobs=report_logprobs,
                logprobs_after_mask=True,
            ),
            chat=chat,
        )
        self.model = MockEngine(byte_patterns, tokenizer)
        self.keep_grammar = keep_grammar
        self.requests: list[RemoteRequest] = []
        self._template = ChatTemplate.resolve(
            "chatml", tokenizer_template=None, special_tokens=tokenizer.special_tokens
        )

    def stream(self, request: RemoteRequest) -> Iterator[ServerToken | ServerEnd]:
        self.requests.append(request)
        started = time.perf_counter()
        ids = list(self._prompt(request)) or [_EOS]
        # What a server is sent: the one Lark text (vLLM runs grammar_from("grammar", ...)).
        grammar = (
            llguidance.grammar_from("grammar", LLGUIDANCE_PREFIX + request.lark)
            if request.lark
            else request.grammar.llguidance
        )
        matcher = llguidance.LLMatcher(self.tokenizer.ll, grammar, log_level=0)
        produced = 0
        while not matcher.is_stopped():
            if produced >= request.max_tokens:
                yield ServerEnd("length", len(ids) - produced, 0, produced)
                return
            logits = self.model.forward(ids)
            allowed = _allowed(matcher.compute_bitmask(), self.tokenizer.vocab_size)
            if not self.keep_grammar:
                allowed[:] = True
            token, logprobs = _choose(logits, allowed)
            if token == _EOS:
                break
            matcher.consume_token(token)
            ids.append(token)
            produced += 1
            yield self._token(token, logprobs, request, time.perf_counter() - started)
        yield ServerEnd(
            "stop",
            len(ids) - produced,
            0,
            produced,
            total_s=time.perf_counter() - started,
        )

    def _prompt(self, request: RemoteRequest) -> Sequence[int]:
        if request.prompt_ids is not None:
            return request.prompt_ids
        assert request.messages is not None
        text = self._template.render(
            [{"role": m.role, "content": m.content} for m in request.messages],
            add_generation_prompt=not request.continue_final_message,
        )
        if request.continue_final_message:
            end = text.rfind("<|im_end|>")
            text = text[:end] if end >= 0 else text
        return self.tokenizer.encode(text, True) or [_EOS]

    def _token(
        self,
        token: int,
        logprobs: npt.NDArray[np.float32],
        request: RemoteRequest,
        arrived: float,
    ) -> ServerToken:
        data = self.tokenizer.token_bytes(token)
        if not self.support.logprobs:
            return ServerToken(token, data, arrived_s=arrived)
        import numpy as np

        top = np.argsort(-logprobs, kind="stable")[: request.top_logprobs]
        candidates = tuple(
            ServerCandidate(int(i), self.tokenizer.token_bytes(int(i)), float(logprobs[i]))
            for i in top
            if np.isfinite(logprobs[i])
        )
        return ServerToken(token, data, float(logprobs[token]), candidates, arrived)


def _allowed(bitmask: bytes, vocab: int) -> npt.NDArray[np.bool_]:
    import numpy as np

    bits = np.unpackbits(np.frombuffer(bitmask, dtype=np.uint8), bitorder="little")
    allowed: npt.NDArray[np.bool_] = bits[:vocab].astype(bool)
    return allowed


def _choose(
    logits: npt.NDArray[np.float32], allowed: npt.NDArray[np.bool_]
) -> tuple[int, npt.NDArray[np.float32]]:
    """The likeliest allowed token, and the log-probabilities after the mask."""
    import numpy as np

    masked = np.where(allowed, logits, -np.inf).astype(np.float32)
    shifted = masked - masked.max()
    logprobs: npt.NDArray[np.float32] = shifted - np.log(np.exp(shifted).sum())
    return int(np.argmax(masked)), logprobs


class MockServer(Model):
    """A Model on :class:`MockServerEngine`: ``MockServer([b"Paris"])``."""

    def __init__(
        self,
        byte_patterns: Sequence[bytes | str] | bytes | str = (),
        *,
        chat: bool = False,
        keep_grammar: bool = True,
        report_logprobs: bool = True,
        echo: bool = False,
    ) -> None:
        if isinstance(byte_patterns, (bytes, str)):
            byte_patterns = [byte_patterns]
        patterns = [p.encode() if isinstance(p, str) else bytes(p) for p in byte_patterns]
        engine = MockServerEngine(
            patterns, chat=chat, keep_grammar=keep_grammar, report_logprobs=report_logprobs
        )
        super().__init__(engine, chat_template="chatml", echo=echo)
