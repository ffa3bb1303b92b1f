"""Every grammar library function, checked by matching text with no model."""

from __future__ import annotations

import re
from typing import Any

import pytest

import rudder
from rudder import (
    at_most_n_repeats,
    capture,
    exactly_n_repeats,
    gbnf_to_lark,
    gen,
    lark,
    one_or_more,
    optional,
    regex,
    select,
    sequence,
    special_token,
    string,
    substring,
    token_limit,
    with_temperature,
    zero_or_more,
)
from rudder.errors import GrammarError


def test_gen_without_stop_takes_any_non_empty_text_to_the_end() -> None:
    grammar = "Q: " + gen("answer")
    assert grammar.match("Q: anything\nat all")["answer"] == "anything\nat all"
    # Ended by end-of-sequence, it writes at least one character.
    assert grammar.match("Q: ") is None
    assert grammar.match("X: no") is None


def test_gen_with_stop_may_also_end_at_end_of_text() -> None:
    grammar = "Q: " + gen("answer", stop=".")
    assert grammar.match("Q: yes.")["answer"] == "yes"
    assert grammar.match("Q: yes")["answer"] == "yes"
    assert grammar.match("Q: .")["answer"] == ""


def test_gen_stop_ends_the_text_and_is_left_out_of_the_capture() -> None:
    grammar = gen("line", stop="\n") + "next"
    assert grammar.match("hello\nnext")["line"] == "hello"
    assert grammar.match("hello next") is None


def test_gen_stop_list_and_stop_regex() -> None:
    grammar = gen("a", stop=["END", "."], stop_regex=r"[0-9]{2}") + "|"
    assert grammar.match("xyEND|")["a"] == "xy"
    assert grammar.match("xy.|")["a"] == "xy"
    assert grammar.match("xy42|")["a"] == "xy"


def test_gen_save_stop_text_records_which_stop_was_hit() -> None:
    grammar = gen("a", stop=["!", "?"], save_stop_text=True) + ";"
    assert dict(grammar.match("wow?;")) == {"a": "wow", "a_stop_text": "?"}
    named = gen("a", stop="!", save_stop_text="ending") + ";"
    assert dict(named.match("hey!;")) == {"a": "hey", "ending": "!"}


def test_gen_regex_shapes_the_text() -> None:
    grammar = "Age: " + gen("age", regex=r"[0-9]{1,3}") + " years"
    assert grammar.match("Age: 42 years")["age"] == "42"
    assert grammar.match("Age: 4x years") is None
    assert grammar.match("Age: 4242 years") is None


def test_gen_suffix_is_in_the_text_but_not_the_capture() -> None:
    grammar = gen("word", suffix="]")
    assert grammar.match("abc]")["word"] == "abc"
    assert grammar.match("abc") is None


def test_gen_max_tokens_and_temperature_reach_the_grammar() -> None:
    lark_text = gen("a", regex="[a-z]+", max_tokens=7, temperature=0.25).to_lark()
    assert "max_tokens=7" in lark_text
    assert "temperature=0.25" in lark_text


def test_gen_list_append_collects_every_value_in_order() -> None:
    item = gen("items", stop="\n", list_append=True)
    grammar = "- " + item + "- " + item + "- " + item
    assert grammar.match("- a\n- bb\n- ccc\n")["items"] == ["a", "bb", "ccc"]


@pytest.mark.parametrize("choice", ["yes", "no", "maybe"])
def test_select_matches_exactly_one_option(choice: str) -> None:
    grammar = select(["yes", "no", "maybe"], name="v")
    assert grammar.match(choice)["v"] == choice


def test_select_rejects_anything_else() -> None:
    grammar = select(["yes", "no"])
    assert grammar.match("yesno") is None
    assert grammar.match("ye") is None


def test_select_takes_numbers_and_grammars() -> None:
    grammar = select([1, 2.5, regex("[a-c]+", name="letters")], name="v")
    assert grammar.match("1")["v"] == "1"
    assert grammar.match("2.5")["v"] == "2.5"
    assert dict(grammar.match("abc")) == {"v": "abc", "letters": "abc"}


def test_select_list_append() -> None:
    grammar = one_or_more(select(["a", "b"], name="picks", list_append=True))
    # Distinct neighbours: llguidance reports a capture equal to the one before it once.
    assert grammar.match("abab")["picks"] == ["a", "b", "a", "b"]


def test_regex_with_and_without_name() -> None:
    assert regex(r"\d+").match("123") is not None
    assert regex(r"\d+").match("12a") is None
    assert regex(r"[A-Z]\w*", name="word").match("Hello")["word"] == "Hello"


def test_regex_slashes_and_newlines_survive_serialisation() -> None:
    grammar = regex("a/b\nc")
    assert grammar.match("a/b\nc") is not None
    assert grammar.match("a/bc") is None


def test_repetitions() -> None:
    assert one_or_more("ab").match("ababab") is not None
    assert one_or_more("ab").match("") is None
    assert zero_or_more("ab").match("") is not None
    assert optional("x").match("") is not None
    assert optional("x").match("xx") is None


def test_sequence_and_bounded_repeats() -> None:
    assert sequence("a", min_length=2, max_length=3).match("a") is None
    assert sequence("a", min_length=2, max_length=3).match("aaa") is not None
    assert sequence("a", min_length=2, max_length=3).match("aaaa") is None
    assert exactly_n_repeats("ab", 2).match("abab") is not None
    assert exactly_n_repeats("ab", 2).match("ababab") is None
    assert at_most_n_repeats("c", 2).match("") is not None
    assert at_most_n_repeats("c", 2).match("ccc") is None


def test_capture_of_a_composite_grammar() -> None:
    grammar = capture("(" + regex("[0-9]+", name="n") + ")", "group")
    assert dict(grammar.match("(42)")) == {"group": "(42)", "n": "42"}


def test_capture_list_append() -> None:
    grammar = zero_or_more(capture(regex("[a-z]"), "letters", list_append=True))
    assert grammar.match("xyz")["letters"] == ["x", "y", "z"]
    assert grammar.match("")["letters"] == []


def test_substring_by_word_and_by_character() -> None:
    words = substring("the quick brown fox", name="s")
    assert words.match("quick brown")["s"] == "quick brown"
    assert words.match("quick bro") is None
    chars = substring("the quick brown fox", chunk="character")
    assert chars.match("ick bro") is not None
    assert chars.match("fox the") is None


def test_special_token_is_a_token_not_text() -> None:
    grammar = special_token("<|im_start|>") + "user"
    assert grammar.match("<|im_start|>user") is not None
    assert "<|im_start|>" in grammar.to_lark()
    assert '"<|im_start|>"' not in grammar.to_lark()  # not a string literal


def test_string_is_exact_text() -> None:
    assert string("a.b*").match("a.b*") is not None
    assert string("a.b*").match("aXbbb") is None


def test_lark_grammar_with_its_own_captures() -> None:
    grammar = lark(
        """
        start: item ("," item)*
        item[capture="items"]: /[a-z]+/
        """,
        name="whole",
    )
    result = grammar.match("ab,cd")
    assert result["whole"] == "ab,cd"
    assert grammar.match("ab,,cd") is None


def test_lark_with_inline_json() -> None:
    grammar = lark('start: "v=" %json {"type": "integer", "minimum": 0}')
    assert grammar.match("v=12") is not None
    assert grammar.match("v=-1") is None


def test_gbnf_to_lark_converts_llama_cpp_grammars() -> None:
    text = gbnf_to_lark('root ::= "a" [0-9]+ ("-" [0-9]+)?')
    assert lark(text).match("a12-3") is not None
    assert lark(text).match("a-3") is None


def test_with_temperature_and_token_limit_wrap_any_grammar() -> None:
    hot = with_temperature(select(["a", capture("b", "which")]), 0.7)
    assert dict(hot.match("b")) == {"which": "b"}
    assert "temperature=0.7" in hot.to_llguidance()
    limited = token_limit("(" + gen("inner", regex="[a-z]+") + ")", 5)
    assert limited.match("(abc)")["inner"] == "abc"
    assert "max_tokens=5" in limited.to_llguidance()


def test_an_option_on_a_json_or_lark_alone_goes_on_that_grammar() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    limited = token_limit(rudder.json("j", schema=schema, max_tokens=90), 30)
    assert limited.match('{"a": "x"}')["j"] == '{"a": "x"}'
    assert re.search(r'\[capture="j", max_tokens=30\]: %json', limited.to_lark())
    # The tighter of the two limits holds.
    assert "max_tokens=2" in token_limit(rudder.json(schema=schema, max_tokens=2), 5).to_lark()
    digits = token_limit(lark("start: /[0-9]+/", name="n"), 4)
    assert digits.match("12")["n"] == "12"
    assert "max_tokens=4" in digits.to_llguidance()
    bare = token_limit(lark("start: /[0-9]+/"), 4)  # a lark() with no options is no rule
    assert bare.match("12") is not None
    assert "max_tokens=4" in bare.to_llguidance()
    hot = with_temperature(rudder.json("j", schema=schema), 0.7)
    assert re.search(r'\[capture="j", temperature=0.7\]: %json', hot.to_lark())
    # A temperature of its own is the json's.
    assert (
        "temperature=0.2"
        in with_temperature(rudder.json(schema=schema, temperature=0.2), 0.9).to_lark()
    )


@pytest.mark.parametrize(
    "value",
    [
        lambda: select([rudder.json(schema={"type": "object"}), "none"]),
        lambda: "(" + gen(regex="[a-z]+") + lark("start: /[0-9]+/") + ")",
        lambda: capture(rudder.json(schema={"type": "integer"}) + "!", "both"),
    ],
)
def test_options_refuse_a_json_or_lark_within_more_grammar(value: Any) -> None:
    grammar = value()
    before = grammar.to_llguidance()
    with pytest.raises(GrammarError, match=r"cannot reach a (json|lark)\(\) grammar within"):
        token_limit(grammar, 3)
    with pytest.raises(GrammarError, match=r"give that (json|lark)\(\) its own temperature="):
        with_temperature(grammar, 0.7)
    assert grammar.to_llguidance() == before


def test_json_is_exported_under_guidance_name() -> None:
    grammar = rudder.json("value", schema={"type": "integer"})
    assert grammar.match("17")["value"] == "17"
    assert grammar.match("1.5") is None


def test_json_and_lark_take_temperature_and_max_tokens() -> None:
    number = rudder.json("x", schema={"type": "integer"}, max_tokens=50, temperature=0.5)
    assert number.match("12")["x"] == "12"
    assert "max_tokens=50" in number.to_lark()
    digits = lark("start: /[0-9]+/", name="n", max_tokens=4, temperature=0.2)
    assert digits.match("12")["n"] == "12"
    assert "max_tokens=4" in digits.to_lark()


def test_one_grammar_used_as_a_rule_and_as_a_terminal() -> None:
    @rudder.guidance(stateless=True)
    def word(lm):  # type: ignore[no-untyped-def]
        return lm + regex("[a-z]+")

    shared = word()
    grammar = shared + " " + with_temperature(shared, 0.5)
    assert grammar.match("ab cd") is not None
    assert grammar.match("ab 12") is None


def test_a_regex_with_escaped_line_breaks_matches_them() -> None:
    # re.escape writes a backslash before a line break; Lark needs it as \n.
    pattern = re.escape("a\nb\r<|im_end|>")
    assert regex(pattern).match("a\nb\r<|im_end|>") is not None
    assert regex(pattern).match("anb\r<|im_end|>") is None
