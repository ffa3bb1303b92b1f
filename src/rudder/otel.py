"""OpenTelemetry: runs and generations as spans, for Phoenix, Langfuse or any OTLP collector.

``rudder.otel.instrument()`` makes a span for every ``rudder.run()`` and one for every
generation (``gen()``, ``select()``, ``json()``, ...), following the GenAI semantic
conventions: ``gen_ai.operation.name`` (``text_completion``), ``gen_ai.provider.name``
(``rudder``), ``gen_ai.request.model`` (the engine's ``model_name``: a Transformers model's
hub id or folder), ``gen_ai.usage.input_tokens`` and ``output_tokens``, and rudder's own figures as
``rudder.*`` attributes (token reduction, forced and backtracked tokens, time to first
token, forward passes). A generation's span is a child of its run's span; work outside any
run (the default run, which never ends) makes root spans.

Spans go to the tracer provider given, else to OpenTelemetry's global one: with no SDK
configured that one drops them, so nothing is sent anywhere until the program sets up an
exporter. Prompt and output text are attributes (``gen_ai.input.messages``,
``gen_ai.output.messages``) only with ``capture_content=True`` or
``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true``. Steps made with echo off reach
no view and no span; hidden generations never carry text.

Needs the ``otel`` extra (``opentelemetry-api``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import TYPE_CHECKING, Any

from rudder._state import RoleCloser, RoleOpener, Text, Token
from rudder.trace._events import TraceListener
from rudder.trace._node import NodeKind

if TYPE_CHECKING:
    from rudder.trace._node import TraceNode
    from rudder.trace._run import Run
    from rudder.trace._usage import Usage

__all__ = ["instrument", "uninstrument"]

#: What a generation is, in the GenAI conventions' words.
OPERATION = "text_completion"
PROVIDER = "rudder"
CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"


class SpanListener(TraceListener):
    """Turns trace events into spans on ``tracer``."""

    def __init__(self, tracer: Any, *, capture_content: bool) -> None:
        self.tracer = tracer
        self.capture_content = capture_content
        self._lock = threading.Lock()
        self._runs: dict[str, Any] = {}  # run id -> its open span
        self._generations: dict[int, Any] = {}  # node id -> its open span

    def run_started(self, run: Run) -> None:
        if run.default:
            return  # it never ends, so its span would never be sent
        span = self.tracer.start_span(
            f"rudder.run {run.name}",
            start_time=_ns(run.started_at),
            attributes={"rudder.run.id": run.id, "rudder.run.name": run.name},
        )
        with self._lock:
            self._runs[run.id] = span

    def run_finished(self, run: Run) -> None:
        from opentelemetry.trace import Status, StatusCode

        with self._lock:
            span = self._runs.pop(run.id, None)
        if span is None:
            return
        span.set_attribute("rudder.run.status", run.status.value)
        span.set_attributes(_usage_attributes(run.usage))
        if run.error is not None:
            span.set_status(Status(StatusCode.ERROR, run.error))
            span.set_attribute("error.type", run.error.split(":", 1)[0])
        span.end(end_time=_ns(run.finished_at))

    def node_added(self, node: TraceNode) -> None:
        from opentelemetry import trace

        if node.input.kind is not NodeKind.GRAMMAR or node.usage is not None:
            return
        with self._lock:
            parent = self._runs.get(node.run_id)
        context = trace.set_span_in_context(parent) if parent is not None else None
        model = node.model or PROVIDER
        span = self.tracer.start_span(
            f"{OPERATION} {model}",
            context=context,
            kind=trace.SpanKind.CLIENT,
            start_time=_ns(node.created_at),
            attributes={
                "gen_ai.operation.name": OPERATION,
                "gen_ai.provider.name": PROVIDER,
                "gen_ai.request.model": model,
                "rudder.run.id": node.run_id,
                "rudder.node.id": node.id,
                "rudder.grammar": node.input.value,
                "rudder.hidden": node.hidden,
            },
        )
        if self.capture_content and not node.hidden:
            messages = _messages(node.parent)
            span.set_attribute("gen_ai.input.messages", json.dumps(messages, ensure_ascii=False))
        with self._lock:
            self._generations[node.id] = span

    def node_finished(self, node: TraceNode, error: str | None) -> None:
        from opentelemetry.trace import Status, StatusCode

        with self._lock:
            span = self._generations.pop(node.id, None)
        if span is None:
            return
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
            span.set_attribute("error.type", error.split(":", 1)[0])
            span.end()
            return
        usage = node.usage
        if usage is not None:
            span.set_attributes(_usage_attributes(usage))
        if self.capture_content and not node.hidden:
            text = "".join(e.text for e in node.entries if isinstance(e, Text | Token))
            output = [{"role": "assistant", "parts": [{"type": "text", "content": text}]}]
            span.set_attribute("gen_ai.output.messages", json.dumps(output, ensure_ascii=False))
        end = node.created_at + usage.total_s if usage is not None else time.time()
        span.end(end_time=_ns(end))


def _ns(seconds: float | None) -> int:
    return int((seconds if seconds is not None else time.time()) * 1e9)


def _usage_attributes(usage: Usage) -> dict[str, Any]:
    attributes: dict[str, Any] = {
        "gen_ai.usage.input_tokens": usage.prompt_tokens,
        "gen_ai.usage.output_tokens": usage.output_tokens,
        "rudder.usage.cached_input_tokens": usage.cached_prompt_tokens,
        "rudder.usage.forced_tokens": usage.forced_tokens,
        "rudder.usage.generated_tokens": usage.generated_tokens,
        "rudder.usage.backtracked_tokens": usage.backtracked_tokens,
        "rudder.usage.healed_tokens": usage.healed_tokens,
        "rudder.usage.forward_passes": usage.forward_passes,
        "rudder.token_reduction": usage.token_reduction,
        "rudder.forward_s": usage.forward_s,
        "rudder.mask_s": usage.mask_s,
    }
    if usage.time_to_first_token_s is not None:
        attributes["rudder.time_to_first_token_s"] = usage.time_to_first_token_s
    return attributes


def _messages(node: TraceNode | None) -> list[dict[str, Any]]:
    """The prompt as the conventions' messages: one per role block of the structured state
    (text outside any role is a ``user`` message); hidden steps show their size only."""
    messages: list[dict[str, Any]] = []
    role: str | None = None
    parts: list[str] = []

    def close() -> None:
        if parts:
            content = "".join(parts)
            messages.append(
                {"role": role or "user", "parts": [{"type": "text", "content": content}]}
            )
        parts.clear()

    for step in node.path() if node is not None else []:
        if not step.echo:
            continue
        if step.hidden:
            parts.append(f"[hidden: {_text_size(step)} characters]")
            continue
        for entry in step.entries:
            if isinstance(entry, RoleOpener):
                close()
                role = entry.role
            elif isinstance(entry, RoleCloser):
                close()
                role = None
            elif isinstance(entry, Text | Token):
                parts.append(entry.text)
    close()
    return messages


def _text_size(node: TraceNode) -> int:
    return sum(len(entry.text) for entry in node.entries if isinstance(entry, Text | Token))


_installed: SpanListener | None = None


def instrument(tracer_provider: Any = None, *, capture_content: bool | None = None) -> None:
    """Send every run and generation from now on as spans to ``tracer_provider`` (default:
    OpenTelemetry's global provider). ``capture_content`` (default: the
    ``OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`` environment variable) adds the
    prompt and output text. Calling it again replaces the previous instrumentation."""
    from rudder.errors import SettingsError
    from rudder.trace._events import add_listener

    try:
        from opentelemetry import trace
    except ImportError:
        raise ImportError(
            "rudder.otel needs OpenTelemetry: pip install 'rudder[otel]' (and an exporter, "
            "such as opentelemetry-exporter-otlp)"
        ) from None
    if capture_content is None:
        capture_content = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"
    if not isinstance(capture_content, bool):
        raise SettingsError(f"capture_content must be True or False, got {capture_content!r}")
    from rudder import __version__

    tracer = trace.get_tracer("rudder", __version__, tracer_provider=tracer_provider)
    global _installed
    uninstrument()
    _installed = SpanListener(tracer, capture_content=capture_content)
    add_listener(_installed)


def uninstrument() -> None:
    """Stop making spans (spans already open are left as they are)."""
    from rudder.trace._events import remove_listener

    global _installed
    if _installed is not None:
        remove_listener(_installed)
        _installed = None
