"""Usage figures of generations on tiny transformers models, against the engine's counters.

The engine counts its forward calls and the tokens it processed; the usage a trace node
records must agree with those counts, and ``cached_prompt_tokens`` must be exactly the
prompt tokens the KV cache spared the model.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

import rudder
from rudder import gen, models, select
from rudder._chat import render_state
from rudder._state import Token
from rudder.engine._prompt import tokenize_prompt
from rudder.models import Model
from rudder.trace import TraceNode, Usage

LONG = "The quick brown fox jumps over the lazy dog. " * 10
FORCED = " then a fixed part, "


def prompt_ids(lm: Model) -> list[int]:
    """The token ids the model is given for ``lm``'s state."""
    return tokenize_prompt(render_state(lm._entries, lm.chat_template), lm.engine.tokenizer).ids


def node_of(lm: Model) -> TraceNode:
    assert lm.trace is not None
    return lm.trace


def usage_of(lm: Model) -> Usage:
    usage = node_of(lm).usage
    assert usage is not None
    return usage


def output_tokens(lm: Model) -> list[Token]:
    return [e for e in node_of(lm).entries if isinstance(e, Token)]


def test_usage_agrees_with_the_engine_and_the_output(any_lm: Model) -> None:
    engine = any_lm.engine
    base = any_lm + "Q:"
    prompt = prompt_ids(base)
    calls = engine.forward_calls
    out = base + (gen("a", regex="[a-z]{2}") + FORCED + gen("b", regex="[0-9]{2}"))
    usage = usage_of(out)
    tokens = output_tokens(out)
    forced = sum(1 for t in tokens if t.prob is None)
    generated = len(tokens) - forced
    assert forced >= len(FORCED.split())
    assert generated >= 2  # one at least for each regex
    assert usage.generations == 1
    assert usage.forward_passes == engine.forward_calls - calls
    assert usage.forced_tokens == forced
    assert usage.generated_tokens == generated
    assert usage.generated_tokens + usage.forced_tokens == len(tokens) == usage.output_tokens
    assert usage.token_reduction == forced / len(tokens)
    assert usage.prompt_tokens == len(prompt)
    assert usage.time_to_first_token_s is not None
    assert 0.0 < usage.time_to_first_token_s <= usage.total_s
    assert out.usage == usage  # the only generation on the path


def test_cached_prompt_tokens_are_the_tokens_the_kv_cache_spared(
    load: Callable[..., Model],
) -> None:
    lm = load()
    engine = lm.engine

    def step(base: Model, grammar: rudder.GrammarNode) -> tuple[Model, int]:
        processed = engine.forward_tokens
        out = base + grammar
        return out, engine.forward_tokens - processed

    def check(out: Model, processed: int) -> Usage:
        """The tokens the model processed are the prompt it kept, less the cached part,
        plus one per later forward pass (each runs the token sampled before it)."""
        usage = usage_of(out)
        # Preconditions of the count: every output token was sampled, each by one pass.
        assert usage.forced_tokens == 0
        assert usage.forward_passes == usage.generated_tokens
        kept = usage.prompt_tokens - usage.healed_tokens
        assert processed == kept - usage.cached_prompt_tokens + usage.forward_passes - 1
        assert 0 <= usage.cached_prompt_tokens <= kept
        assert usage.time_to_first_token_s is not None
        assert usage.time_to_first_token_s <= usage.total_s
        return usage

    with rudder.run("cache") as run:
        first, processed = step(lm + LONG + "Answer: ", gen("a", regex="[a-z]{3}"))
        first_usage = check(first, processed)
        assert first_usage.cached_prompt_tokens == 0  # a fresh engine
        first_kept = first_usage.prompt_tokens - first_usage.healed_tokens
        # Extending the first Model's state: its tokens are in the KV cache.
        second, processed = step(first + " and ", gen("b", regex="[0-9]{3}"))
        cached = check(second, processed).cached_prompt_tokens
        # At least the first prompt is reused (its last token or two may be retokenized).
        assert cached >= first_kept - 2 > 100
        # Without the cache the same step recomputes the whole prompt.
        engine.reset_cache()
        again, processed = step(first + " and ", gen("b", regex="[0-9]{3}"))
        assert check(again, processed).cached_prompt_tokens == 0
        assert str(again) == str(second)
    assert run.usage == usage_of(first) + usage_of(second) + usage_of(again)
    assert second.usage == usage_of(first) + usage_of(second)
    assert run.usage.cached_prompt_tokens == cached


def test_usage_of_a_program_sums_its_generations(lm: Model) -> None:
    engine = lm.engine
    calls = engine.forward_calls
    out = lm + "Pick: " + select(["alpha", "beta"], name="x")
    out += " Then: " + gen("y", regex="[a-z]{4}")
    out += " Last: " + gen("z", max_tokens=3)
    nodes = [n for n in node_of(out).path() if n.usage is not None]
    assert len(nodes) == 3
    total = out.usage
    assert total.generations == 3
    assert total.forward_passes == engine.forward_calls - calls
    tokens = [e for n in nodes for e in n.entries if isinstance(e, Token)]
    assert total.output_tokens == len(tokens)
    assert total.forced_tokens == sum(1 for t in tokens if t.prob is None)
    assert total.time_to_first_token_s == nodes[0].usage.time_to_first_token_s  # type: ignore[union-attr]


def test_a_generation_that_fills_the_context_counts_what_it_made(llama_path: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    hf_model = AutoModelForCausalLM.from_pretrained(str(llama_path))
    hf_model.config.max_position_embeddings = 24  # the engine's context length
    lm = models.Transformers(hf_model, tokenizer=AutoTokenizer.from_pretrained(str(llama_path)))
    lm += "Count: "
    prompt = len(prompt_ids(lm))
    full = pytest.raises(rudder.errors.GenerationError, match=r"context is full \(24 tokens\)")
    with full, rudder.run("full") as run:
        lm + gen("x", regex="[a-z ]{200}")
    usage = run.usage
    assert usage.generations == 1
    assert usage.prompt_tokens == prompt
    # Every position up to the limit was filled, with tokens the model ran for.
    assert usage.output_tokens == 24 - prompt + usage.healed_tokens
    assert usage.forward_passes == lm.engine.forward_calls > 0
    assert lm.usage == Usage()
