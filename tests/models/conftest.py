"""Fixtures of the models tier: tiny transformers models built once per session.

Building a model (training its tokenizer, saving random weights) takes seconds, so each
architecture is built once; loading it is cheap, so every test gets a fresh Model, with a
fresh engine whose counters (``forward_calls``, ``forward_tokens``) start at zero.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rudder import models
from rudder._tiny_models import build_tiny_model
from rudder.models import Model

# Everything this tier loads is local: make any attempt to reach the hub fail at once.
os.environ.setdefault("HF_HUB_OFFLINE", "1")

ARCHITECTURES = ("llama", "gpt2")


@pytest.fixture(autouse=True)
def _one_torch_thread() -> None:
    # CI machines have few cores; one intra-op thread keeps tests from fighting over them.
    import torch

    torch.set_num_threads(1)


def _build(factory: pytest.TempPathFactory, architecture: str) -> Path:
    import torch

    torch.set_num_threads(1)  # session fixtures run before the autouse fixture
    return build_tiny_model(factory.mktemp(architecture), architecture)


@pytest.fixture(scope="session")
def llama_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "llama")


@pytest.fixture(scope="session")
def gpt2_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory, "gpt2")


@pytest.fixture(params=ARCHITECTURES)
def tiny_path(request: pytest.FixtureRequest) -> Path:
    """The saved model of each architecture in turn."""
    path: Path = request.getfixturevalue(f"{request.param}_path")
    return path


@pytest.fixture
def lm(llama_path: Path) -> Model:
    """A fresh Llama-style Model (greedy decoding, the tokenizer's ChatML template)."""
    return models.Transformers(str(llama_path))


@pytest.fixture
def any_lm(tiny_path: Path) -> Model:
    """A fresh Model of each architecture in turn."""
    return models.Transformers(str(tiny_path))


@pytest.fixture
def load(tiny_path: Path) -> Callable[..., Model]:
    """A fresh Model of each architecture in turn, with the settings given
    (``load(seed=7)``); engine-independent tests take this rather than a class."""
    return functools.partial(models.Transformers, str(tiny_path))


@pytest.fixture
def load_llama(llama_path: Path) -> Callable[..., Model]:
    """A fresh Llama-style Model with the settings given."""
    return functools.partial(models.Transformers, str(llama_path))


@pytest.fixture
def hf_tokenizer(llama_path: Path) -> Any:
    """The tiny model's own transformers tokenizer, to compare rendering against."""
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(llama_path))


@pytest.fixture(scope="session")
def sentencepiece_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama with a Llama-2-style tokenizer: ``<s>``, ``</s>``, byte fallback."""
    import torch

    torch.set_num_threads(1)
    directory = tmp_path_factory.mktemp("sentencepiece")
    return build_tiny_model(directory, "llama", tokenizer_kind="sentencepiece")
