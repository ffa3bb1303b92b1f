"""What both workers measure with: forward counting, timing, memory, llguidance's floor.

Imported by both workers, so nothing here imports rudder or guidance; torch and llguidance
are imported where used (each worker has its own versions).
"""

from __future__ import annotations

import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any


class ForwardCounter:
    """Counts and times the calls of a torch module's ``forward`` (wrapped on the instance).

    Both libraries call the Hugging Face model as ``model(...)``, which goes through the
    instance's ``forward``: the count is the number of model passes, whoever makes them.
    """

    def __init__(self, module: Any) -> None:
        self.calls = 0
        self.seconds = 0.0
        original = module.forward

        def forward(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - started
                self.calls += 1

        module.forward = forward


def timed(counter: ForwardCounter, action: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    """Run ``action``; its wall time, and the model passes and seconds spent in them."""
    gc.collect()
    calls, seconds = counter.calls, counter.seconds
    started = time.perf_counter()
    value = action()
    wall = time.perf_counter() - started
    figures = {
        "wall_s": wall,
        "forward_s": counter.seconds - seconds,
        "forward_calls": counter.calls - calls,
    }
    return value, figures


def peak_python_memory(action: Callable[[], Any]) -> tuple[Any, int]:
    """Run ``action`` under tracemalloc; the peak of Python allocations above the start, in bytes.

    Tensors (the KV cache) are allocated outside Python's allocator and are not counted.
    """
    gc.collect()
    tracemalloc.start()
    try:
        baseline = tracemalloc.get_traced_memory()[0]
        value = action()
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return value, peak - baseline


def mask_floor(hf_tokenizer: Any, grammar: dict[str, Any], text: str) -> dict[str, float]:
    """llguidance alone: a matcher over the same tokenizer, then a mask and a consume per token.

    ``grammar`` is ``{"regex": pattern}`` or ``{"json": schema, "separators": [item, key]}``;
    ``text`` is a generation's output, tokenized as the tokenizer does it.
    """
    import llguidance
    import llguidance.hf
    import llguidance.numpy

    tokenizer = llguidance.hf.from_tokenizer(hf_tokenizer)
    if "regex" in grammar:
        source = llguidance.LLMatcher.grammar_from_regex(grammar["regex"])
    else:
        item, key = grammar["separators"]
        options = {"item_separator": item, "key_separator": key, "whitespace_flexible": False}
        source = llguidance.LLMatcher.grammar_from_json_schema(grammar["json"], defaults=options)
    ids = hf_tokenizer.encode(text, add_special_tokens=False)
    bitmask = llguidance.numpy.allocate_token_bitmask(1, tokenizer.vocab_size)
    started = time.perf_counter()
    matcher = llguidance.LLMatcher(tokenizer, source)  # the grammar's compilation counts too
    for token in ids:
        llguidance.numpy.fill_next_token_bitmask(matcher, bitmask)
        matcher.consume_token(token)
    elapsed = time.perf_counter() - started
    if matcher.is_error():
        raise RuntimeError(f"llguidance rejected the output: {matcher.get_error()}")
    return {"tokens": len(ids), "ms_per_token": elapsed / len(ids) * 1e3}
