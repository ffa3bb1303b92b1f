"""Structured state: the persistent entry sequence, token sampling, and capture settling."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest

from rudder._grammar._captures import settle
from rudder._state import (
    BlockMarker,
    Candidate,
    Capture,
    CaptureValue,
    Entries,
    Entry,
    RoleCloser,
    RoleOpener,
    Text,
    Token,
    TokenKind,
)
from rudder.engine._sampler import Sampling, choose, step, top_indices
from rudder.errors import SettingsError


def _texts(entries: Entries) -> list[str]:
    return [e.text for e in entries if isinstance(e, Text)]


def _chain(*groups: list[str]) -> list[Entries]:
    """One link per group, each appended to the previous; returns every link in order."""
    links = [Entries.empty()]
    for group in groups:
        links.append(links[-1].append([Text(t) for t in group]))
    return links


# -- Entries: a persistent sequence ------------------------------------------------------


def test_append_returns_a_new_sequence_and_leaves_the_old_one_unchanged() -> None:
    base = Entries.empty().append([Text("a"), Text("b")])
    longer = base.append([Text("c")])
    assert longer is not base
    assert _texts(base) == ["a", "b"]
    assert len(base) == 2
    assert _texts(longer) == ["a", "b", "c"]
    assert len(longer) == 3
    # The empty sequence is never changed by appending to it either.
    assert len(Entries.empty()) == 0
    assert list(Entries.empty()) == []


def test_append_of_nothing_is_the_same_sequence() -> None:
    base = Entries.empty().append([Text("a")])
    assert base.append([]) is base


def test_len_and_iteration_follow_append_order() -> None:
    _, first, second, third = _chain(["a", "b"], ["c"], ["d", "e", "f"])
    assert len(first) == 2
    assert len(second) == 3
    assert len(third) == 6
    assert _texts(third) == ["a", "b", "c", "d", "e", "f"]
    # reversed() and last() walk the same entries from the other end.
    assert [e.text for e in third.reversed() if isinstance(e, Text)] == list("fedcba")
    last = third.last()
    assert isinstance(last, Text)
    assert last.text == "f"
    assert Entries.empty().last() is None


def test_branches_share_their_parent_and_its_entries() -> None:
    shared = [Text("system"), Text("question")]
    parent = Entries.empty().append(shared)
    left = parent.append([Text("left")])
    right = parent.append([Text("right")])
    # Both branches hold the very same parent object: nothing was copied.
    assert left.parent is parent
    assert right.parent is parent
    left_entries, right_entries = list(left), list(right)
    for index, entry in enumerate(shared):
        assert left_entries[index] is entry
        assert right_entries[index] is entry
    assert _texts(left) == ["system", "question", "left"]
    assert _texts(right) == ["system", "question", "right"]


def test_truncate_keeps_the_first_entries_and_shares_the_kept_links() -> None:
    _, first, _, third = _chain(["a", "b"], ["c", "d", "e"], ["f"])
    cut = third.truncate(3)
    assert _texts(cut) == ["a", "b", "c"]
    assert len(cut) == 3
    # The first link is kept whole: it is the same object, not a copy.
    assert cut.parent is first
    # The entry objects themselves are shared too.
    assert list(cut)[2] is list(third)[2]
    # The original sequence is unchanged.
    assert _texts(third) == ["a", "b", "c", "d", "e", "f"]


@pytest.mark.parametrize("keep", range(7))
def test_truncate_keeps_exactly_the_first_k_entries(keep: int) -> None:
    links = _chain(["a", "b"], ["c", "d", "e"], ["f"])
    third = links[-1]
    cut = third.truncate(keep)
    assert len(cut) == keep
    assert list(cut) == list(third)[:keep]
    # Every link that ends before the cut is reachable, by identity, from the cut (a link
    # ending exactly at the cut is covered by the test below).
    reachable: set[int] = set()
    link: Entries | None = cut
    while link is not None:
        reachable.add(id(link))
        link = link.parent
    for whole in links:
        if len(whole) < keep:
            assert id(whole) in reachable


def test_truncate_to_zero_and_beyond_the_end() -> None:
    third = _chain(["a", "b"], ["c"])[-1]
    assert len(third.truncate(0)) == 0
    assert list(third.truncate(0)) == []
    # Keeping everything (or more) is the sequence itself.
    assert third.truncate(3) is third
    assert third.truncate(10) is third


@pytest.mark.parametrize("link", [1, 2])
def test_truncate_at_a_link_boundary_returns_that_link(link: int) -> None:
    links = _chain(["a", "b"], ["c", "d", "e"], ["f"])
    # The docstring promises "sharing every link that is kept whole"; this one is.
    assert links[-1].truncate(len(links[link])) is links[link]


# -- captures ----------------------------------------------------------------------------


def test_latest_single_capture_wins() -> None:
    entries = Entries.empty().append([Capture("x", "1"), Text("t"), Capture("x", "2")])
    entries = entries.append([Capture("x", "3", log_prob=-0.5)])
    captured = entries.captures()
    value = captured["x"]
    assert isinstance(value, Capture)
    assert value.value == "3"
    assert value.log_prob == -0.5


def test_list_captures_accumulate_in_order() -> None:
    first = Entries.empty().append([Capture("items", "a", is_list=True)])
    second = first.append(
        [Capture("items", "b", is_list=True), Capture("items", "c", is_list=True)]
    )
    items = second.captures()["items"]
    assert isinstance(items, list)
    assert [c.value for c in items] == ["a", "b", "c"]
    # The shorter sequence still sees only its own captures.
    earlier = first.captures()["items"]
    assert isinstance(earlier, list)
    assert [c.value for c in earlier] == ["a"]


def test_removed_tombstone_deletes_a_capture() -> None:
    entries = Entries.empty().append(
        [
            Capture("x", "1"),
            Capture("items", "a", is_list=True),
            Capture("x", "", removed=True),
            Capture("items", "", removed=True),
        ]
    )
    assert entries.captures() == {}
    # A capture written after its removal is there again, a list starting afresh.
    again = entries.append([Capture("items", "b", is_list=True), Capture("x", "2")])
    captured = again.captures()
    items = captured["items"]
    assert isinstance(items, list)
    assert [c.value for c in items] == ["b"]
    single = captured["x"]
    assert isinstance(single, Capture)
    assert single.value == "2"


def test_removing_an_unknown_name_is_harmless() -> None:
    entries = Entries.empty().append([Capture("x", "1"), Capture("nope", "", removed=True)])
    assert set(entries.captures()) == {"x"}


def test_captures_are_memoised_per_link() -> None:
    entries = Entries.empty().append([Capture("x", "1")])
    assert entries.captures() is entries.captures()


def test_child_captures_leave_the_parent_result_unchanged() -> None:
    parent = Entries.empty().append(
        [Capture("x", "1"), Capture("items", "a", is_list=True), Capture("gone", "g")]
    )
    before = parent.captures()
    parent_items = before["items"]
    assert isinstance(parent_items, list)
    # The child builds on its parent's memo: it must copy, not mutate, what it inherits.
    child = parent.append(
        [
            Capture("x", "2"),
            Capture("items", "b", is_list=True),
            Capture("gone", "", removed=True),
        ]
    )
    after = child.captures()
    assert set(after) == {"x", "items"}
    child_items = after["items"]
    assert isinstance(child_items, list)
    assert [c.value for c in child_items] == ["a", "b"]
    assert parent.captures() is before
    assert set(before) == {"x", "items", "gone"}
    assert [c.value for c in parent_items] == ["a"]
    single = before["x"]
    assert isinstance(single, Capture)
    assert single.value == "1"


def _reference_captures(entries: list[Entry]) -> dict[str, Any]:
    """Name -> value (or list of values), folded directly over the flat entries."""
    result: dict[str, Any] = {}
    for entry in entries:
        if not isinstance(entry, Capture):
            continue
        if entry.removed:
            result.pop(entry.name, None)
        elif entry.is_list:
            result.setdefault(entry.name, []).append(entry.value)
        else:
            result[entry.name] = entry.value
    return result


def _plain(captured: dict[str, CaptureValue]) -> dict[str, Any]:
    return {
        name: [c.value for c in value] if isinstance(value, list) else value.value
        for name, value in captured.items()
    }


def test_long_chain_of_captures_matches_a_direct_fold() -> None:
    links = [Entries.empty()]
    for i in range(1000):
        items: list[Entry] = [Text(f"t{i}"), Capture("last", str(i))]
        if i % 3 == 0:
            items.append(Capture("every_third", str(i), is_list=True))
        if i % 10 == 0:
            items.append(Capture("tens", str(i)))
        if i % 10 == 5:
            items.append(Capture("tens", "", removed=True))
        if i == 500:
            items.append(Capture("every_third", "", removed=True))
        links.append(links[-1].append(items))
    # Ask some links in the middle first, so later ones compute from a parent's memo.
    for index in (1, 7, 250, 499, 501, 502, 777):
        assert _plain(links[index].captures()) == _reference_captures(list(links[index]))
    final = links[-1]
    expected = _reference_captures(list(final))
    assert _plain(final.captures()) == expected
    assert expected["last"] == "999"
    assert expected["every_third"] == [str(i) for i in range(501, 1000) if i % 3 == 0]
    assert "tens" not in expected  # removed at 995, after the last one at 990


def test_long_chain_without_any_memo_is_computed_in_one_go() -> None:
    # No link has been asked before: 1000 pending links, no recursion.
    entries = Entries.empty()
    for i in range(1000):
        entries = entries.append([Capture("n", str(i), is_list=True)])
    values = entries.captures()["n"]
    assert isinstance(values, list)
    assert [c.value for c in values] == [str(i) for i in range(1000)]


# -- entries themselves ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        (Text("a"), "text"),
        (Token(1, b"a", TokenKind.GENERATED, prob=0.5), "prob"),
        (Candidate(1, b"a", 0.5, True), "allowed"),
        (RoleOpener("user"), "role"),
        (RoleCloser("user"), "role"),
        (BlockMarker(1, "x", True), "is_open"),
        (Capture("x", "v"), "value"),
    ],
)
def test_entries_are_frozen(entry: object, field: str) -> None:
    # Models share entries between branches: changing one in place would change them all.
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(entry, field, None)


def test_token_text_decodes_its_bytes() -> None:
    assert Token(1, "café".encode(), TokenKind.INPUT).text == "café"
    # A token can end inside a multi-byte character: the partial bytes are replaced.
    assert Token(2, b"\xc3", TokenKind.GENERATED).text == "\ufffd"
    assert Token(3, b"ab\xff", TokenKind.FORCED).text == "ab\ufffd"
    assert Candidate(4, b"\xe2\x82", 0.1, False).text == "\ufffd"


def test_token_defaults() -> None:
    token = Token(7, b"x", TokenKind.FORCED)
    assert token.prob is None
    assert token.top == ()
    assert token.top_allowed == ()
    assert token.special is False


def test_each_append_adds_one_small_link() -> None:
    # Appending must not copy the sequence: each link holds only what it adds.
    previous = Entries.empty()
    for i in range(1000):
        current = previous.append([Text(str(i))])
        assert len(current.items) == 1
        assert current.parent is previous
        assert len(current) == i + 1
        previous = current
    assert _texts(previous) == [str(i) for i in range(1000)]


# -- sampling ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "name"),
    [
        ({"top_p": 0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_p": -0.1}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"top_k": 1.5}, "top_k"),
        ({"min_p": 1.0}, "min_p"),
        ({"min_p": -0.1}, "min_p"),
        ({"seed": -1}, "seed"),
        ({"seed": 1.0}, "seed"),
        ({"candidates": -1}, "candidates"),
    ],
)
def test_sampling_rejects_out_of_range_settings(settings: dict[str, Any], name: str) -> None:
    with pytest.raises(SettingsError, match=rf"^{name} must be"):
        Sampling(**settings)


def test_sampling_accepts_the_edges_of_its_ranges() -> None:
    sampling = Sampling(top_p=1.0, top_k=0, min_p=0.0, seed=0, candidates=0)
    assert sampling.top_p == 1.0
    assert Sampling(top_p=0.01, min_p=0.99).min_p == 0.99


def _probs(*values: float) -> Any:
    """Logits whose softmax is ``values``."""
    return np.log(np.array(values, dtype=np.float64))


def test_greedy_choice_ignores_forbidden_tokens() -> None:
    logits = np.array([5.0, 1.0, 3.0, 2.0, 9.0])
    allowed = np.array([False, True, True, True, False])
    rng = np.random.default_rng(0)
    assert choose(logits, allowed, 0.0, Sampling(), rng) == 2
    # With everything allowed the global argmax wins.
    assert choose(logits, np.ones(5, dtype=bool), 0.0, Sampling(), rng) == 4


def test_sampling_draws_only_allowed_tokens() -> None:
    logits = np.array([10.0, 0.0, 0.5, 0.2, 8.0, 0.1])
    allowed = np.array([False, True, True, True, False, True])
    rng = np.random.default_rng(1)
    draws = [choose(logits, allowed, 1.0, Sampling(), rng) for _ in range(500)]
    assert set(draws) <= {1, 2, 3, 5}
    # Sampling is not greedy: every allowed token turns up.
    assert set(draws) == {1, 2, 3, 5}


def test_top_k_one_always_gives_the_most_likely_allowed_token() -> None:
    logits = np.array([4.0, 3.0, 2.9, 2.8, 1.0])
    allowed = np.array([False, True, True, True, True])
    rng = np.random.default_rng(2)
    draws = {choose(logits, allowed, 2.0, Sampling(top_k=1), rng) for _ in range(200)}
    assert draws == {1}


def test_top_k_keeps_the_k_most_likely() -> None:
    logits = np.array([3.0, 2.9, 2.8, 2.7])
    rng = np.random.default_rng(3)
    draws = {
        choose(logits, np.ones(4, dtype=bool), 1.0, Sampling(top_k=2), rng) for _ in range(300)
    }
    assert draws == {0, 1}


def test_min_p_filters_unlikely_tokens() -> None:
    logits = _probs(0.5, 0.4, 0.05, 0.05)
    rng = np.random.default_rng(4)
    allowed = np.ones(4, dtype=bool)
    draws = {choose(logits, allowed, 1.0, Sampling(min_p=0.2), rng) for _ in range(500)}
    # 0.05 / 0.5 = 0.1 < 0.2: the last two are cut; 0.4 / 0.5 = 0.8 stays.
    assert draws == {0, 1}
    # Without min_p the unlikely tokens do turn up in as many draws.
    unfiltered = {choose(logits, allowed, 1.0, Sampling(), rng) for _ in range(500)}
    assert unfiltered == {0, 1, 2, 3}


def test_top_p_keeps_the_smallest_set_reaching_p() -> None:
    logits = _probs(0.3, 0.6, 0.1)
    rng = np.random.default_rng(5)
    allowed = np.ones(3, dtype=bool)
    draws = {choose(logits, allowed, 1.0, Sampling(top_p=0.5), rng) for _ in range(300)}
    assert draws == {1}
    wider = {choose(logits, allowed, 1.0, Sampling(top_p=0.8), rng) for _ in range(300)}
    assert wider == {0, 1}


def test_same_seed_and_position_give_the_same_draws() -> None:
    sampling = Sampling(seed=3)
    logits = np.zeros(50)
    allowed = np.ones(50, dtype=bool)

    def draws(position: int) -> list[int]:
        rng = sampling.generator(position)
        return [choose(logits, allowed, 1.0, sampling, rng) for _ in range(40)]

    assert draws(0) == draws(0)
    assert draws(17) == draws(17)
    # Each place in the program gets its own stream.
    assert draws(0) != draws(17)
    assert list(sampling.generator(5).random(4)) == list(Sampling(seed=3).generator(5).random(4))
    assert list(Sampling(seed=4).generator(5).random(4)) != list(sampling.generator(5).random(4))


class _HighestDraw:
    """A generator whose ``random()`` returns the largest value numpy's can: 1 - 2**-53."""

    def random(self) -> float:
        return 1.0 - 2.0**-53


def test_a_draw_near_one_still_gives_an_allowed_token() -> None:
    # One likely token and many tiny ones: a sequential cumsum rounds the tiny ones away, a
    # pairwise sum does not. Scaling the draw by the latter once ran past the end.
    logits = np.array([0.0] + [float(np.log(1e-16))] * 15)
    allowed = np.ones(16, dtype=bool)
    index = choose(logits, allowed, 1.0, Sampling(), _HighestDraw())
    assert 0 <= index < 16


def test_step_measures_the_unconstrained_distribution() -> None:
    # Probabilities come from all tokens; the choice and top_allowed only from allowed ones.
    logits = np.array([2.0, 1.0, 0.0, 3.0], dtype=np.float32)
    allowed = np.array([True, True, True, False])
    chosen = step(logits, allowed, 0.0, Sampling(candidates=2), None)
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert chosen.token == 0
    assert chosen.prob == pytest.approx(probs[0])
    assert [i for i, _ in chosen.top] == [3, 0]
    assert chosen.top[0][1] == pytest.approx(probs[3])
    assert chosen.top_allowed is not None
    assert [i for i, _ in chosen.top_allowed] == [0, 1]


def test_top_indices_returns_largest_first() -> None:
    values = np.array([0.1, 0.9, 0.5, 0.7, 0.3])
    assert top_indices(values, 3) == [1, 3, 2]
    assert top_indices(values, 1) == [1]
    assert top_indices(values, 10) == [1, 3, 2, 4, 0]
    assert top_indices(values, 0) == []


# -- settling capture reports --------------------------------------------------------------


def test_settle_drops_a_provisional_empty_report() -> None:
    # gen() is reported empty where it starts, then in full where it ends.
    output = b"say: hello"
    reports = [("x", b"", 5), ("x", b"hello", 10)]
    assert settle(reports, output) == [("x", b"hello", 5)]


def test_settle_keeps_a_genuine_empty_capture_at_another_offset() -> None:
    output = b"ab"
    reports = [("x", b"", 0), ("x", b"b", 2)]
    assert settle(reports, output) == [("x", b"", 0), ("x", b"b", 1)]


def test_settle_only_drops_the_same_names_empty_report() -> None:
    output = b"xy"
    reports = [("a", b"", 0), ("b", b"xy", 2)]
    assert settle(reports, output) == [("a", b"", 0), ("b", b"xy", 0)]


def test_settle_keeps_list_captures_in_order() -> None:
    output = b"a,b,c;done"
    reports = [
        ("item", b"", 0),
        ("item", b"a", 1),
        ("item", b"", 2),
        ("item", b"b", 3),
        ("item", b"", 4),
        ("item", b"c", 5),
        ("tail", b"done", 10),
    ]
    assert settle(reports, output) == [
        ("item", b"a", 0),
        ("item", b"b", 2),
        ("item", b"c", 4),
        ("tail", b"done", 6),
    ]


def test_settle_finds_a_repeated_value_where_it_was_reported() -> None:
    # The same text occurs twice: the capture is the occurrence that ends where it arrived.
    output = b"ab ab"
    reports = [("x", b"ab", 2), ("y", b"", 3), ("y", b"ab", 5)]
    assert settle(reports, output) == [("x", b"ab", 0), ("y", b"ab", 3)]
