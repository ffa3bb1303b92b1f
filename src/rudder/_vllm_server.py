"""A vLLM server on 127.0.0.1 from its own environment (the remote tier and benchmark).

``scripts/install-vllm`` makes the environment (the CPU build of vLLM) under
``${RUDDER_TEST_CACHE:-~/.cache/rudder-tests}/vllm``. :func:`serve_vllm` starts the OpenAI
API server on a free port with the guidance structured-output backend, waits for its health
check and sends one warm-up request (the CPU backend compiles kernels on the first one),
then stops the server's whole process group on exit. Not imported by ``import rudder``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path


def vllm_python() -> Path:
    """The Python of the vLLM environment ``scripts/install-vllm`` makes."""
    cache = Path(os.environ.get("RUDDER_TEST_CACHE", Path.home() / ".cache" / "rudder-tests"))
    return cache / "vllm" / "bin" / "python"


class ServerStartError(RuntimeError):
    """The server could not start; the message holds the end of its log."""


@contextlib.contextmanager
def serve_vllm(model: Path, log: Path, *, timeout_s: float = 600.0) -> Iterator[str]:
    """Serve ``model`` (a local directory; the server knows it by that path); yield the
    ``/v1`` base URL."""
    python = vllm_python()
    if not python.exists():
        raise ServerStartError(
            f"no vLLM environment at {python.parent.parent}: run scripts/install-vllm"
        )
    port = _free_port()
    environment = dict(os.environ, VLLM_CPU_KVCACHE_SPACE="1", HF_HUB_OFFLINE="1")
    command = [
        str(python), "-m", "vllm.entrypoints.openai.api_server",
        "--model", str(model), "--host", "127.0.0.1", "--port", str(port),
        "--structured-outputs-config.backend", "guidance", "--enforce-eager",
        "--dtype", "float32", "--max-model-len", "2048", "--max-logprobs", "20",
    ]  # fmt: skip
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, stdout=output, stderr=subprocess.STDOUT, env=environment,
            start_new_session=True,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}/v1"
    try:
        _wait_healthy(process, port, log, timeout_s)
        _warm_up(base_url, str(model))
        yield base_url
    finally:
        _stop(process)


def _wait_healthy(process: subprocess.Popen[bytes], port: int, log: Path, timeout: float) -> None:
    started = time.monotonic()
    while _status(f"http://127.0.0.1:{port}/health") != 200:
        if process.poll() is not None:
            raise ServerStartError(f"vLLM exited with {process.returncode}:\n{_tail(log)}")
        if time.monotonic() - started > timeout:
            raise ServerStartError(f"vLLM did not start in {timeout:.0f} s:\n{_tail(log)}")
        time.sleep(1)


def _stop(process: subprocess.Popen[bytes]) -> None:
    """Stop the server's process group: the API server and its engine core."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            status: int = response.status
            return status
    except (urllib.error.URLError, OSError):
        return 0


def _warm_up(base_url: str, model: str) -> None:
    body = json.dumps({"model": model, "prompt": [1], "max_tokens": 2}).encode()
    request = urllib.request.Request(
        f"{base_url}/completions", body, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        if response.status != 200:
            raise ServerStartError(f"vLLM's warm-up request got {response.status}")


def _tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:])
