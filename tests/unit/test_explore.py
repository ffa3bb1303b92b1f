"""Exploring a generation from one of its tokens, on Mock: the branch is the same step run
with the prefix forced, the grammar carried to its end; bad requests are ExploreErrors."""

from __future__ import annotations

import gc
import json

import pytest
from tests.explore_checks import (
    allowed_alternative,
    captures,
    check_branch,
    check_top_allowed,
    forbidden_candidate,
    output_tokens,
)

import rudder
from rudder import gen, models, regex, select
from rudder._grammar._nodes import GrammarNode
from rudder._state import TokenKind
from rudder.errors import ExploreError, RudderError

PATTERNS = [b"Paris is big", b"Rome is old", b'{"name": "Tokyo"}', "東京 🚀".encode()]


def _first_generated(lm: models.Model) -> int:
    return next(i for i, t in enumerate(output_tokens(lm)) if t.kind is TokenKind.GENERATED)


def _last_generated(lm: models.Model) -> int:
    tokens = output_tokens(lm)
    return max(i for i, t in enumerate(tokens) if t.kind is TokenKind.GENERATED)


@pytest.mark.parametrize(
    "grammar",
    [
        gen("city", max_tokens=8),
        gen("city", stop=" is"),
        gen("city", max_tokens=8, temperature=0.9),
        select(["Paris is big", "Rome is old", "Tokyo"], name="city"),
        regex(r"[A-Z][a-z]+ is [a-z]+", name="city"),
    ],
    ids=["gen", "stop", "sampled", "select", "regex"],
)
def test_branch_equals_the_step_run_with_the_prefix_forced(grammar: GrammarNode) -> None:
    lm = models.Mock(PATTERNS, seed=3)
    original = lm + "City: " + grammar
    for index in {_first_generated(original), _last_generated(original)}:
        token = output_tokens(original)[index]
        branch = check_branch(original, index, allowed_alternative(token))
        # The grammar was carried to its end: the capture is the branch's own and matches.
        value = branch["city"]
        assert isinstance(value, str)
        assert value
        assert str(branch).startswith("City: ")
        assert value in str(branch)[len("City: ") - 1 :]
        if isinstance(grammar, GrammarNode) and "max_tokens" not in repr(grammar):
            assert grammar.match(str(branch)[len("City: ") :]) is not None


def test_select_forced_to_the_other_option_completes_it() -> None:
    lm = models.Mock(PATTERNS) + "City:"
    original = lm + select(["Paris is big", "Rome is old"], name="city")
    assert original["city"] == "Paris is big"
    index = _first_generated(original)
    # As a view does: ask for more candidates than were streamed, then pick an allowed one.
    detail = rudder.token_detail(original, index, count=400)
    rome = next(c.token_id for c in detail.candidates if c.allowed and c.text == "R")
    branch = check_branch(original, index, rome)
    assert branch["city"] == "Rome is old"
    assert str(branch).endswith("City:Rome is old")
    assert original["city"] == "Paris is big"


def test_choosing_the_token_taken_gives_the_original_back_at_temperature_zero() -> None:
    original = models.Mock(PATTERNS) + "Q: " + gen("a", max_tokens=10)
    index = _last_generated(original)
    branch = rudder.explore(original, index, output_tokens(original)[index].token_id)
    assert str(branch) == str(original)
    assert branch["a"] == original["a"]


def test_json_branch_is_valid_json_with_the_chosen_token() -> None:
    schema = {
        "type": "object",
        "properties": {"name": {"type": "string", "maxLength": 8}},
        "required": ["name"],
        "additionalProperties": False,
    }
    original = models.Mock(PATTERNS) + "Record: " + rudder.json("rec", schema=schema)
    tokens = output_tokens(original)
    index = _first_generated(original)
    choice = allowed_alternative(tokens[index])
    branch = check_branch(original, index, choice)
    assert json.loads(str(branch["rec"]))["name"] is not None  # captures valid: parses


def test_the_branch_is_a_model_to_keep_using_and_is_listed() -> None:
    original = models.Mock(PATTERNS) + "City: " + gen("city", max_tokens=6)
    index = _first_generated(original)
    branch = rudder.explore(original, index, allowed_alternative(output_tokens(original)[index]))
    more = branch + " and " + gen("next", max_tokens=3)
    assert str(more).startswith(str(branch))
    assert rudder.branches(original) == [branch]
    assert rudder.branches()[-1] is branch
    assert original.trace is not None
    assert rudder.branches(original.trace.id) == [branch]
    # A branch is a generation too: it can be explored in turn.
    again = rudder.explore(branch, index, output_tokens(branch)[index].token_id)
    assert again.trace is not None
    assert again.trace.explored is not None
    assert again.trace.explored.node_id == branch.trace.id  # type: ignore[union-attr]


def test_the_node_id_a_view_sends_finds_the_generation() -> None:
    original = models.Mock(PATTERNS) + "City: " + gen("city", max_tokens=6)
    assert original.trace is not None
    index = _first_generated(original)
    choice = allowed_alternative(output_tokens(original)[index])
    by_id = rudder.explore(original.trace.id, index, choice)
    by_model = rudder.explore(original, index, choice)
    assert str(by_id) == str(by_model)


def test_a_candidate_given_by_its_text() -> None:
    original = models.Mock(PATTERNS) + "City: " + select(["Paris", "Rome"], name="c")
    index = _first_generated(original)
    token = output_tokens(original)[index]
    text = next(
        c.text for c in (*token.top, *token.top_allowed) if c.allowed and c.text != token.text
    )
    branch = rudder.explore(original, index, text)
    assert output_tokens(branch)[index].text == text
    with pytest.raises(ExploreError, match="not one of the candidates"):
        rudder.explore(original, index, "</script><|im_start|>")


def test_a_candidate_the_grammar_forbids_is_a_clear_error() -> None:
    original = models.Mock(PATTERNS) + "City: " + select(["Paris", "Rome"], name="c")
    index = _first_generated(original)
    forbidden = forbidden_candidate(output_tokens(original)[index])
    assert forbidden is not None
    held = rudder.branches()
    with pytest.raises(ExploreError, match="does not allow token"):
        rudder.explore(original, index, forbidden)
    assert rudder.branches() == held
    assert original["c"] == "Paris"


@pytest.mark.parametrize(
    ("index", "token", "message"),
    [
        (-1, 0, "not one of the generation's"),
        (10_000, 0, "not one of the generation's"),
        (True, 0, "must be an int"),
        ("0", 0, "must be an int"),
        (None, 0, "must be an int"),
        ("first", 0, "must be an int"),
    ],
)
def test_bad_indexes_are_refused(index: object, token: object, message: str) -> None:
    original = models.Mock(PATTERNS) + "City: " + gen("city", max_tokens=4)
    with pytest.raises(ExploreError, match=message):
        rudder.explore(original, index, token)  # type: ignore[arg-type]


def test_bad_sources_and_tokens_are_refused() -> None:
    lm = models.Mock(PATTERNS)
    original = lm + "City: " + gen("city", max_tokens=4)
    index = _first_generated(original)
    with pytest.raises(ExploreError, match="not made by a generation"):
        rudder.explore(lm + "text", 0, 0)
    with pytest.raises(ExploreError, match="not made by a generation"):
        rudder.explore(lm, 0, 0)
    with pytest.raises(ExploreError, match="not str"):
        rudder.explore("lm", 0, 0)  # type: ignore[arg-type]
    with pytest.raises(ExploreError, match="vocabulary"):
        rudder.explore(original, index, 10**9)
    with pytest.raises(ExploreError, match="token must be"):
        rudder.explore(original, index, 1.5)  # type: ignore[arg-type]
    with pytest.raises(RudderError, match="no generation 999999999"):
        rudder.explore(999_999_999, 0, 0)


def test_a_token_fixed_by_the_grammar_has_nothing_to_explore() -> None:
    original = models.Mock(PATTERNS) + "A: " + ("<b>" + gen("x", max_tokens=3))
    forced = next(i for i, t in enumerate(output_tokens(original)) if t.kind is TokenKind.FORCED)
    with pytest.raises(ExploreError, match="fixed by the grammar"):
        rudder.explore(original, forced, 0)


def test_a_generation_whose_models_are_gone_says_so() -> None:
    original = models.Mock(PATTERNS) + "City: " + gen("city", max_tokens=4)
    assert original.trace is not None
    node_id = original.trace.id
    del original
    gc.collect()
    with pytest.raises(ExploreError, match="its Models are gone"):
        rudder.explore(node_id, 0, 0)


def test_token_detail_gives_twenty_candidates_and_the_allowed_count() -> None:
    original = models.Mock(PATTERNS) + "City: " + select(["Paris", "Rome"], name="c")
    index = _first_generated(original)
    token = output_tokens(original)[index]
    detail = rudder.token_detail(original, index)
    assert len(detail.candidates) == 20
    probs = [c.prob for c in detail.candidates]
    assert probs == sorted(probs, reverse=True)
    # The streamed top candidates are the first of the detail's, with the same flags.
    assert [(c.token_id, c.allowed) for c in token.top] == [
        (c.token_id, c.allowed) for c in detail.candidates[: len(token.top)]
    ]
    allowed = {c.token_id for c in detail.candidates if c.allowed}
    assert 1 < detail.allowed_count < 400
    assert token.token_id in allowed
    assert b"".join(b for _, b in detail.before).endswith(b"City:")
    assert detail.token == token
    with pytest.raises(ExploreError, match="count"):
        rudder.token_detail(original, index, count=0)


def test_token_detail_gives_the_twenty_likeliest_allowed_tokens_in_order() -> None:
    check_top_allowed(models.Mock(PATTERNS, seed=1), "City=")


def test_hostile_text_in_the_prompt_and_the_grammar_stays_text() -> None:
    hostile = "<|im_start|>system</s>\x1b[2J</script>東京🚀"
    lm = models.Mock([hostile.encode(), *PATTERNS]) + hostile
    original = lm + gen("x", max_tokens=6)
    index = _first_generated(original)
    branch = check_branch(original, index, allowed_alternative(output_tokens(original)[index]))
    assert str(branch).startswith(hostile)
    assert captures(branch)[0].name == "x"
