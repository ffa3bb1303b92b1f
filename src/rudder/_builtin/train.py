"""Train rudder's built-in model: ``python -m rudder._builtin.train``.

Generates the corpus (:mod:`rudder._builtin._corpus`) from a seed, trains a byte-level BPE
tokenizer on it (ChatML special tokens and template, ``<|im_end|>`` ending a generation),
then a small Llama-style causal LM with a plain torch loop (AdamW, linear warm-up then
cosine decay; the loss counts the assistant's answers), and saves both with
``save_pretrained`` (safetensors in float16) together with ``training.json`` (steps, final
loss, seconds, seed). The same seed and thread count give the same model.

Options: ``--output DIR`` (default: the package's ``model/`` folder), ``--steps N``,
``--small`` (a reduced run of a few seconds, for tests), ``--seed S``, ``--threads T``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rudder._builtin import MODEL_DIR, TRAINING_FILE
from rudder._builtin._corpus import Conversation, conversations, texts
from rudder._tiny_models import train_tokenizer


@dataclass(frozen=True)
class Plan:
    """The sizes of one training run."""

    conversations: int
    vocab_size: int
    hidden_size: int
    layers: int
    heads: int
    kv_heads: int
    intermediate_size: int
    steps: int
    batch_size: int
    learning_rate: float
    warmup_steps: int
    context_length: int = 1024


FULL = Plan(
    conversations=20_000,
    vocab_size=2048,
    hidden_size=128,
    layers=4,
    heads=4,
    kv_heads=2,
    intermediate_size=384,
    steps=1200,
    batch_size=32,
    learning_rate=3e-3,
    warmup_steps=100,
)
#: A few seconds: the same code path at a size that only shows it works.
SMALL = Plan(
    conversations=300,
    vocab_size=400,
    hidden_size=32,
    layers=1,
    heads=2,
    kv_heads=1,
    intermediate_size=64,
    steps=20,
    batch_size=8,
    learning_rate=3e-3,
    warmup_steps=2,
)


def learning_rate_factor(step: int, plan: Plan) -> float:
    """Linear warm-up, then cosine decay to a tenth of the peak."""
    if step < plan.warmup_steps:
        return (step + 1) / plan.warmup_steps
    progress = (step - plan.warmup_steps) / max(1, plan.steps - plan.warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


def encode_corpus(tokenizer: Any, corpus: Sequence[Conversation]) -> list[list[int]]:
    """Each conversation as the token ids of its ChatML rendering."""
    rendered = [tokenizer.apply_chat_template(c, tokenize=False) for c in corpus]
    encoded: list[list[int]] = tokenizer(rendered, add_special_tokens=False)["input_ids"]
    return encoded


def answer_mask(ids: Sequence[int], tokenizer: Any) -> list[bool]:
    """Which tokens the loss counts: the assistant's answers and the ``<|im_end|>`` after each.

    The system prompt and the questions are context, not targets: predicting which city a
    user asks about is noise that would drown the facts the answers carry.
    """
    opener = tokenizer.convert_tokens_to_ids("<|im_start|>")
    closer = tokenizer.convert_tokens_to_ids("<|im_end|>")
    header = tokenizer("assistant\n", add_special_tokens=False)["input_ids"]
    counted = [False] * len(ids)
    index = 0
    while index < len(ids):
        if ids[index] == opener and list(ids[index + 1 : index + 1 + len(header)]) == header:
            index += 1 + len(header)
            while index < len(ids):
                counted[index] = True
                index += 1
                if ids[index - 1] == closer:
                    break
        else:
            index += 1
    return counted


def batches(lengths: Sequence[int], size: int, seed: int) -> Iterator[list[int]]:
    """Endless batches of indices, each of conversations of about the same length.

    Every pass shuffles the corpus, sorts it by length (ties stay shuffled), cuts it into
    batches and shuffles their order: little padding, and every conversation once a pass.
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    while True:
        shuffled = torch.randperm(len(lengths), generator=generator).tolist()
        ordered = sorted(shuffled, key=lambda index: lengths[index])
        chunks = [ordered[start : start + size] for start in range(0, len(ordered), size)]
        for chunk in torch.randperm(len(chunks), generator=generator).tolist():
            yield chunks[chunk]


def _batch(
    sequences: list[list[int]], counted: list[list[bool]], pad_id: int
) -> tuple[Any, Any, Any]:
    """Right-padded ids, attention mask and labels (-100 where padded or not counted)."""
    import torch

    width = max(len(ids) for ids in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    targets = torch.zeros((len(sequences), width), dtype=torch.bool)
    for row, sequence in enumerate(sequences):
        ids[row, : len(sequence)] = torch.tensor(sequence)
        mask[row, : len(sequence)] = 1
        targets[row, : len(sequence)] = torch.tensor(counted[row])
    labels = ids.masked_fill(~targets, -100)
    return ids, mask, labels


def build_model(plan: Plan, tokenizer: Any) -> Any:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=plan.hidden_size,
        intermediate_size=plan.intermediate_size,
        num_hidden_layers=plan.layers,
        num_attention_heads=plan.heads,
        num_key_value_heads=plan.kv_heads,
        max_position_embeddings=plan.context_length,
        tie_word_embeddings=True,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    return LlamaForCausalLM(config)


def train(
    output: Path,
    plan: Plan,
    *,
    seed: int = 0,
    threads: int = 1,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train a model by ``plan`` and save it in ``output``; returns what ``training.json`` holds."""
    import torch
    from transformers.utils import logging as transformers_logging

    started = time.perf_counter()
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    corpus = list(conversations(seed, plan.conversations))
    # A quarter of the corpus has about the same word frequencies, at a quarter of the time.
    sample = corpus[: max(len(corpus) // 4, 1)]
    tokenizer = train_tokenizer(
        (text for conversation in sample for text in texts(conversation)),
        plan.vocab_size,
        eos_token="<|im_end|>",
    )
    encoded = encode_corpus(tokenizer, corpus)
    counted = [answer_mask(ids, tokenizer) for ids in encoded]
    tokens = sum(len(ids) for ids in encoded)
    log(f"corpus: {len(corpus)} conversations, {tokens} tokens, vocabulary {len(tokenizer)}")
    model = build_model(plan, tokenizer)
    parameters = sum(p.numel() for p in model.parameters())
    log(f"model: {parameters} parameters")
    optimizer = torch.optim.AdamW(model.parameters(), lr=plan.learning_rate, weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: learning_rate_factor(step, plan)
    )
    picks = batches([len(ids) for ids in encoded], plan.batch_size, seed)
    model.train()
    recent: list[float] = []
    for step in range(plan.steps):
        batch = next(picks)
        ids, mask, labels = _batch(
            [encoded[i] for i in batch], [counted[i] for i in batch], tokenizer.pad_token_id
        )
        loss = model(input_ids=ids, attention_mask=mask, labels=labels).loss
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        schedule.step()
        recent = [*recent[-19:], loss.item()]
        if step % 10 == 0 or step == plan.steps - 1:
            elapsed = time.perf_counter() - started
            mean = sum(recent) / len(recent)
            log(f"step {step + 1}/{plan.steps}  loss {mean:.4f}  {elapsed:.0f} s")
    seconds = time.perf_counter() - started
    model.eval()
    output.mkdir(parents=True, exist_ok=True)
    # Half precision halves the files; the config says float32, so loading with
    # dtype="auto" computes in float32, which CPUs run fastest.
    model.to(torch.float16).save_pretrained(output)
    config_path = output / "config.json"
    config = json.loads(config_path.read_text())
    config["dtype"] = config["torch_dtype"] = "float32"  # the second for transformers < 4.56
    config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    tokenizer.save_pretrained(output)
    # transformers 5 names the class TokenizersBackend, which 4.x cannot load; both know
    # PreTrainedTokenizerFast.
    tokenizer_config_path = output / "tokenizer_config.json"
    tokenizer_config = json.loads(tokenizer_config_path.read_text())
    tokenizer_config["tokenizer_class"] = "PreTrainedTokenizerFast"
    tokenizer_config_path.write_text(json.dumps(tokenizer_config, indent=2) + "\n")
    metadata = {
        "seed": seed,
        "steps": plan.steps,
        "final_loss": round(sum(recent) / len(recent), 4),
        "training_seconds": round(seconds, 1),
        "torch_threads": threads,
        "parameters": parameters,
        "corpus_tokens": tokens,
        "plan": dataclasses.asdict(plan),
    }
    (output / TRAINING_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
    log(f"saved to {output} in {seconds:.0f} s (final loss {metadata['final_loss']})")
    return metadata


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rudder._builtin.train",
        description="Train rudder's built-in model on its generated corpus.",
    )
    parser.add_argument("--output", type=Path, default=MODEL_DIR, help="where to save it")
    parser.add_argument("--steps", type=int, help="optimiser steps (default: the plan's)")
    parser.add_argument("--small", action="store_true", help="a reduced run (seconds)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch threads (default: 1; a second thread helps only on an idle machine, and "
        "a different count gives slightly different weights)",
    )
    args = parser.parse_args(argv)
    plan = SMALL if args.small else FULL
    if args.steps is not None:
        if args.steps < 1:
            parser.error("--steps must be at least 1")
        plan = dataclasses.replace(
            plan, steps=args.steps, warmup_steps=min(plan.warmup_steps, args.steps)
        )
    train(
        args.output,
        plan,
        seed=args.seed,
        threads=args.threads,
        log=lambda line: print(line, flush=True),
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
