"""A Model's state and a grammar -> the request a remote engine is sent.

With the server model's tokenizer at hand and ``chat`` off, the prompt is rendered and
encoded here exactly as for a local engine (token ids); otherwise the conversation goes as
messages and the server applies its own chat template, continuing an open assistant
message. The grammar goes both as rudder compiled it (for the replay) and as one Lark text
(for the server).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from rudder._chat import ChatTemplate, messages_of, render_state
from rudder._grammar._lark import (
    compile_grammar,
    compile_without_token_limits,
    iter_nodes,
    single_lark,
)
from rudder._grammar._nodes import GrammarNode, Rule
from rudder._state import Entry
from rudder.engine._prompt import tokenize_prompt
from rudder.engine._remote import (
    Message,
    RemoteEngine,
    RemoteRequest,
    json_schema_of,
    with_flexible_json,
)
from rudder.errors import RoleError


def remote_request(
    engine: RemoteEngine,
    grammar: GrammarNode,
    entries: Iterable[Entry],
    template: ChatTemplate,
) -> RemoteRequest:
    """The request for generating ``grammar`` after ``entries`` on ``engine``."""
    if not engine.support.grammars:
        grammar = with_flexible_json(grammar)  # the server's whitespace, not rudder's
    replayed = (
        compile_grammar(grammar) if engine.exact_tokens else compile_without_token_limits(grammar)
    )
    request = RemoteRequest(
        grammar=replayed,
        lark=single_lark(grammar),
        json_schema=json_schema_of(grammar),
        max_tokens=engine.max_tokens,
        temperature=_temperature(grammar),
    )
    if not engine.chat:
        return _with_prompt_ids(request, engine, entries, template)
    return _with_messages(request, entries)


def _temperature(grammar: GrammarNode) -> float:
    """A server samples a whole step at one temperature: the grammar's highest."""
    return max(
        (
            node.temperature
            for node in iter_nodes(grammar)
            if isinstance(node, Rule) and node.temperature is not None
        ),
        default=0.0,
    )


def _with_prompt_ids(
    request: RemoteRequest,
    engine: RemoteEngine,
    entries: Iterable[Entry],
    template: ChatTemplate,
) -> RemoteRequest:
    tokenizer = engine.tokenizer
    ids = tokenize_prompt(render_state(entries, template), tokenizer).ids
    if not ids:  # as the local loop does: start from start-of-text, else end-of-text
        start = tokenizer.bos_token_id
        ids = [start if start is not None else tokenizer.eos_token_id]
    max_tokens = request.max_tokens
    if engine.context_length is not None:
        # A server refuses a request whose prompt and max_tokens exceed its context.
        max_tokens = max(1, min(max_tokens, engine.context_length - len(ids)))
    return dataclasses.replace(request, prompt_ids=tuple(ids), max_tokens=max_tokens)


def _with_messages(request: RemoteRequest, entries: Iterable[Entry]) -> RemoteRequest:
    pairs, open_last = messages_of(entries)
    continues = open_last and pairs[-1][0] == "assistant"
    if open_last and not continues:
        raise RoleError(
            "a server that applies the chat template continues only an open assistant "
            f"message, not an open {pairs[-1][0]!r} one; generate inside with assistant(): ..."
        )
    messages = tuple(Message(role, content) for role, content in pairs)
    return dataclasses.replace(request, messages=messages, continue_final_message=continues)
