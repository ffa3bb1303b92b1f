"""Checks of an explored branch shared by the unit (Mock) and models (tiny Llama) tiers."""

from __future__ import annotations

import math
import re

import rudder
from rudder._grammar._lark import compile_grammar
from rudder._state import Capture, Token, TokenKind
from rudder.engine._loop import generate
from rudder.models import Model
from rudder.models._remembered import remembered_of


def output_tokens(lm: Model) -> list[Token]:
    assert lm.trace is not None
    return [e for e in lm.trace.entries if isinstance(e, Token)]


def captures(lm: Model) -> list[Capture]:
    assert lm.trace is not None
    return [e for e in lm.trace.entries if isinstance(e, Capture)]


def allowed_alternative(token: Token) -> int:
    """A candidate the grammar allowed at ``token`` other than the one taken."""
    for candidate in (*token.top, *token.top_allowed):
        if candidate.allowed and candidate.token_id != token.token_id:
            return candidate.token_id
    raise AssertionError(f"no allowed alternative recorded at {token!r}")


def forbidden_candidate(token: Token) -> int | None:
    return next((c.token_id for c in token.top if not c.allowed), None)


def run_forced(original: Model, prefix: list[int]) -> list[Token]:
    """The original generation's step run again straight through the decode loop, every
    token of ``prefix`` forced with a model call (no record reused)."""
    assert original.trace is not None
    remembered = remembered_of(original.trace)
    assert remembered is not None
    parent = remembered.parent
    prompt, can_heal = parent._prompt()
    generation = generate(
        parent.engine,
        compile_grammar(remembered.grammar),
        prompt,
        sampling=parent.sampling,
        rng=parent.sampling.generator(len(parent.entries)),
        can_heal=can_heal,
        prefix=prefix,
    )
    return generation.tokens


def check_branch(original: Model, index: int, token_id: int) -> Model:
    """Explore ``original`` at ``index`` with ``token_id`` and check the branch against the
    same step run with the prefix forced; returns the branch."""
    before = str(original)
    tokens = output_tokens(original)
    branch = rudder.explore(original, index, token_id)
    assert str(original) == before  # the original stays as it was
    got = output_tokens(branch)
    assert [t.token_id for t in got[:index]] == [t.token_id for t in tokens[:index]]
    assert got[index].token_id == token_id
    assert got[index].kind is TokenKind.GENERATED
    expected = run_forced(original, [t.token_id for t in tokens[:index]] + [token_id])
    assert [t.token_id for t in got] == [t.token_id for t in expected]
    for mine, theirs in zip(got, expected, strict=True):
        assert mine.kind is theirs.kind
        if mine.prob is not None and theirs.prob is not None:
            assert math.isclose(mine.prob, theirs.prob, rel_tol=1e-3, abs_tol=1e-6)
    assert branch.trace is not None
    assert branch.trace.explored is not None
    assert branch.trace.explored.node_id == original.trace.id  # type: ignore[union-attr]
    assert branch.trace.explored.token_index == index
    assert branch.trace.explored.token_id == token_id
    assert branch.trace.parent is original.trace.parent  # type: ignore[union-attr]
    return branch


#: The grammar ``check_top_allowed`` explores: lowercase words, many tokens allowed at once.
WORDS = r"[a-z ]+"


def check_top_allowed(lm: Model, prompt: str) -> None:
    """The detail of the first token of ``lm + prompt + gen(regex=WORDS)``: its top allowed
    candidates are the likeliest of the tokens the grammar allows there, worked out here
    from the vocabulary (a token of lowercase letters and spaces), likeliest first."""
    original = lm + prompt + rudder.gen("w", regex=WORDS, max_tokens=4)
    detail = rudder.token_detail(original, 0)
    # No token healing at the prompt's end: the grammar starts at the first output token.
    assert b"".join(b for _, b in detail.before).endswith(prompt.encode())
    tokenizer = original.engine.tokenizer
    vocab = range(tokenizer.vocab_size)
    allowed = {i for i in vocab if re.fullmatch(WORDS.encode(), tokenizer.token_bytes(i))}
    assert detail.allowed_count == len(allowed) > 20
    everything = rudder.token_detail(original, 0, count=tokenizer.vocab_size).candidates
    expected = [c for c in everything if c.token_id in allowed][:20]
    assert [c.token_id for c in detail.top_allowed] == [c.token_id for c in expected]
    assert all(c.allowed for c in detail.top_allowed)
    probs = [c.prob for c in detail.top_allowed]
    assert probs == sorted(probs, reverse=True)
    for mine, theirs in zip(detail.top_allowed, expected, strict=True):
        assert math.isclose(mine.prob, theirs.prob, rel_tol=1e-6)
    # The unconstrained top differs: the model liked tokens the grammar forbids.
    assert any(not c.allowed for c in detail.candidates)
    assert output_tokens(original)[0].token_id in allowed
