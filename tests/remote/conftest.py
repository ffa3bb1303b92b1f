"""The remote tier: rudder against a real vLLM server on 127.0.0.1.

The server runs from its own virtual environment (``scripts/install-vllm`` makes it under
``${RUDDER_TEST_CACHE:-~/.cache/rudder-tests}/vllm``) with the CPU build of vLLM, the
guidance structured-output backend and a tiny Llama-style model built here: hidden size 128
over 4 heads, since vLLM's CPU attention needs a head size of 32 or more. It starts once per
session (a minute or more on a busy machine) and gets one warm-up request, which compiles
its kernels (see :mod:`rudder._vllm_server`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from rudder._tiny_models import build_tiny_model
from rudder._vllm_server import ServerStartError, serve_vllm, vllm_python

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass(frozen=True)
class Server:
    base_url: str
    model: str  # the name the server knows: the model's path


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny128"), hidden_size=128)


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not vllm_python().exists():
        pytest.fail(
            f"no vLLM environment at {vllm_python().parent.parent}: run scripts/install-vllm "
            "(the remote tier needs it; scripts/install-test-tools runs it)"
        )
    log = tmp_path_factory.mktemp("vllm") / "server.log"
    started = time.monotonic()
    try:
        with serve_vllm(tiny_model, log) as base_url:
            print(f"\nvLLM started and warmed up in {time.monotonic() - started:.1f} s")
            yield Server(base_url, str(tiny_model))
    except ServerStartError as error:
        pytest.fail(str(error))
