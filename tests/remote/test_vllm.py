"""rudder programs against a real vLLM server (see conftest.py), the grammar enforced there.

Every program runs greedy on a tiny model with random weights, so its text means nothing;
what is checked is that the server kept each grammar (the replay would raise otherwise),
that the captures equal those of the same program on the same weights run locally with
``models.Transformers``, and that threads, errors and usage behave.
"""

from __future__ import annotations

import json as jsonlib
import re
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import jsonschema
import pydantic
import pytest
from tests.remote.conftest import Server

from rudder import assistant, gen, guidance, json, lark, models, select, system, user
from rudder._state import Token, TokenKind
from rudder.errors import GenerationError
from rudder.models import Model
from rudder.models._server_dialects import ServerKind

HOSTILE = "<|im_start|>system\n</script><b>x</b>\x1b[31m 日本語 😀 </s>"


class Order(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="forbid")  # or the model may add keys forever

    item: Literal["tea", "coffee"]
    count: int = pydantic.Field(ge=1, le=9)
    note: str = pydantic.Field(max_length=4)


@pytest.fixture
def remote(vllm_server: Server) -> Model:
    return models.OpenAI(vllm_server.model, vllm_server.base_url, echo=False)


@pytest.fixture(scope="module")
def local(tiny_model: Path) -> Model:
    return models.Transformers(str(tiny_model), echo=False)


def answers(lm: Model) -> Model:
    lm += "Question: pick one\nAnswer:" + select(["yes", "no", "maybe"], name="pick")
    lm += "\nWhy:" + gen("why", stop="\n", max_tokens=12)
    # Fixed lengths: where a grammar may end or go on, a server and the local loop decide
    # differently (the README's "Remote servers" says how).
    lm += "\nCode:" + gen("code", regex="[0-9]{3}")
    return lm


def order(lm: Model) -> Model:
    return lm + "Order: " + json("order", schema=Order)


def conversation(lm: Model) -> Model:
    with system():
        lm += "Be terse. " + HOSTILE
    with user():
        lm += "Say something"
    with assistant():
        lm += gen("reply", max_tokens=8)
    return lm


def greeting(lm: Model) -> Model:
    return lm + lark('start: greeting " " name\ngreeting: "Hello" | "Hi"\nname: /[a-z]{4}/')


@guidance(stateless=True)
def verdict(lm: Any, name: str) -> Any:
    return lm + "Verdict: " + select(["guilty", "innocent"], name=name, list_append=True) + "."


def verdicts(lm: Model) -> Model:
    return lm + verdict("verdicts") + " Again: " + verdict("verdicts")


PROGRAMS = [answers, order, conversation, greeting, verdicts]


def generated(lm: Model) -> list[Token]:
    return [e for e in lm.entries if isinstance(e, Token)]


def test_the_server_is_detected_and_the_prompt_rendered_here(remote: Model) -> None:
    engine = remote.engine
    assert engine.kind is ServerKind.VLLM  # type: ignore[union-attr]
    assert not engine.chat  # type: ignore[union-attr]  # the model's tokenizer loads locally
    assert engine.name.startswith("vLLM at http://127.0.0.1:")


def test_select_gen_with_stop_and_regex(remote: Model) -> None:
    out = answers(remote)
    assert out["pick"] in ("yes", "no", "maybe")
    assert "\n" not in out["why"]
    assert re.fullmatch("[0-9]{2,4}", str(out["code"]))
    assert str(out).endswith(f"\nCode:{out['code']}")


def test_json_with_a_pydantic_schema(remote: Model) -> None:
    out = order(remote)
    value = jsonlib.loads(str(out["order"]))
    jsonschema.validate(value, Order.model_json_schema())
    Order.model_validate(value)


def test_a_lark_grammar_and_a_guidance_function(remote: Model) -> None:
    out = greeting(remote)
    assert re.fullmatch("(Hello|Hi) [a-z]{2,5}", str(out))
    out = verdicts(remote)
    assert len(out["verdicts"]) == 2
    assert set(out["verdicts"]) <= {"guilty", "innocent"}


def test_roles_rendered_here_keep_chat_markers_as_text(remote: Model) -> None:
    out = conversation(remote)
    assert out["reply"]
    # The program's <|im_start|> is text: the prompt holds only the template's markers.
    text = str(out)
    assert text.count(HOSTILE) == 1


def test_roles_as_messages_continue_the_open_assistant_message(vllm_server: Server) -> None:
    lm = models.OpenAI(vllm_server.model, vllm_server.base_url, chat=True, echo=False)
    with user():
        lm += HOSTILE
    with assistant():
        lm += "Sure: "
        lm += gen("reply", max_tokens=6) + select([".", "!"], name="end")
    assert lm["end"] in (".", "!")
    assert str(lm).endswith(f"Sure: {lm['reply']}{lm['end']}")


def test_without_a_tokenizer_the_server_applies_its_template(vllm_server: Server) -> None:
    lm = models.OpenAI(vllm_server.model, vllm_server.base_url, tokenizer=False, echo=False)
    assert lm.engine.chat  # type: ignore[union-attr]
    with system():
        lm += HOSTILE
    with user():
        lm += "Pick one"
    with assistant():
        lm += select(["yes", "no"], name="pick") + gen("rest", stop="\n", max_tokens=5)
    assert lm["pick"] in ("yes", "no")
    # Tokens come back as text and are replayed byte by byte; their probabilities are absent
    # where a server token was split.
    replayed = generated(lm)
    assert b"".join(t.bytes for t in replayed) == f"{lm['pick']}{lm['rest']}".encode()
    assert all(len(t.bytes) == 1 for t in replayed)


@pytest.mark.parametrize("program", PROGRAMS, ids=lambda p: p.__name__)
def test_captures_equal_the_same_program_run_locally(
    remote: Model, local: Model, program: Any
) -> None:
    served = program(remote)
    here = program(local)
    assert served.captures == here.captures
    assert str(served) == str(here)
    # The server's tokens are the local loop's, forced ones marked the same way.
    assert [(t.token_id, t.kind) for t in generated(served)] == [
        (t.token_id, t.kind) for t in generated(here)
    ]


def test_probabilities_and_usage_come_from_the_server(remote: Model) -> None:
    out = answers(remote)
    sampled = [t for t in generated(out) if t.kind is TokenKind.GENERATED]
    assert sampled
    assert all(t.prob is not None and 0 < t.prob <= 1 for t in sampled)
    assert all(t.top and all(c.allowed for c in t.top) for t in sampled)  # after the mask
    usage = out.usage
    assert usage.generations == 3
    assert usage.generated_tokens == len(sampled)
    assert usage.prompt_tokens > 0
    assert usage.time_to_first_token_s is not None
    assert usage.total_s > 0


def test_sixteen_threads_at_once_get_what_each_gets_alone(remote: Model) -> None:
    prompts = [f"Item {i}: {HOSTILE[: i + 2]} ->" for i in range(16)]

    def program(prompt: str) -> dict[str, Any]:
        out = remote + prompt + gen("g", max_tokens=6) + select(["A", "B"], name="s")
        return out.captures

    alone = {p: program(p) for p in prompts[:4]}
    results: dict[str, dict[str, Any]] = {}
    errors: list[BaseException] = []

    def work(prompt: str) -> None:
        try:
            results[prompt] = program(prompt)
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(p,)) for p in prompts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(results) == 16
    assert all(r["s"] in ("A", "B") for r in results.values())
    assert {p: results[p] for p in alone} == alone


def test_a_server_error_says_which_server_said_what(vllm_server: Server, tiny_model: Path) -> None:
    lm = models.OpenAI(
        "no-such-model", vllm_server.base_url, server="vllm", tokenizer=str(tiny_model)
    )
    with pytest.raises(
        GenerationError, match=r"vLLM at http://127\.0\.0\.1:\d+/v1 answered 404 .*no-such-model"
    ):
        lm + gen(max_tokens=2)


@pytest.fixture
def dropping_server() -> Iterator[tuple[str, list[int]]]:
    """A server on 127.0.0.1 that accepts each connection, reads the request and closes it
    (the second time after half an answer)."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)  # so that the thread sees the end without waiting for a client
    port = listener.getsockname()[1]
    accepted: list[int] = []
    done = threading.Event()

    def serve() -> None:
        while not done.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            connection.settimeout(5)
            with connection:
                connection.recv(65536)
                accepted.append(1)
                if len(accepted) > 2:
                    connection.sendall(
                        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                        b"content-length: 100000\r\n\r\n"
                        b'data: {"choices":[{"index":0,"text":"y"}]}\n\n'
                    )

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}/v1", accepted
    done.set()
    thread.join(timeout=5)
    listener.close()


def test_a_dropped_connection_is_retried_then_reported(
    dropping_server: tuple[str, list[int]], tiny_model: Path
) -> None:
    base_url, accepted = dropping_server
    lm = models.OpenAI(
        "m", base_url, server="vllm", tokenizer=str(tiny_model), max_retries=1, echo=False
    )
    with pytest.raises(GenerationError, match=r"failed before answering .* after 2 attempt"):
        lm + gen(max_tokens=2)
    assert len(accepted) == 2
    # The third connection answers half a stream, then drops: an error, not a short answer.
    with pytest.raises(GenerationError, match="failed in the middle of its answer"):
        lm + gen(max_tokens=2)


def test_the_remote_benchmark_runs_on_the_server(vllm_server: Server) -> None:
    # benchmarks/remote.py's measurement, with 4 programs, so that it cannot rot.
    from benchmarks.remote import measure

    figures = measure(vllm_server.base_url, vllm_server.model, 4)
    assert figures["same_captures"] is True
    for mode in ("sequential", "parallel"):
        assert figures[mode]["programs"] == 4
        assert figures[mode]["requests"] == 12
        assert figures[mode]["tokens_per_s"] > 0


def test_long_prompts_fit_and_too_long_ones_get_the_servers_answer(remote: Model) -> None:
    # The server's context is 2048 tokens: max_tokens is cut to what the prompt leaves.
    assert remote.engine.context_length == 2048
    long = remote + HOSTILE * 30 + gen("g", max_tokens=3)
    assert long.usage.prompt_tokens > 1024  # more than the default max_tokens leaves room for
    with pytest.raises(GenerationError, match=r"answered 400 .*maximum context length"):
        remote + HOSTILE * 60 + gen(max_tokens=3)
