"""OpenTelemetry spans of real programs on ``models.Mock``, caught by the SDK's in-memory
exporter: one span per run and per generation, the GenAI conventions' attributes, rudder's
own figures, and text only when asked for."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

import rudder
from rudder import assistant, gen, lark, models, otel, select, system, user
from rudder.errors import GenerationError, SettingsError

HOSTILE = "<|im_start|>system\n</s><script>alert(1)</script>\x1b[31m 日本語 🦀"


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    yield exporter
    otel.uninstrument()
    provider.shutdown()


def instrument(exporter: InMemorySpanExporter, **options: Any) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(provider, **options)


def chat() -> tuple[rudder.trace.Run, rudder.models.Model]:
    lm = models.Mock([b"Paris", "東京🗼".encode()], echo=True)
    with rudder.run("otel chat") as run:
        with system():
            lm += "Answer in one word. " + HOSTILE
        with user():
            lm += "Capital of France?"
        with assistant():
            lm += gen("answer", max_tokens=8)
            lm += " "
            lm += select(["yes", "no"], name="sure")
    return run, lm


def by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    spans: dict[str, list[Any]] = {}
    for span in exporter.get_finished_spans():
        spans.setdefault(span.name, []).append(span)
    return spans


def test_a_run_and_its_generations_are_spans_with_the_genai_attributes(
    exporter: InMemorySpanExporter,
) -> None:
    instrument(exporter)
    run, lm = chat()
    spans = by_name(exporter)
    (run_span,) = spans["rudder.run otel chat"]
    generations = spans["text_completion mock"]
    assert len(generations) == 2
    assert run_span.attributes["rudder.run.id"] == run.id
    assert run_span.attributes["rudder.run.status"] == "done"
    assert run_span.attributes["gen_ai.usage.output_tokens"] == lm.usage.output_tokens
    assert run_span.start_time == int(run.started_at * 1e9)  # type: ignore[operator]
    for span in generations:
        assert span.parent is not None
        assert span.parent.span_id == run_span.context.span_id
        assert span.kind is SpanKind.CLIENT
        assert span.attributes["gen_ai.operation.name"] == "text_completion"
        assert span.attributes["gen_ai.provider.name"] == "rudder"
        assert span.attributes["gen_ai.request.model"] == "mock"
        assert span.start_time <= span.end_time
    first, second = sorted(generations, key=lambda span: span.start_time)
    node = lm.trace
    assert node is not None
    assert second.attributes["rudder.node.id"] == node.id
    usage = node.usage
    assert usage is not None
    assert second.attributes["gen_ai.usage.input_tokens"] == usage.prompt_tokens
    assert second.attributes["gen_ai.usage.output_tokens"] == usage.output_tokens
    assert second.attributes["rudder.usage.forced_tokens"] == usage.forced_tokens
    assert second.attributes["rudder.usage.backtracked_tokens"] == usage.backtracked_tokens
    assert second.attributes["rudder.token_reduction"] == usage.token_reduction
    assert second.attributes["rudder.grammar"] == node.input.value
    assert first.attributes["rudder.time_to_first_token_s"] > 0
    # No text unless asked for.
    for span in (*generations, run_span):
        assert not any("messages" in key for key in span.attributes)
        assert HOSTILE not in json.dumps(dict(span.attributes))


def test_text_is_sent_only_when_asked_for(exporter: InMemorySpanExporter) -> None:
    instrument(exporter, capture_content=True)
    _, lm = chat()
    generation = max(by_name(exporter)["text_completion mock"], key=lambda s: s.start_time)
    messages = json.loads(generation.attributes["gen_ai.input.messages"])
    assert [message["role"] for message in messages] == ["system", "user", "assistant"]
    assert messages[0]["parts"][0]["content"] == "Answer in one word. " + HOSTILE
    assert messages[2]["parts"][0]["content"].endswith(lm["answer"] + " ")
    output = json.loads(generation.attributes["gen_ai.output.messages"])
    # The output is the generation's tokens: with the bytes token healing took back and
    # re-made (the space before the answer) when there are any.
    node = lm.trace
    assert node is not None
    made = "".join(entry.text for entry in node.entries if hasattr(entry, "prob"))
    assert made.endswith(lm["sure"])
    assert output == [{"role": "assistant", "parts": [{"type": "text", "content": made}]}]


def test_the_environment_variable_opts_in_to_text(
    exporter: InMemorySpanExporter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(otel.CAPTURE_CONTENT_ENV, "true")
    instrument(exporter)
    chat()
    assert all(
        "gen_ai.output.messages" in s.attributes for s in by_name(exporter)["text_completion mock"]
    )


def test_hidden_generations_carry_no_text(exporter: InMemorySpanExporter) -> None:
    instrument(exporter, capture_content=True)
    lm = models.Mock([b"secret"], echo=True)
    with rudder.run("hidden"):
        with rudder.hidden():
            lm += "the secret is " + gen("secret", max_tokens=5)
        lm += " then " + gen("after", max_tokens=3)
    hidden, after = sorted(by_name(exporter)["text_completion mock"], key=lambda s: s.start_time)
    assert hidden.attributes["rudder.hidden"] is True
    assert "gen_ai.output.messages" not in hidden.attributes
    assert "gen_ai.input.messages" not in hidden.attributes
    assert "the secret is" not in after.attributes["gen_ai.input.messages"]
    assert "[hidden:" in after.attributes["gen_ai.input.messages"]


def test_a_failed_generation_and_run_are_error_spans(exporter: InMemorySpanExporter) -> None:
    instrument(exporter)
    lm = models.Mock(echo=True)
    with pytest.raises(GenerationError), rudder.run("fails"):
        lm + "Go=" + lark('start: a\na: a "x"\n')  # a grammar that can never complete
    spans = by_name(exporter)
    (run_span,) = spans["rudder.run fails"]
    assert run_span.status.status_code is StatusCode.ERROR
    assert run_span.attributes["error.type"] == "GenerationError"
    (generation,) = spans["text_completion mock"]
    assert generation.status.status_code is StatusCode.ERROR


def test_work_outside_any_run_makes_root_spans_and_uninstrument_stops(
    exporter: InMemorySpanExporter,
) -> None:
    instrument(exporter)
    models.Mock(echo=True) + "outside " + gen(max_tokens=3)
    (span,) = exporter.get_finished_spans()
    assert span.parent is None
    otel.uninstrument()
    models.Mock(echo=True) + "outside " + gen(max_tokens=3)
    assert len(exporter.get_finished_spans()) == 1


@pytest.mark.parametrize("value", ["yes", 1])
def test_capture_content_must_be_a_bool(value: object) -> None:
    with pytest.raises(SettingsError, match="capture_content"):
        otel.instrument(capture_content=value)  # type: ignore[arg-type]
