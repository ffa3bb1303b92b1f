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


#: The special tokens of the SentencePiece-style tokenizer, as Llama 2 and Mistral have them.
SENTENCEPIECE_SPECIAL_TOKENS = ("<unk>", "<s>", "</s>")
#: An added token that is not flagged special, as reasoning models have (Qwen3's ``<think>``).
ADDED_TOKEN = "<think>"


def build_sentencepiece_tokenizer(vocab_size: int = 512) -> Any:
    """A Llama-2-style fast tokenizer trained on the built-in corpus.

    BPE over ``▁``-joined words with byte fallback (``<0x00>`` ... ``<0xFF>``), a prefix
    space at the start of a text, ``<s>`` added at the start of every encoding and ``</s>``
    to end a generation; plus :data:`ADDED_TOKEN`, added but not special. No chat template:
    rudder uses its plain one.
    """
    import json

    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(prepend_scheme="first")
    specials = list(SENTENCEPIECE_SPECIAL_TOKENS)
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False
    )
    backend.train_from_iterator(list(_CORPUS) * 20, trainer)
    # Byte fallback: the 256 byte tokens follow the special tokens, as in Llama 2.
    config = json.loads(backend.to_str())
    trained = sorted(config["model"]["vocab"].items(), key=lambda item: item[1])
    pieces = specials + [f"<0x{b:02X}>" for b in range(256)]
    pieces += [piece for piece, _ in trained if piece not in specials]
    config["model"]["vocab"] = {piece: i for i, piece in enumerate(pieces)}
    config["model"]["byte_fallback"] = True
    backend = Tokenizer.from_str(json.dumps(config))
    backend.decoder = decoders.Sequence(
        [
            decoders.Replace("▁", " "),
            decoders.ByteFallback(),
            decoders.Fuse(),
            decoders.Strip(" ", 1, 0),
        ]
    )
    backend.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)]
    )
    tokenizer = PreTrainedTokenizerFast(  # type: ignore[no-untyped-call]
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>"
    )
    tokenizer.add_tokens([ADDED_TOKEN])
    return tokenizer


def build_tiny_model(
    directory: str | os.PathLike[str],
    architecture: str = "llama",
    *,
    hidden_size: int = 64,
    layers: int = 2,
    seed: int = 0,
    tokenizer_kind: str = "byte-level",
) -> Path:
    """Save a tiny model and its tokenizer under ``directory`` (reused if already there).

    ``tokenizer_kind`` is ``"byte-level"`` (:func:`build_tokenizer`, ChatML) or
    ``"sentencepiece"`` (:func:`build_sentencepiece_tokenizer`, no chat template).
    """
    import torch
    from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig

    path = Path(directory)
    if (path / "config.json").exists() and (path / "tokenizer.json").exists():
        return path
    if tokenizer_kind == "byte-level":
        tokenizer = build_tokenizer()
    elif tokenizer_kind == "sentencepiece":
        tokenizer = build_sentencepiece_tokenizer()
    else:
        raise ValueError(
            f"tokenizer_kind must be 'byte-level' or 'sentencepiece', got {tokenizer_kind!r}"
        )
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
