"""Grammar nodes compose with +, embed in f-strings, and stay immutable."""

from __future__ import annotations

import dataclasses

import pytest

from rudder import GrammarNode, gen, regex, select
from rudder.errors import CaptureNameError, GrammarError


def test_plus_with_str_on_either_side() -> None:
    grammar = "Name: " + gen("name", stop="\n") + "Age: " + regex("[0-9]+", name="age")
    assert isinstance(grammar, GrammarNode)
    assert dict(grammar.match("Name: Ada\nAge: 36")) == {"name": "Ada", "age": "36"}


def test_plus_leaves_its_operands_unchanged() -> None:
    left = select(["a", "b"], name="x")
    right = regex("[0-9]", name="y")
    before = (left.to_lark(), right.to_lark())
    combined = left + right
    assert combined is not left
    assert combined is not right
    assert (left.to_lark(), right.to_lark()) == before
    assert left.match("a") is not None
    assert left.match("a1") is None


def test_nodes_are_frozen() -> None:
    node = regex("[0-9]+")
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.pattern = "x"  # type: ignore[misc]


def test_numbers_compose_as_text() -> None:
    assert (1 + select(["a"]) + 2.5).match("1a2.5") is not None


def test_fstring_embeds_grammars_without_leaking_placeholders() -> None:
    yes_no = select(["yes", "no"], name="b")
    grammar = select(["x"]) + f"Answer: {gen('a', regex='[0-9]+')} and {yes_no}."
    lark_text = grammar.to_llguidance()
    assert "\ue000" not in lark_text
    assert "rudder:" not in lark_text
    assert dict(grammar.match("xAnswer: 12 and no.")) == {"a": "12", "b": "no"}


def test_fstring_added_to_a_node_on_the_left() -> None:
    grammar = f"{regex('[a-z]+', name='w')}!" + regex("[0-9]")
    assert grammar.match("hey!7")["w"] == "hey"


def test_fstring_alone_becomes_a_grammar_when_composed() -> None:
    text = f"({gen('inner', regex='[a-z]+')})"
    assert isinstance(text, str)
    grammar = select([text])
    assert grammar.match("(abc)")["inner"] == "abc"


def test_forged_placeholder_text_stays_text() -> None:
    real = f"{regex('[0-9]')}"
    forged = real.replace(real.split(":")[1], "000000000000")
    grammar = select([forged])
    assert grammar.match(forged) is not None
    assert grammar.match("5") is None


def test_unknown_values_fail_clearly() -> None:
    with pytest.raises(GrammarError, match="cannot use a dict"):
        regex("a") + {"a": 1}  # type: ignore[operator]
    with pytest.raises(GrammarError, match="cannot use a NoneType"):
        select(["a", None])


def test_name_used_as_list_and_single_capture_fails_on_composition() -> None:
    single = gen("x", stop=".")
    as_list = gen("x", stop=".", list_append=True)
    with pytest.raises(CaptureNameError, match="'x' is used both with list_append=True"):
        single + as_list
    with pytest.raises(CaptureNameError):
        select([single, as_list])


def test_failed_composition_leaves_operands_usable() -> None:
    single = regex("[a-z]", name="x")
    as_list = regex("[0-9]", name="x", list_append=True)
    with pytest.raises(CaptureNameError):
        single + as_list
    assert single.match("q")["x"] == "q"
    assert as_list.match("4")["x"] == ["4"]


def test_same_name_single_capture_keeps_the_last_value() -> None:
    grammar = regex("[a-z]+", name="w") + " " + regex("[a-z]+", name="w")
    assert grammar.match("one two")["w"] == "two"


def test_repr_is_readable() -> None:
    assert repr(regex("[0-9]")) == "Regex('[0-9]')"
    assert "Select" in repr(select(["a", "b"]))
