"""The remote engine contract: a server runs a whole generation step.

A local engine gives logits and the shared loop does the rest; a remote engine (an
OpenAI-compatible server) is sent the prompt and the grammar, enforces the grammar itself,
and streams back the tokens it chose. What a remote engine gives is therefore a stream of
:class:`ServerToken` ending with one :class:`ServerEnd`; the shared replay
(:mod:`rudder.engine._replay`) turns it into the same state entries, captures and trace
events as the local loop, by replaying the tokens through llguidance on the server's
tokenizer. A remote engine declares what it can enforce (:class:`Support`), and refuses a
grammar it cannot before anything is sent.
"""

from __future__ import annotations

import abc
import dataclasses
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from rudder._grammar._lark import CompiledGrammar
from rudder._grammar._nodes import GrammarNode, Json, Rule
from rudder.engine._tokenizer import EngineTokenizer
from rudder.errors import GrammarError


@dataclass(frozen=True, slots=True)
class ServerCandidate:
    """One of the server's top candidates at a step (``top_logprobs``)."""

    token_id: int | None  # None when the server names it only by its text
    bytes: bytes
    logprob: float


@dataclass(frozen=True, slots=True)
class ServerToken:
    """A token the server chose. ``logprob`` and ``top`` are None when it did not say."""

    token_id: int | None
    bytes: bytes
    logprob: float | None = None
    top: tuple[ServerCandidate, ...] | None = None
    #: Seconds since the request was sent, when the token arrived.
    arrived_s: float = 0.0


@dataclass(frozen=True, slots=True)
class ServerEnd:
    """The end of a server's stream: why it stopped and its ``usage`` (None: not reported)."""

    finish_reason: str | None
    prompt_tokens: int | None = None
    cached_prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Support:
    """What a server enforces and reports."""

    #: Any grammar rudder writes (llguidance's Lark): vLLM, SGLang, llama.cpp's server.
    grammars: bool
    #: JSON schemas alone (``response_format``): the OpenAI API.
    json_schema: bool
    #: Per-token log-probabilities and top candidates.
    logprobs: bool
    #: Whether the probabilities are those after the grammar's mask (vLLM's are).
    logprobs_after_mask: bool = False


@dataclass(frozen=True, slots=True)
class Message:
    """A chat message for a server that applies the chat template itself."""

    role: str
    content: str


@dataclass(frozen=True, slots=True)
class RemoteRequest:
    """One generation step: the prompt (token ids, or messages) and the grammar."""

    grammar: CompiledGrammar
    #: The grammar as one Lark text, sub-grammars inline (what servers are sent).
    lark: str = ""
    #: The JSON schema when the grammar is one json() (for servers that take only those).
    json_schema: Mapping[str, object] | None = None
    prompt_ids: tuple[int, ...] | None = None
    messages: tuple[Message, ...] | None = None
    #: The last message is an open assistant message the server continues.
    continue_final_message: bool = False
    temperature: float = 0.0
    max_tokens: int = 1024
    top_logprobs: int = 5
    extra: Mapping[str, object] = field(default_factory=dict)


class RemoteEngine(abc.ABC):
    """A server that runs generation steps; the replay needs its tokenizer locally.

    ``tokenizer`` is the server model's tokenizer (the replay maps the returned tokens to
    llguidance's masks with it); ``name`` says which server it is in errors
    (``"vLLM at http://127.0.0.1:8000/v1"``). One engine serves many programs from many
    threads at once: ``stream`` must be safe to call concurrently.
    """

    def __init__(
        self,
        tokenizer: EngineTokenizer,
        *,
        name: str,
        support: Support,
        chat: bool,
        context_length: int | None = None,
        max_tokens: int = 1024,
        exact_tokens: bool = True,
    ) -> None:
        self.tokenizer = tokenizer
        self.name = name
        self.support = support
        #: Send chat messages (the server applies the template) rather than token ids.
        self.chat = chat
        self.context_length = context_length
        #: The most tokens one request may produce (the grammar's own bounds come first).
        self.max_tokens = max_tokens
        #: Whether ``tokenizer`` is the server model's own. When it is a stand-in (one token
        #: per byte), the server's tokens are replayed as bytes and the grammar's token
        #: limits, which count the server's tokens, are left to the server.
        self.exact_tokens = exact_tokens

    @property
    def model_name(self) -> str:
        """What the model is called, for telemetry (the server's name by default)."""
        return self.name

    def check(self, grammar: GrammarNode) -> None:
        """Raise :class:`~rudder.errors.GrammarError` for a grammar this server cannot
        enforce, naming what would work; called before anything is sent."""
        if self.support.grammars:
            return
        if self.support.json_schema and json_schema_of(grammar) is not None:
            return
        enforced = "a json() alone" if self.support.json_schema else "no grammar"
        raise GrammarError(
            f"{self.name} enforces {enforced}, not {grammar!r}; serve the model with vLLM, "
            "SGLang or llama.cpp's server (which enforce any grammar), or run it locally "
            "with models.Transformers"
        )

    @abc.abstractmethod
    def stream(self, request: RemoteRequest) -> Iterator[ServerToken | ServerEnd]:
        """Send ``request``; yield the tokens as they come, then one :class:`ServerEnd`."""


def json_schema_of(grammar: GrammarNode) -> dict[str, Any] | None:
    """The JSON schema of a grammar that is one ``json()`` and nothing else, else None."""
    node = grammar
    if isinstance(node, Rule) and node.stop is None and node.suffix is None:
        node = node.body
    if not isinstance(node, Json):
        return None
    schema: dict[str, Any] = json.loads(node.schema_text)
    schema.pop("x-guidance", None)  # llguidance's own options (whitespace, leniency)
    return schema


def with_flexible_json(grammar: GrammarNode) -> GrammarNode:
    """A ``json()`` that accepts any whitespace between tokens: a server that takes only a
    JSON schema (the OpenAI API) writes whitespace as it likes, which the replay must take."""
    rule = grammar if isinstance(grammar, Rule) else None
    node = rule.body if rule is not None else grammar
    if not isinstance(node, Json):
        return grammar
    schema = json.loads(node.schema_text)
    schema["x-guidance"] = {"whitespace_flexible": True}
    flexible = Json(json.dumps(schema))  # in order: llguidance keeps the properties order
    return dataclasses.replace(rule, body=flexible) if rule is not None else flexible
