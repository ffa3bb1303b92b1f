"""Exploring a generation of the tiny Llama from one of its tokens: the branch is the same
step run with the prefix forced (the KV cache reused or not), the grammar completed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.explore_checks import (
    allowed_alternative,
    check_branch,
    check_top_allowed,
    forbidden_candidate,
    output_tokens,
)

import rudder
from rudder import gen, select
from rudder._state import TokenKind
from rudder.errors import ExploreError
from rudder.models import Model


def _generated(lm: Model) -> list[int]:
    return [i for i, t in enumerate(output_tokens(lm)) if t.kind is TokenKind.GENERATED]


@pytest.mark.parametrize("temperature", [0.0, 0.8])
def test_branch_equals_the_step_run_with_the_prefix_forced(lm: Model, temperature: float) -> None:
    original = (
        lm.with_sampling(seed=5)
        + "The city is "
        + gen("city", max_tokens=10, temperature=temperature)
    )
    indexes = _generated(original)
    for index in (indexes[0], indexes[len(indexes) // 2], indexes[-1]):
        token = output_tokens(original)[index]
        branch = check_branch(original, index, allowed_alternative(token))
        assert str(branch).startswith("The city is")
        assert len(output_tokens(branch)) <= 10 + 1  # max_tokens carried over (+ healing)


def test_json_branch_completes_the_schema(lm: Model) -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 12}, "n": {"type": "integer"}},
        "required": ["name", "n"],
        "additionalProperties": False,
    }
    with rudder.user():
        prompt = lm + "A record, please: 東京 🚀 </script>"
    with rudder.assistant():
        original = prompt + rudder.json("rec", schema=schema, max_tokens=60)
    first = _generated(original)[0]
    branch = check_branch(original, first, allowed_alternative(output_tokens(original)[first]))
    record = json.loads(str(branch["rec"]))
    assert set(record) == {"name", "n"}
    assert isinstance(record["n"], int)
    assert json.loads(str(original["rec"])) is not None


def test_a_forbidden_candidate_and_the_detail(lm: Model) -> None:
    original = lm + "Pick: " + select(["red", "green", "blue"], name="c")
    index = _generated(original)[0]
    token = output_tokens(original)[index]
    forbidden = forbidden_candidate(token)
    assert forbidden is not None
    with pytest.raises(ExploreError, match="does not allow token"):
        rudder.explore(original, index, forbidden)
    detail = rudder.token_detail(original, index)
    assert len(detail.candidates) == 20
    assert 2 <= detail.allowed_count <= 20
    assert [c.token_id for c in token.top] == [c.token_id for c in detail.candidates[:5]]
    for choice in (c.token_id for c in detail.candidates if c.allowed):
        assert rudder.explore(original, index, choice)["c"] in ("red", "green", "blue")


def test_token_detail_gives_the_twenty_likeliest_allowed_tokens_in_order(lm: Model) -> None:
    check_top_allowed(lm, "The city is=")


def test_a_stored_generation_explored_on_the_model_equals_the_branch_in_process(
    lm: Model, llama_path: Path, tmp_path: Path
) -> None:
    from rudder import models
    from rudder.store import Store
    from rudder.store._explore import StoredExplorer
    from rudder.store._writer import current_writer

    rudder.settings.store = tmp_path / "runs.sqlite"
    try:
        with rudder.run("stored") as run:
            with rudder.user():
                prompt = lm + "Which city? 東京 🚀 </script>"
            with rudder.assistant():
                original = prompt + gen("city", max_tokens=6)
        writer = current_writer()
        assert writer is not None
        assert writer.flush()
    finally:
        rudder.settings.store = None
    assert original.trace is not None
    index = _generated(original)[1]
    chosen = allowed_alternative(output_tokens(original)[index])
    # As `rudder view --model` does: the same model loaded again, the prompt from the store.
    with Store(tmp_path / "runs.sqlite", create=False) as store:
        explorer = StoredExplorer(store, models.Transformers(str(llama_path)))
        branch_id = explorer.explore(run.id, original.trace.id, index, chosen)
        explorer.close()
        stored = [t.id for t in store.view(run.id).nodes[branch_id].tokens]
    in_process = rudder.explore(original, index, chosen)
    assert stored == [t.token_id for t in output_tokens(in_process)]
