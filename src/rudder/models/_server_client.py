"""Talking to an OpenAI-compatible server: one pooled httpx client, streamed answers.

One client per engine serves every thread (httpx's connection pool reuses connections).
A request that gets 429 or a 5xx, or whose connection fails before any token arrived, is
retried with exponential backoff (honouring ``Retry-After``); once tokens have arrived a
failure is not retried (the program has seen them). Every error names the server and says
what it answered.
"""

from __future__ import annotations

import contextlib
import json
import random
import threading
import time
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

from rudder.errors import GenerationError, ModelLoadError

_RETRIED_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


def _httpx() -> Any:
    try:
        import httpx
    except ImportError:
        raise ModelLoadError("models.OpenAI needs httpx: pip install 'rudder[openai]'") from None
    return httpx


class ServerClient:
    """POSTs JSON to ``base_url`` + path and yields the server-sent events of the answer."""

    def __init__(
        self,
        base_url: str,
        *,
        name: str,
        api_key: str | None,
        timeout_s: float,
        max_retries: int,
        max_connections: int,
        transport: Any = None,
    ) -> None:
        httpx = _httpx()
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.max_retries = max_retries
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._client = httpx.Client(
            base_url=self.base_url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(timeout_s, connect=min(timeout_s, 10.0)),
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
        )
        # The pool's connections close with the last Model that holds this client.
        weakref.finalize(self, self._client.close)
        self._lock = threading.Lock()
        #: Requests sent and retried, for tests and figures.
        self.requests = 0
        self.retries = 0

    def stream_events(self, path: str, body: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
        """The JSON events of a streamed answer to ``body`` (``data: [DONE]`` ends it)."""
        httpx = _httpx()
        attempt = 0
        while True:
            with self._lock:
                self.requests += 1
            received = False
            try:
                with self._client.stream("POST", path, json=body) as response:
                    if response.status_code != 200:
                        response.read()
                        retry = response.status_code in _RETRIED_STATUS
                        if retry and attempt < self.max_retries:
                            self._wait(attempt, response.headers.get("retry-after"))
                            attempt += 1
                            continue
                        raise GenerationError(self._status_message(path, response))
                    for event in _events(response.iter_lines()):
                        received = True
                        yield event
                    return
            except httpx.TransportError as error:
                if received or attempt >= self.max_retries:
                    when = "in the middle of its answer" if received else "before answering"
                    raise GenerationError(
                        f"{self.name} failed {when} ({type(error).__name__}: {error}) after "
                        f"{attempt + 1} attempt(s); is the server running at {self.base_url}?"
                    ) from None
                self._wait(attempt, None)
                attempt += 1

    def get_json(self, path: str) -> Any:
        """GET ``path`` (no retries): for detection and health checks."""
        response = self._client.get(path)
        if response.status_code != 200:
            raise GenerationError(self._status_message(path, response))
        return response.json()

    def close(self) -> None:
        self._client.close()

    def _wait(self, attempt: int, retry_after: str | None) -> None:
        with self._lock:
            self.retries += 1
        delay = min(0.25 * 2**attempt, 8.0) * (1 + random.random() / 4)
        if retry_after is not None:
            with contextlib.suppress(ValueError):  # an HTTP date: keep the backoff
                delay = max(delay, min(float(retry_after), 30.0))
        time.sleep(delay)

    def _status_message(self, path: str, response: Any) -> str:
        detail = response.text.strip()
        try:
            parsed = json.loads(detail)
            error = parsed.get("error", parsed) if isinstance(parsed, dict) else parsed
            detail = error.get("message", detail) if isinstance(error, dict) else str(error)
        except ValueError:
            pass
        if len(detail) > 500:
            detail = detail[:500] + "..."
        return f"{self.name} answered {response.status_code} to POST {path}: {detail}"


def _events(lines: Iterator[str]) -> Iterator[dict[str, Any]]:
    """Server-sent events: each ``data:`` line a JSON object, until ``[DONE]``."""
    for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        if data:
            event = json.loads(data)
            if isinstance(event, dict) and "error" in event:
                raise GenerationError(f"server error in the stream: {event['error']}")
            yield event
