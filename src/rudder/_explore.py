"""Explore from any token: what would a generation have made had the model taken another
token there?

``rudder.explore(lm, index, token)`` runs the generation that made ``lm`` again from the
same parent Model, with the same grammar and model: the output tokens before ``index`` kept
(taken as recorded, no model call), ``token`` forced at ``index`` (llguidance checks that
the grammar allows it) and the rest generated as the original was. The branch is a Model
like any other, its node marked ``explored`` so views show where it left the original.
``rudder.token_detail`` answers what a view asks about a token beyond what was streamed.
"""

from __future__ import annotations

import collections
import contextlib
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

from rudder._grammar._nodes import GrammarNode
from rudder._state import Candidate, Token, TokenKind
from rudder.engine._engine import Engine
from rudder.engine._loop import Probe, generate
from rudder.engine._sampler import top_allowed_indices, top_indices
from rudder.errors import ExploreError
from rudder.models._model import Model
from rudder.models._remembered import Remembered, node_by_id, remembered_of
from rudder.trace._node import ExploredFrom, NodeKind, TraceNode
from rudder.trace._run import Run, current_run

#: How many explored branches ``branches()`` keeps (the oldest go first).
MAX_BRANCHES = 256

_lock = threading.Lock()
_branches: collections.deque[Model] = collections.deque(maxlen=MAX_BRANCHES)


@dataclass(frozen=True, slots=True)
class TokenDetail:
    """What the model and grammar saw at one output token of a generation.

    ``candidates``: the likeliest tokens of the model's unconstrained distribution there,
    each flagged allowed or not; ``top_allowed``: the likeliest of the tokens the grammar
    allowed there (probabilities in the same distribution), likeliest first;
    ``allowed_count``: how many tokens the grammar allowed;
    ``before``: the token ids the model ran on just before it (prompt and output), with
    their bytes; ``after``: the original output tokens that followed it.
    """

    node_id: int
    token_index: int
    token: Token
    candidates: tuple[Candidate, ...]
    top_allowed: tuple[Candidate, ...]
    allowed_count: int
    before: tuple[tuple[int, bytes], ...]
    after: tuple[Token, ...]


def explore(source: Model | int, token_index: int, token: int | str) -> Model:
    """The generation that made ``source`` run again with ``token`` at output token
    ``token_index``.

    ``source`` is a Model whose last step is a generation, or a generation node's id (as
    views name it). ``token`` is a token id, or the text of one of the candidates recorded
    there. The branch is kept in :func:`branches`; ``source`` is unchanged.
    """
    node, remembered = _generation(source)
    return explore_from(remembered.parent, remembered.grammar, node, token_index, token)


def explore_from(
    parent: Model,
    grammar: GrammarNode,
    node: TraceNode,
    token_index: int,
    token: int | str,
    *,
    run_id: str | None = None,
) -> Model:
    """Generation ``node``, which ran ``grammar`` from ``parent``, again with ``token`` at
    output token ``token_index`` (in run ``run_id``'s stream when given, else the active
    run's). :func:`explore` with what it found for ``node``; a stored run's generation,
    rebuilt in another process, is explored through it too."""
    tokens = _tokens(node)
    original = _chosen(tokens, token_index)
    token_id = _token_id(parent, original, token)
    prefix: list[Token | int] = [*tokens[:token_index], token_id]
    explored = ExploredFrom(node.id, token_index, token_id)
    with in_run(run_id) if run_id is not None else contextlib.nullcontext():
        branch = parent._run(grammar, prefix=prefix, explored=explored)
    with _lock:
        _branches.append(branch)
    return branch


def branches(source: Model | int | None = None) -> list[Model]:
    """The branches explored so far, oldest first (the last :data:`MAX_BRANCHES`); with
    ``source`` (a Model or a generation node's id), those explored from its generation."""
    with _lock:
        held = list(_branches)
    if source is None:
        return held
    node_id = _node_id(source)
    return [b for b in held if b.trace is not None and _explored_from(b.trace) == node_id]


def token_detail(source: Model | int, token_index: int, count: int = 20) -> TokenDetail:
    """The model's ``count`` likeliest tokens at output token ``token_index`` of the
    generation that made ``source``, its ``count`` likeliest of those the grammar allowed,
    how many the grammar allowed, and the tokens around it. The model runs once, on the
    kept tokens; nothing is added to the trace."""
    if not isinstance(count, int) or isinstance(count, bool) or not 1 <= count <= 1000:
        raise ExploreError(f"count must be an int from 1 to 1000, got {count!r}")
    node, remembered = _generation(source)
    tokens = _tokens(node)
    original = _chosen(tokens, token_index)
    probe = Probe()
    parent = remembered.parent
    engine = parent.engine
    if not isinstance(engine, Engine):
        raise ExploreError(
            "a generation on a server cannot be looked into token by token: the server "
            "samples the whole step; use a local model"
        )
    prompt, can_heal = parent._prompt()
    from rudder._grammar._lark import compile_grammar

    generate(
        engine,
        compile_grammar(remembered.grammar),
        prompt,
        sampling=parent.sampling,
        rng=parent.sampling.generator(0),
        can_heal=can_heal,
        prefix=[*tokens[:token_index], probe],
    )
    assert probe.allowed is not None
    assert probe.logits is not None
    return TokenDetail(
        node_id=node.id,
        token_index=token_index,
        token=original,
        candidates=_candidates(parent, probe, top_indices(probe.logits, count)),
        top_allowed=_candidates(
            parent, probe, top_allowed_indices(probe.logits, probe.allowed, count)
        ),
        allowed_count=int(probe.allowed.sum()),
        before=tuple((i, parent.engine.tokenizer.token_bytes(i)) for i in probe.ids[-8:]),
        after=tuple(tokens[token_index + 1 : token_index + 9]),
    )


@contextlib.contextmanager
def in_run(run_id: str) -> Iterator[None]:
    """New nodes go to run ``run_id``'s stream (which may have ended: a branch explored
    after the cell, or from a stored run, is still part of that run)."""
    stand_in = Run("explore", run_id=run_id)
    stand_in.monitored = False
    token = current_run.set(stand_in)
    try:
        yield
    finally:
        current_run.reset(token)


# -- checks -------------------------------------------------------------------------------


def _generation(source: object) -> tuple[TraceNode, Remembered]:
    if isinstance(source, Model):
        node = source.trace
        if node is None or node.input.kind is not NodeKind.GRAMMAR:
            raise ExploreError(
                "this Model was not made by a generation: explore the Model that lm + gen(...) "
                "(or select, json ...) returned"
            )
    elif isinstance(source, int) and not isinstance(source, bool):
        found = node_by_id(source)
        if found is None:
            raise ExploreError(
                f"no generation {source} is held in this kernel: its Models are gone (or it "
                "ran in another process); run the cell again to explore it"
            )
        node = found
    else:
        raise ExploreError(
            f"explore a Model made by a generation or a generation's node id, not "
            f"{type(source).__name__}"
        )
    remembered = remembered_of(node)
    if remembered is None:
        raise ExploreError(
            f"generation {node.id} did not run in this process (a loaded trace?): only "
            "generations this kernel ran can be explored"
        )
    if node.usage is None:
        raise ExploreError(f"generation {node.id} has not finished (or failed): nothing to explore")
    return node, remembered


def _tokens(node: TraceNode) -> list[Token]:
    return [e for e in node.entries if isinstance(e, Token)]


def _chosen(tokens: Sequence[Token], token_index: object) -> Token:
    if not isinstance(token_index, int) or isinstance(token_index, bool):
        raise ExploreError(f"token_index must be an int, got {type(token_index).__name__}")
    if not 0 <= token_index < len(tokens):
        raise ExploreError(
            f"token_index {token_index} is not one of the generation's {len(tokens)} output "
            f"tokens (0 to {len(tokens) - 1})"
        )
    original = tokens[token_index]
    if original.kind is not TokenKind.GENERATED:
        raise ExploreError(
            f"token {token_index} ({original.text!r}) was fixed by the grammar, not chosen by "
            "the model: there is no other token to take there"
        )
    return original


def _token_id(parent: Model, original: Token, token: object) -> int:
    tokenizer = parent.engine.tokenizer
    if isinstance(token, int) and not isinstance(token, bool):
        if not 0 <= token < tokenizer.vocab_size:
            raise ExploreError(
                f"token {token} is not in the model's vocabulary (0 to {tokenizer.vocab_size - 1})"
            )
        return token
    if isinstance(token, str):
        wanted = token.encode("utf-8")
        for candidate in (*original.top, *original.top_allowed):
            if candidate.bytes == wanted:
                return candidate.token_id
        raise ExploreError(
            f"{token!r} is not one of the candidates recorded at this token "
            f"({', '.join(repr(c.text) for c in original.top) or 'none'}); give a token id"
        )
    raise ExploreError(
        f"token must be a token id or a candidate's text, not {type(token).__name__}"
    )


def _node_id(source: object) -> int:
    if isinstance(source, Model):
        if source.trace is None:
            raise ExploreError("this Model has no steps: nothing was explored from it")
        return source.trace.id
    if isinstance(source, int) and not isinstance(source, bool):
        return source
    raise ExploreError(f"give a Model or a generation's node id, not {type(source).__name__}")


def _explored_from(node: TraceNode) -> int | None:
    return node.explored.node_id if node.explored is not None else None


def _candidates(parent: Model, probe: Probe, indices: list[int]) -> tuple[Candidate, ...]:
    """The tokens at ``indices``, with their probabilities in the model's own distribution."""
    import numpy as np

    assert probe.allowed is not None
    assert probe.logits is not None
    logits = probe.logits
    weights = np.exp(logits - logits.max())
    total = float(weights.sum())
    tokenizer = parent.engine.tokenizer
    return tuple(
        Candidate(i, tokenizer.token_bytes(i), float(weights[i]) / total, bool(probe.allowed[i]))
        for i in indices
    )
