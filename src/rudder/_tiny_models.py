"""Tiny Hugging Face models built locally, for tests and benchmarks (no downloads).

``build_tiny_model(directory, architecture)`` trains a byte-level BPE tokenizer with the
``tokenizers`` library on a small built-in corpus, gives it a ChatML chat template, builds a
Llama-style or GPT-2-style causal LM from a config with seeded random weights, and saves
both with ``save_pretrained``, so they load through the same code path as any hub model.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rudder._chat import CHATML

_CORPUS = (
    "The quick brown fox jumps over the lazy dog.",
    "Paris is the capital of France. Berlin is the capital of Germany.",
    "Is Paris in France? Yes, it is. Is Rome in Spain? No, it is not.",
    "Hello world! How are you today? I am fine, thank you.",
    "A list: one, two, three, four, five, six, seven, eight, nine, ten.",
    '{"name": "Ada", "age": 36, "city": "London", "tags": ["math", "code"]}',
    "Visit http://www.example.com or https://example.org for more.",
    "Numbers like 1, 12, 123, 42, 3.14 and -7 appear in text.",
    "def add(a, b):\n    return a + b\n",
    "Question: what is two plus two?\nAnswer: four.\n",
)
SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")


def train_tokenizer(
    texts: Iterable[str], vocab_size: int, *, eos_token: str = "<|endoftext|>"
) -> Any:
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``texts``, with ChatML.

    Its special tokens are :data:`SPECIAL_TOKENS`; ``<|endoftext|>`` starts and pads
    sequences, ``eos_token`` (one of them) ends a generation.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    if eos_token not in SPECIAL_TOKENS:
        raise ValueError(f"eos_token must be one of {SPECIAL_TOKENS}, got {eos_token!r}")
    backend = Tokenizer(models.BPE())
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    backend.train_from_iterator(texts, trainer)
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend,
        eos_token=eos_token,
        bos_token="<|endoftext|>",
        pad_token="<|endoftext|>",
    )
    tokenizer.chat_template = CHATML
    return tokenizer


def build_tokenizer(vocab_size: int = 512) -> Any:
    """A fast tokenizer (``PreTrainedTokenizerFast``) trained on the built-in corpus."""
    return train_tokenizer(list(_CORPUS) * 20, vocab_size)


def build_tiny_model(
    directory: str | os.PathLike[str],
    architecture: str = "llama",
    *,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
) -> Path:
    """Save a tiny model and its tokenizer under ``directory`` (reused if already there)."""
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    path = Path(directory)
    if (path / "config.json").exists() and (path / "tokenizer.json").exists():
        return path
    tokenizer = build_tokenizer()
    vocab = len(tokenizer)
    special = {
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    if architecture == "llama":
        config: object = LlamaConfig(
            vocab_size=vocab,
            hidden_size=hidden_size,
            intermediate_size=hidden_size * 2,
            num_hidden_layers=layers,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=2048,
            **special,
        )
    elif architecture == "gpt2":
        config = GPT2Config(
            vocab_size=vocab, n_embd=hidden_size, n_layer=layers, n_head=4, n_positions=2048,
            **special,
        )  # fmt: skip
    else:
        raise ValueError(f"architecture must be 'llama' or 'gpt2', got {architecture!r}")
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_config(config)  # type: ignore[no-untyped-call]
    path.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(path)
    tokenizer.save_pretrained(path)
    return path
