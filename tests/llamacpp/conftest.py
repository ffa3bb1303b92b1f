"""Fixtures of the llama.cpp tier: the tiny local Llama, written as a GGUF file once per session.

The fixtures have the names the Transformers tier's tests take (``lm``, ``any_lm``, ``load``,
``load_llama``, ``hf_tokenizer``), so those tests run here unchanged on llama.cpp. llama_cpp
must be installed (``scripts/install-llama-cpp``): without it every test fails, none skips.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rudder import models
from rudder._tiny_gguf import write_tiny_gguf
from rudder._tiny_models import build_tiny_model
from rudder.models import Model

os.environ.setdefault("HF_HUB_OFFLINE", "1")

#: llama.cpp's settings for every Model of this tier: the tiny model's own context length
#: (as transformers has it) and one thread, as the Transformers tier runs torch.
SETTINGS: dict[str, Any] = {"n_ctx": 2048, "n_threads": 1, "n_threads_batch": 1}


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    # The tier compares against transformers on the same weights.
    import torch

    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def llama_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    torch.set_num_threads(1)  # session fixtures run before the autouse fixture
    return build_tiny_model(tmp_path_factory.mktemp("llama"), "llama")


@pytest.fixture(scope="session")
def gguf_path(llama_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_tiny_gguf(llama_path, tmp_path_factory.mktemp("gguf") / "tiny-llama.gguf")


@pytest.fixture
def load(gguf_path: Path) -> Callable[..., Model]:
    """A fresh llama.cpp Model of the tiny Llama, with the settings given."""
    return functools.partial(models.LlamaCpp, str(gguf_path), **SETTINGS)


@pytest.fixture
def load_llama(load: Callable[..., Model]) -> Callable[..., Model]:
    return load


@pytest.fixture
def lm(load: Callable[..., Model]) -> Model:
    """A fresh Model (greedy decoding, the GGUF's ChatML template)."""
    return load()


@pytest.fixture
def any_lm(lm: Model) -> Model:
    return lm


@pytest.fixture
def hf_tokenizer(llama_path: Path) -> Any:
    """The tiny model's own transformers tokenizer, to compare rendering against."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(llama_path))
