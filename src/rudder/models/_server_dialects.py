"""Request bodies for OpenAI-compatible servers, one dialect per server: pure translation.

Each server takes the grammar under its own field, and reports tokens its own way:

| server | grammar field | tokens come back as |
| --- | --- | --- |
| vLLM | ``structured_outputs: {"grammar": ...}`` (guidance backend) | ids (``token_id:N``) |
| SGLang | ``ebnf`` with the ``%llguidance {}`` prefix (llguidance backend) | text |
| llama.cpp's server | ``grammar`` with the ``%llguidance {}`` prefix | text |
| the OpenAI API | ``response_format`` with a JSON schema (``json()`` alone) | text |

vLLM silently ignores the old ``guided_*`` fields, so they are never sent. Nothing here
touches the network: :func:`request_body` is tested against each server's documented
fields.
"""

from __future__ import annotations

import enum
from typing import Any

from rudder.engine._remote import RemoteRequest, Support


class ServerKind(str, enum.Enum):
    """Which server an OpenAI-compatible endpoint is (what it enforces and how)."""

    VLLM = "vllm"
    SGLANG = "sglang"
    LLAMA_CPP = "llama.cpp"
    OPENAI = "openai"

    @property
    def display_name(self) -> str:
        return _TITLES[self]

    @property
    def support(self) -> Support:
        return _SUPPORT[self]


_TITLES = {
    ServerKind.VLLM: "vLLM",
    ServerKind.SGLANG: "SGLang",
    ServerKind.LLAMA_CPP: "llama.cpp's server",
    ServerKind.OPENAI: "the OpenAI API",
}

_SUPPORT = {
    ServerKind.VLLM: Support(
        grammars=True, json_schema=True, logprobs=True, logprobs_after_mask=True
    ),
    ServerKind.SGLANG: Support(grammars=True, json_schema=True, logprobs=True),
    ServerKind.LLAMA_CPP: Support(grammars=True, json_schema=True, logprobs=True),
    ServerKind.OPENAI: Support(grammars=False, json_schema=True, logprobs=True),
}

#: The prefix that tells a server's llguidance its grammar is llguidance's Lark.
LLGUIDANCE_PREFIX = "%llguidance {}\n"


def request_body(
    kind: ServerKind, model: str, request: RemoteRequest, *, token_ids: bool = True
) -> dict[str, Any]:
    """The JSON body of ``request`` for a server of ``kind`` (``/completions`` when the
    request holds token ids, ``/chat/completions`` when it holds messages).
    ``token_ids``: ask for tokens as ids (vLLM), for a client that has the tokenizer."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "temperature": request.temperature,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    if request.prompt_ids is not None:
        body["prompt"] = list(request.prompt_ids)
        _completion_logprobs(kind, body, request.top_logprobs, token_ids)
    else:
        assert request.messages is not None
        body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
        body["logprobs"] = True
        body["top_logprobs"] = request.top_logprobs
        # llama.cpp's server continues a final assistant message by itself.
        if request.continue_final_message and kind in (ServerKind.VLLM, ServerKind.SGLANG):
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
        if kind is ServerKind.VLLM and token_ids:
            body["return_tokens_as_token_ids"] = True
    body.update(_grammar_fields(kind, request))
    body.update(request.extra)
    return body


def _completion_logprobs(kind: ServerKind, body: dict[str, Any], top: int, ids: bool) -> None:
    if kind is ServerKind.LLAMA_CPP:
        body["n_probs"] = top
        body["logprobs"] = top
    else:
        body["logprobs"] = top
    if kind is ServerKind.VLLM and ids:
        body["return_tokens_as_token_ids"] = True


def _grammar_fields(kind: ServerKind, request: RemoteRequest) -> dict[str, Any]:
    lark = request.lark or request.grammar.lark
    if kind is ServerKind.VLLM:
        return {"structured_outputs": {"grammar": LLGUIDANCE_PREFIX + lark}}
    if kind is ServerKind.SGLANG:
        return {"ebnf": LLGUIDANCE_PREFIX + lark}
    if kind is ServerKind.LLAMA_CPP:
        return {"grammar": LLGUIDANCE_PREFIX + lark}
    if request.json_schema is None:
        # RemoteEngine.check refuses these before a request is made.
        raise AssertionError("the OpenAI API takes only a JSON schema")
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "output", "schema": dict(request.json_schema), "strict": False},
        }
    }
