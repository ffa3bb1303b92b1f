"""rudder's OpenTelemetry spans received by a real Arize Phoenix server and read back.

``scripts/install-phoenix`` puts Phoenix in a virtual environment of its own under the test
cache (it pins dependencies rudder's own cannot share); the server runs on 127.0.0.1 with a
working folder in ``tmp_path`` and its telemetry off. Spans go over OTLP/HTTP, exactly as a
user's program would send them, and come back through Phoenix's REST API.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import rudder
from rudder import assistant, gen, models, otel, select, user

ROOT = Path(__file__).resolve().parents[2]
DEADLINE_S = 180.0
PROJECT = "rudder-tests"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return json.load(answer)


@pytest.fixture(scope="module")
def phoenix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    installed = subprocess.run(
        ["bash", str(ROOT / "scripts" / "install-phoenix")],
        capture_output=True,
        text=True,
        check=True,
    )
    home = Path(installed.stdout.strip().splitlines()[-1])
    port = free_port()
    folder = tmp_path_factory.mktemp("phoenix")
    environment = {
        **os.environ,
        "PHOENIX_HOST": "127.0.0.1",
        "PHOENIX_PORT": str(port),
        "PHOENIX_GRPC_PORT": str(free_port()),
        "PHOENIX_WORKING_DIR": str(folder),
        "PHOENIX_TELEMETRY_ENABLED": "false",
    }
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [str(home / "bin" / "phoenix"), "serve"], env=environment, stdout=log, stderr=log
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + DEADLINE_S
        while True:
            assert server.poll() is None, (folder / "server.log").read_text()[-4000:]
            assert time.monotonic() < deadline, "Phoenix did not start"
            try:
                with urllib.request.urlopen(f"{url}/healthz", timeout=5) as answer:
                    if answer.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.5)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)
        log.close()


def spans_of(url: str, count: int) -> list[dict[str, Any]]:
    """The project's spans, once Phoenix has stored ``count`` of them."""
    deadline = time.monotonic() + DEADLINE_S
    while True:
        try:
            spans: list[dict[str, Any]] = get_json(f"{url}/v1/projects/{PROJECT}/spans?limit=100")[
                "data"
            ]
        except urllib.error.HTTPError as error:
            error.close()
            spans = []  # the project exists once its first span is stored
        if len(spans) >= count:
            return spans
        assert time.monotonic() < deadline, f"Phoenix holds {len(spans)} spans of {count}"
        time.sleep(0.5)


def test_phoenix_receives_runs_and_generations(phoenix: str) -> None:
    exporter = OTLPSpanExporter(endpoint=f"{phoenix}/v1/traces")
    provider = TracerProvider(resource=Resource.create({"openinference.project.name": PROJECT}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    otel.instrument(provider, capture_content=True)
    try:
        lm = models.Mock([b"Paris", "東京🗼".encode()], echo=True)
        with rudder.run("phoenix chat") as run:
            with user():
                lm += "Capital of France? <script>alert(1)</script>"
            with assistant():
                lm += gen("answer", max_tokens=8)
                lm += " Sure? " + select(["yes", "no"], name="sure")
    finally:
        otel.uninstrument()
        provider.shutdown()

    spans = spans_of(phoenix, 3)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for span in spans:
        by_name.setdefault(span["name"], []).append(span)
    (run_span,) = by_name["rudder.run phoenix chat"]
    generations = by_name["text_completion mock"]
    assert len(generations) == 2
    assert run_span["attributes"]["rudder.run.id"] == run.id
    assert run_span["attributes"]["gen_ai.usage.output_tokens"] == lm.usage.output_tokens
    for span in generations:
        assert span["parent_id"] == run_span["context"]["span_id"]
        assert span["context"]["trace_id"] == run_span["context"]["trace_id"]
        assert span["attributes"]["gen_ai.operation.name"] == "text_completion"
        assert span["attributes"]["gen_ai.provider.name"] == "rudder"
        assert span["attributes"]["gen_ai.request.model"] == "mock"
    last = max(generations, key=lambda span: span["start_time"])
    messages = json.loads(last["attributes"]["gen_ai.input.messages"])
    assert messages[0] == {
        "role": "user",
        "parts": [{"type": "text", "content": "Capital of France? <script>alert(1)</script>"}],
    }
