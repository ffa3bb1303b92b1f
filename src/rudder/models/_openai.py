"""``models.OpenAI``: OpenAI-compatible servers (vLLM, SGLang, llama.cpp's server, the
OpenAI API) as a remote engine.

With the model's tokenizer at hand (``tokenizer=``, or the model name when it is a local path
or a cached hub id) rudder renders the prompt itself and sends token ids to
``/completions``, so the server sees exactly what a local model would; the tokens come back
as ids (vLLM) or text, and are replayed through llguidance here. Without one, the
conversation goes to ``/chat/completions`` as messages and the server applies its template;
the answer is then replayed byte by byte, and per-token probabilities are absent.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Iterator
from typing import Any

from rudder._chat import ChatTemplate
from rudder.engine._remote import (
    RemoteEngine,
    RemoteRequest,
    ServerCandidate,
    ServerEnd,
    ServerToken,
)
from rudder.engine._tokenizer import EngineTokenizer
from rudder.errors import ModelLoadError, SettingsError
from rudder.models._model import Model
from rudder.models._server_client import ServerClient
from rudder.models._server_dialects import ServerKind, request_body

_OPENAI_URL = "https://api.openai.com/v1"
_TOKEN_ID_PREFIX = "token_id:"
_MASKED_LOGPROB = -9000.0


class OpenAIEngine(RemoteEngine):
    """One OpenAI-compatible endpoint; safe to use from many threads at once."""

    def __init__(
        self,
        model: str,
        client: ServerClient,
        kind: ServerKind,
        tokenizer: EngineTokenizer,
        *,
        chat: bool,
        max_tokens: int,
        top_logprobs: int,
        context_length: int | None = None,
    ) -> None:
        super().__init__(
            tokenizer,
            name=client.name,
            support=kind.support,
            chat=chat,
            context_length=context_length,
            max_tokens=max_tokens,
            exact_tokens=not isinstance(tokenizer, _BytesTokenizer),
        )
        self.model = model
        self.kind = kind
        self.client = client
        self.top_logprobs = top_logprobs

    @property
    def model_name(self) -> str:
        return self.model

    def stream(self, request: RemoteRequest) -> Iterator[ServerToken | ServerEnd]:
        request = _with_top_logprobs(request, self.top_logprobs)
        body = request_body(self.kind, self.model, request, token_ids=self.exact_tokens)
        path = "/completions" if request.prompt_ids is not None else "/chat/completions"
        started = time.perf_counter()
        finish: str | None = None
        usage: dict[str, Any] = {}
        for event in self.client.stream_events(path, body):
            if event.get("usage"):
                usage = event["usage"]
            for choice in event.get("choices") or ():
                arrived = time.perf_counter() - started
                yield from self._tokens(choice, arrived)
                finish = choice.get("finish_reason") or finish
        details = usage.get("prompt_tokens_details") or {}
        yield ServerEnd(
            finish,
            prompt_tokens=usage.get("prompt_tokens"),
            cached_prompt_tokens=details.get("cached_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            total_s=time.perf_counter() - started,
        )

    def _tokens(self, choice: dict[str, Any], arrived: float) -> Iterator[ServerToken]:
        logprobs = choice.get("logprobs") or {}
        if "content" in logprobs:  # chat completions: a list of token records
            for item in logprobs.get("content") or ():
                top = tuple(
                    self._candidate(t["token"], t.get("bytes"), t["logprob"])
                    for t in item.get("top_logprobs") or ()
                    if _reported(t["logprob"])
                )
                token_id, data = self._token(item["token"], item.get("bytes"))
                yield ServerToken(token_id, data, item.get("logprob"), top or None, arrived)
            return
        tokens = logprobs.get("tokens")
        if tokens:  # completions: parallel lists
            values = logprobs.get("token_logprobs") or [None] * len(tokens)
            tops = logprobs.get("top_logprobs") or [None] * len(tokens)
            for token, value, top in zip(tokens, values, tops, strict=False):
                candidates = (
                    tuple(self._candidate(t, None, lp) for t, lp in top.items() if _reported(lp))
                    if top
                    else None
                )
                token_id, data = self._token(token, None)
                yield ServerToken(token_id, data, value, candidates, arrived)
            return
        text = choice.get("text")
        if text is None:
            text = (choice.get("delta") or {}).get("content")
        if text:  # no per-token report: the text, to be split by the tokenizer
            yield ServerToken(None, text.encode(), arrived_s=arrived)

    def _token(self, token: str, raw: list[int] | None) -> tuple[int | None, bytes]:
        if token.startswith(_TOKEN_ID_PREFIX):
            token_id = int(token[len(_TOKEN_ID_PREFIX) :])
            return token_id, self.tokenizer.token_bytes(token_id)
        return None, bytes(raw) if raw is not None else token.encode()

    def _candidate(self, token: str, raw: list[int] | None, logprob: float) -> ServerCandidate:
        token_id, data = self._token(token, raw)
        value = logprob if logprob is not None and math.isfinite(logprob) else -math.inf
        return ServerCandidate(token_id, data, value)


def _reported(logprob: float | None) -> bool:
    """Whether a candidate's log-probability is one: vLLM fills the top candidates of a
    step whose mask leaves fewer tokens with masked ones at -9999."""
    return logprob is not None and logprob > _MASKED_LOGPROB


def _with_top_logprobs(request: RemoteRequest, top: int) -> RemoteRequest:
    import dataclasses

    return dataclasses.replace(request, top_logprobs=top)


class _BytesTokenizer(EngineTokenizer):
    """One token per byte, for servers whose tokenizer rudder does not have."""

    def __init__(self) -> None:
        # The 256 bytes, then an end-of-text token (llguidance needs one).
        tokens = [bytes([i]) for i in range(256)] + [b"<|end_of_text|>"]
        super().__init__(
            tokens,
            special_ids=(256,),
            eos_token_id=256,
            bos_token_id=None,
            add_bos=False,
            special_tokens={},
            chat_template=None,
        )

    def _encode(self, text: str, special: bool) -> list[int]:
        return list(text.encode())


def _tokenizer(tokenizer: Any, model: str) -> EngineTokenizer | None:
    """The server model's tokenizer: the one given, else the model name's when it loads
    from local files; None when there is none."""
    from rudder.models._transformers import HuggingFaceTokenizer
    from rudder.models._transformers_loading import load_tokenizer

    if tokenizer is False:
        return None
    if tokenizer is None:
        try:
            from transformers import AutoTokenizer
        except ImportError:
            return None
        try:
            loaded = AutoTokenizer.from_pretrained(os.path.expanduser(model), local_files_only=True)
        except (OSError, ValueError, KeyError):
            return None
        return HuggingFaceTokenizer(loaded)
    return HuggingFaceTokenizer(load_tokenizer(tokenizer, model, None))


def detect_server(client: ServerClient, model: str) -> tuple[ServerKind, int | None]:
    """Which server answers, from ``/models``' ``owned_by`` (vLLM says "vllm", SGLang
    "sglang", llama.cpp "llamacpp"; anything else is taken for the OpenAI API), and the
    model's context length when the server gives it (``max_model_len``)."""
    try:
        listing = client.get_json("/models")
    except Exception as error:
        raise ModelLoadError(
            f"cannot tell which server {client.base_url} is ({error}); pass server="
            f"{', '.join(repr(k.value) for k in ServerKind)}"
        ) from None
    entries = [m for m in listing.get("data") or () if isinstance(m, dict)]
    owners = {str(m.get("owned_by", "")).lower() for m in entries}
    context = next(
        (m.get("max_model_len") for m in entries if m.get("id") == model),
        None,
    )
    context = context if isinstance(context, int) and context > 0 else None
    for owner, kind in (
        ("vllm", ServerKind.VLLM),
        ("sglang", ServerKind.SGLANG),
        ("llamacpp", ServerKind.LLAMA_CPP),
    ):
        if owner in owners:
            return kind, context
    return ServerKind.OPENAI, context


class OpenAI(Model):
    """A model behind an OpenAI-compatible server: ``models.OpenAI("model", base_url)``.

    Grammars are enforced by the server (vLLM, SGLang and llama.cpp's server enforce any
    grammar; the OpenAI API only a ``json()``), and the tokens it returns are replayed
    through llguidance here, which gives the captures and checks the server kept the
    grammar. Many threads may run programs on one OpenAI Model at once: the server batches
    them.

    Args:
        model: the model name the server knows (for vLLM, what it was started with).
        base_url: the server's ``/v1`` URL; None for the OpenAI API.
        api_key: sent as a bearer token; by default ``OPENAI_API_KEY`` for the OpenAI API.
        echo: show this Model's steps in the views.
        server: ``"vllm"``, ``"sglang"``, ``"llama.cpp"`` or ``"openai"``; detected from the
            server's ``/models`` when None.
        tokenizer: the model's tokenizer (path, hub id or loaded fast tokenizer): rudder
            then renders the prompt and sends token ids. By default the model name's, when
            it loads from local files; ``False`` for none (chat messages are sent).
        chat_template: as for :class:`Transformers` (used when rudder renders the prompt).
        chat: send chat messages even with a tokenizer (the server applies its template).
        max_tokens: the most tokens one generation may take on the server.
        top_logprobs: how many top candidates the server reports per token.
        timeout_s, max_retries, max_connections: the HTTP client's settings.
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        echo: bool = True,
        server: str | ServerKind | None = None,
        tokenizer: Any = None,
        chat_template: str | ChatTemplate | None = None,
        chat: bool | None = None,
        max_tokens: int = 1024,
        top_logprobs: int = 5,
        timeout_s: float = 120.0,
        max_retries: int = 3,
        max_connections: int = 64,
    ) -> None:
        _check_settings(model, max_tokens, top_logprobs, timeout_s, max_retries)
        if base_url is None:
            base_url = _OPENAI_URL
            api_key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
            server = ServerKind.OPENAI if server is None else server
        kind = _kind(server)
        client = ServerClient(
            base_url,
            name=f"{kind.display_name if kind else 'the server'} at {base_url}",
            api_key=api_key,
            timeout_s=timeout_s,
            max_retries=max_retries,
            max_connections=max_connections,
        )
        context_length = None
        if kind is None:
            kind, context_length = detect_server(client, model)
            client.name = f"{kind.display_name} at {base_url}"
        engine_tokenizer = _tokenizer(tokenizer, model)
        engine = OpenAIEngine(
            model,
            client,
            kind,
            engine_tokenizer or _BytesTokenizer(),
            chat=chat if chat is not None else engine_tokenizer is None,
            max_tokens=max_tokens,
            top_logprobs=top_logprobs,
            context_length=context_length,
        )
        super().__init__(engine, chat_template=chat_template, echo=echo)


def _kind(server: str | ServerKind | None) -> ServerKind | None:
    if server is None or isinstance(server, ServerKind):
        return server
    try:
        return ServerKind(server)
    except ValueError:
        raise SettingsError(
            f"unknown server {server!r}: give one of "
            f"{', '.join(repr(k.value) for k in ServerKind)}, or None to detect it"
        ) from None


def _check_settings(
    model: object, max_tokens: object, top_logprobs: object, timeout_s: object, retries: object
) -> None:
    if not isinstance(model, str) or not model:
        raise SettingsError(f"model must be the non-empty name the server knows, got {model!r}")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise SettingsError(f"max_tokens must be a positive int, got {max_tokens!r}")
    if not isinstance(top_logprobs, int) or isinstance(top_logprobs, bool):
        raise SettingsError(f"top_logprobs must be an int from 0 to 20, got {top_logprobs!r}")
    if not 0 <= top_logprobs <= 20:
        raise SettingsError(f"top_logprobs must be from 0 to 20, got {top_logprobs}")
    if not isinstance(timeout_s, (int, float)) or not timeout_s > 0:
        raise SettingsError(f"timeout_s must be a positive number, got {timeout_s!r}")
    if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
        raise SettingsError(f"max_retries must be an int >= 0, got {retries!r}")
