"""Each grammar's llguidance interpreter is built once per tokenizer and copied for every
generation: the copies behave as newly built ones, the kept ones stay bounded, and a
grammar llguidance rejects is an error that keeps nothing."""

from __future__ import annotations

import threading
from typing import Any

import llguidance
import pytest

from rudder import gen, models, select
from rudder._grammar._lark import compile_grammar
from rudder.engine import _interpreters
from rudder.engine._interpreters import KEPT, FreshInterpreters
from rudder.errors import GrammarError


def _tokenizer() -> Any:
    return models.Mock(echo=False).engine.tokenizer


def _grammar(node: Any) -> str:
    return compile_grammar(node).llguidance


def _built(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The grammars llguidance is asked to build from now on."""
    built: list[str] = []
    real = llguidance.LLInterpreter

    def counting(tokenizer: Any, grammar: str, **options: Any) -> Any:
        built.append(grammar)
        return real(tokenizer, grammar, **options)

    monkeypatch.setattr(_interpreters.llguidance, "LLInterpreter", counting)
    return built


def _steps(interpreter: Any, prompt: list[int]) -> tuple[list[int], bytes | None]:
    processed = interpreter.process_prompt(prompt)
    mask, _ = interpreter.compute_mask()
    return processed, mask


def test_a_copy_behaves_as_a_newly_built_interpreter() -> None:
    tokenizer = _tokenizer()
    grammar = _grammar(gen(regex="[a-z]{3}<\\|im_start\\|>日本", name="x"))
    cache = FreshInterpreters(tokenizer.ll)
    prompt = tokenizer.encode("Say: ", special=False)
    first = cache.fresh(grammar)
    expected = _steps(first, prompt)  # the first copy has moved on ...
    second = cache.fresh(grammar)  # ... the next one starts where a new one does
    assert second is not first
    assert _steps(second, prompt) == expected
    built = llguidance.LLInterpreter(
        tokenizer.ll, grammar, enable_backtrack=True, enable_ff_tokens=True, log_level=0
    )
    assert _steps(built, prompt) == expected


def test_a_grammar_is_built_once_however_many_generations_run_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    lm = models.Mock(b"<s>abc", echo=False)
    built = _built(monkeypatch)
    results = [str(lm + "Pick: " + select(["abc", "abd"], name="x")) for _ in range(5)]
    assert results == ["Pick: abc"] * 5
    assert len(built) == 1


def test_the_kept_interpreters_are_bounded_and_the_latest_used_are_kept(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    cache = FreshInterpreters(_tokenizer().ll)
    grammars = [_grammar(gen(regex=f"a{{{n}}}")) for n in range(1, KEPT + 6)]
    built = _built(monkeypatch)
    for grammar in grammars:
        cache.fresh(grammar)
    assert len(cache) == KEPT
    cache.fresh(grammars[-1])  # kept: not built again
    assert len(built) == len(grammars)
    cache.fresh(grammars[0])  # the oldest was dropped: built again
    assert len(built) == len(grammars) + 1
    assert len(cache) == KEPT


def test_a_rejected_grammar_is_an_error_and_nothing_is_kept() -> None:
    cache = FreshInterpreters(_tokenizer().ll)
    with pytest.raises(GrammarError, match="llguidance rejected the grammar"):
        cache.fresh('{"grammars": [{"lark_grammar": "start: <nonsense"}]}')
    assert len(cache) == 0


def test_threads_copy_one_kept_interpreter_at_once() -> None:
    tokenizer = _tokenizer()
    grammar = _grammar(gen(regex="[0-9]{4}"))
    cache = FreshInterpreters(tokenizer.ll)
    prompt = tokenizer.encode("n=", special=False)
    expected = _steps(cache.fresh(grammar), prompt)
    seen: list[Any] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            for _ in range(50):
                seen.append(_steps(cache.fresh(grammar), prompt))
        except BaseException as error:  # pragma: no cover - reported below
            errors.append(error)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert seen == [expected] * 200
