"""The decode loop's per-token path: the sampler on the allowed tokens, the top candidates
from one sampled pass, candidates made when read, and the mask beside the forward.

Every figure is checked against the straightforward computation (a softmax over the whole
vocabulary, a full sort, the choice over logits with forbidden tokens at -inf).
"""

from __future__ import annotations

import copy
import pickle
import threading
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from rudder import gen, models, select
from rudder._grammar._lark import compile_grammar
from rudder._state import Candidate, Token, TokenKind
from rudder.engine import _loop, _worker
from rudder.engine._loop import Generation, generate
from rudder.engine._measured_token import MeasuredToken
from rudder.engine._sampler import Allowed, Sampling, choose_masked, measure, pick, top_indices
from rudder.errors import GenerationError
from rudder.models._mock import MockEngine

# -- the sampler ---------------------------------------------------------------------------


def _full_sort(values: np.ndarray, count: int) -> list[int]:
    return [int(i) for i in np.lexsort((np.arange(values.shape[0]), -values))[:count]]


@pytest.mark.parametrize("size", [7, 4095, 4096, 32_000, 50_257])
def test_top_indices_equal_a_full_sort(size: int) -> None:
    rng = np.random.default_rng(size)
    for trial in range(20):
        values = rng.standard_normal(size).astype(np.float32)
        if trial % 3 == 0:
            values = np.round(values, 1)  # many ties: broken by index
        if trial % 4 == 0:
            values[rng.integers(0, size, size // 2)] = -np.inf  # a padded vocabulary
        for count in (0, 1, 5, 12):
            assert top_indices(values, count) == _full_sort(values, min(count, size))


def test_top_indices_of_a_flat_vocabulary_keep_the_first_ids() -> None:
    values = np.zeros(32_000, dtype=np.float32)
    assert top_indices(values, 5) == [0, 1, 2, 3, 4]


def _softmax(logits: np.ndarray) -> np.ndarray:
    weights = np.exp(logits.astype(np.float64) - logits.max())
    result: np.ndarray = weights / weights.sum()
    return result


# Few allowed tokens (a digit), some, and most of the vocabulary (free text): the likeliest
# allowed ones are found by a sort of them, or by a threshold first.
@pytest.mark.parametrize("allowed_share", [0.0005, 0.3, 0.97])
@pytest.mark.parametrize("count", [0, 5])
def test_measure_equals_a_full_softmax_and_sort(allowed_share: float, count: int) -> None:
    rng = np.random.default_rng(0)
    for trial in range(10):
        logits = (rng.standard_normal(32_000) * (1 + 3 * trial)).astype(np.float32)
        mask = rng.random(32_000) < allowed_share
        if trial % 2:
            mask[np.argsort(-logits)[:400]] = False  # none of the likeliest is allowed
        token = int(rng.choice(np.flatnonzero(mask)))
        prob, top, top_allowed = measure(logits, Allowed(mask), token, count)
        probs = _softmax(logits)
        assert prob == pytest.approx(probs[token], rel=1e-5)
        assert [i for i, _ in top] == _full_sort(logits, count)
        if count == 0:
            assert top_allowed is None
            continue
        assert [p for _, p in top] == pytest.approx([probs[i] for i, _ in top], rel=1e-5)
        masked = np.where(mask, logits, -np.inf)
        expected_allowed = _full_sort(masked, 5)
        if all(mask[i] for i, _ in top):
            assert top_allowed is None  # the same as top
        else:
            assert top_allowed is not None
            assert [i for i, _ in top_allowed] == expected_allowed
            assert [p for _, p in top_allowed] == pytest.approx(
                [probs[i] for i in expected_allowed], rel=1e-5
            )


def test_pick_chooses_as_over_the_masked_vocabulary() -> None:
    # The choice over the allowed tokens only is the choice over all of them with the
    # forbidden ones at -inf: greedy, and sampled with the same draws.
    rng = np.random.default_rng(1)
    for trial in range(40):
        logits = rng.standard_normal(20_000).astype(np.float32) * 4
        mask = rng.random(20_000) < (0.001 if trial % 2 else 0.5)
        masked = np.where(mask, logits, -np.inf)
        for temperature in (0.0, 0.7, 1.0):
            sampling = Sampling(top_k=trial % 5, min_p=0.01 * (trial % 3))
            seeds = (np.random.default_rng(trial), np.random.default_rng(trial))
            expected = choose_masked(masked, temperature, sampling, seeds[0])
            chosen = pick(logits, Allowed(mask), temperature, sampling, seeds[1])
            assert chosen == expected
            assert mask[chosen]


def test_pick_unconstrained_may_choose_a_forbidden_token() -> None:
    logits = np.array([0.0, 5.0, 1.0], dtype=np.float32)
    mask = np.array([True, False, True])
    assert pick(logits, Allowed(mask), 0.0, Sampling(), None, unconstrained=True) == 1
    assert pick(logits, Allowed(mask), 0.0, Sampling(), None) == 2


# -- candidates made when read -------------------------------------------------------------


def _measured_token(calls: list[int]) -> MeasuredToken:
    candidate = Candidate(3, b"\xe4\xb8", 0.25, True)  # half a CJK character

    def measured() -> tuple[tuple[Candidate, ...], tuple[Candidate, ...]]:
        calls.append(1)
        return (candidate,), (candidate,)

    return MeasuredToken(3, b"\xe4\xb8", prob=0.25, latency=0.5, measured=measured)


def test_a_measured_token_is_an_ordinary_token_to_its_readers() -> None:
    calls: list[int] = []
    token = _measured_token(calls)
    assert calls == []  # nothing made until read
    plain = Token(
        3,
        b"\xe4\xb8",
        TokenKind.GENERATED,
        prob=0.25,
        latency=0.5,
        top=(Candidate(3, b"\xe4\xb8", 0.25, True),),
        top_allowed=(Candidate(3, b"\xe4\xb8", 0.25, True),),
    )
    assert token == plain
    assert plain == token
    assert hash(token) == hash(plain)
    assert repr(token) == repr(plain)
    assert token.top[0].text == "\ufffd"
    assert calls == [1]  # made once, then kept
    assert token.top_allowed[0].prob == 0.25
    assert calls == [1]
    for copied in (copy.deepcopy(token), pickle.loads(pickle.dumps(token))):
        assert type(copied) is Token
        assert copied == plain


# -- the decode loop on the Mock -------------------------------------------------------------


def _run(
    lm: models.Model, grammar: Any, prompt: str = "Say: ", engine: Any = None, **kwargs: Any
) -> Generation:
    engine = engine or lm.engine
    ids = engine.tokenizer.encode(prompt, False)
    return generate(
        engine,
        compile_grammar(grammar),
        ids,
        sampling=Sampling(),
        rng=np.random.default_rng(0),
        can_heal=lambda size: False,
        **kwargs,
    )


def test_trace_figures_equal_a_full_softmax_of_the_models_logits() -> None:
    lm = models.Mock(
        [b"Paris is the capital <|im_start|></s></script>\x1b[2J \xe4\xb8\xad\xf0\x9f\x98\x80"]
    )
    engine = lm.engine
    prompt = engine.tokenizer.encode("Say: ", False)
    result = _run(lm, gen("x", max_tokens=40))
    generated = [t for t in result.tokens if t.kind is TokenKind.GENERATED]
    assert len(generated) >= 5
    for index, token in enumerate(result.tokens):
        if token.kind is not TokenKind.GENERATED:
            continue
        ids = prompt + [t.token_id for t in result.tokens[:index]]
        logits = engine.forward(ids)
        probs = _softmax(logits)
        assert token.prob == pytest.approx(probs[token.token_id], rel=1e-5)
        assert [c.token_id for c in token.top] == _full_sort(logits, 5)
        for candidate in (*token.top, *token.top_allowed):
            assert candidate.prob == pytest.approx(probs[candidate.token_id], rel=1e-5)
            assert candidate.bytes == engine.tokenizer.token_bytes(candidate.token_id)
        assert all(c.allowed for c in token.top_allowed)
        allowed_probs = [c.prob for c in token.top_allowed]
        assert allowed_probs == sorted(allowed_probs, reverse=True)
        assert token.top_allowed[0].token_id == token.token_id  # greedy: the likeliest allowed


def _figures(result: Generation) -> list[tuple[Any, ...]]:
    return [
        (
            t.token_id,
            t.kind,
            t.prob,
            [(c.token_id, c.prob, c.allowed) for c in t.top],
            [(c.token_id, c.prob) for c in t.top_allowed],
        )
        for t in result.tokens
    ]


@pytest.fixture
def mask_beside_forward(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every mask after a sampled token computed on the worker, whatever the vocabulary."""
    monkeypatch.setattr(_loop, "OVERLAP_FROM_VOCABULARY", 0)
    monkeypatch.setattr(_loop, "OVERLAP_FROM_MASK_S", 0.0)


PROGRAMS = [
    lambda: gen("x", max_tokens=30),
    lambda: "A long fixed prefix " + select(["Paris", "London"], name="city") + gen("y", stop="."),
    lambda: gen("n", regex="[0-9]{1,3}") + " and " + gen("w", regex="[a-z ]+", max_tokens=12),
]


@pytest.mark.parametrize("program", PROGRAMS)
def test_the_mask_beside_the_forward_changes_nothing(
    program: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    patterns = [b"Paris. 42 and hello world", b"London is far"]
    alone = _run(models.Mock(patterns), program())
    monkeypatch.setattr(_loop, "OVERLAP_FROM_VOCABULARY", 0)
    monkeypatch.setattr(_loop, "OVERLAP_FROM_MASK_S", 0.0)
    lm = models.Mock(patterns)
    beside = _run(lm, program())
    assert _figures(beside) == _figures(alone)
    assert [(c.name, c.value) for c in beside.captures] == [
        (c.name, c.value) for c in alone.captures
    ]
    assert beside.stop_reason == alone.stop_reason
    # A forward run beside a mask that then fixes the token is counted, never hidden.
    assert beside.forward_calls == lm.engine.forward_calls
    assert beside.forward_calls >= alone.forward_calls


def _decode_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("rudder-decode")]


class _FailingEngine(MockEngine):
    """The Mock's model, failing on its ``fail_at``-th forward with ``error``."""

    def __init__(self, lm: models.Model, fail_at: int, error: BaseException) -> None:
        engine = lm.engine
        assert isinstance(engine, MockEngine)
        super().__init__(engine.patterns, engine.tokenizer)
        self.fail_at = fail_at
        self.error = error
        self.threads_at_failure: list[threading.Thread] = []

    def _forward(self, token_ids: Sequence[int]) -> Any:
        if self.forward_calls + 1 == self.fail_at:
            self.threads_at_failure = _decode_threads()
            raise self.error
        return super()._forward(token_ids)


@pytest.mark.parametrize("error", [KeyboardInterrupt(), GenerationError("the model failed")])
def test_an_interrupt_during_the_mask_leaves_no_thread(
    error: BaseException, mask_beside_forward: None
) -> None:
    lm = models.Mock([b"abcdefghijklmnopqrstuvwxyz"])
    engine = _FailingEngine(lm, fail_at=4, error=error)
    failed: list[Generation] = []
    with pytest.raises(type(error)):
        _run(lm, gen("x", max_tokens=30), engine=engine, on_failure=failed.append)
    assert len(engine.threads_at_failure) == 1  # the mask was being computed beside it
    assert _worker.idle()  # it finished before the error surfaced
    assert len(failed) == 1
    assert failed[0].forward_calls == 3
    # What was produced before the failure reads as usual.
    assert all(t.prob is not None for t in failed[0].tokens if t.kind is TokenKind.GENERATED)


def test_generations_share_one_thread_idle_between_them(mask_beside_forward: None) -> None:
    lm = models.Mock([b"abcdefghij"])
    for _ in range(20):
        result = _run(lm, gen("x", max_tokens=12))
        assert result.forward_calls > 1
        assert _worker.idle()
    assert len(_decode_threads()) == 1


def test_generations_in_threads_at_once_use_a_bounded_pool(mask_beside_forward: None) -> None:
    lm = models.Mock([b"abcdefghij"])
    expected = _figures(_run(lm, gen("x", max_tokens=12)))
    results: list[Any] = []

    def run() -> None:
        results.append(_figures(_run(lm, gen("x", max_tokens=12))))

    threads = [threading.Thread(target=run) for _ in range(3 * _worker.MAX_THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * len(threads)
    assert 1 <= len(_decode_threads()) <= _worker.MAX_THREADS
    assert _worker.idle()
