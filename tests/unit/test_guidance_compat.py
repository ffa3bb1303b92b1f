"""guidance programs, and the tests written for them, run with only the import changed.

Each test writes what a guidance user writes (``import rudder as guidance``, guidance's Mock
conventions, guidance's attribute names) and checks that rudder does what guidance does.
"""

from __future__ import annotations

import gc
import inspect
import json as stdlib_json
import re
import types
import weakref

import pytest

import rudder
import rudder as guidance
from rudder import block, capture, gen, models, regex, select, special_token
from rudder.errors import GenerationError, MatchError

# -- the module is the decorator --------------------------------------------------------------


def test_the_module_itself_decorates_stateful_functions() -> None:
    @guidance  # type: ignore[operator]
    def greet(lm: models.Model, name: str) -> models.Model:
        return lm + f"Hello, {name}! " + gen("reply", max_tokens=3)

    out = models.Mock(b"<s>Hello, \xe4\xb8\x96\xe7\x95\x8c! Hi<s>") + greet("世界")
    assert str(out) == "Hello, 世界! Hi"
    assert out["reply"] == "Hi"


def test_the_module_itself_decorates_stateless_functions_with_arguments() -> None:
    @guidance(stateless=True, dedent=False)  # type: ignore[operator]
    def yes_no(lm: models.Model) -> rudder.GrammarNode:
        return lm + select(["yes", "no"], name="answer")

    assert isinstance(yes_no, rudder.GuidanceFunction)
    assert dict(yes_no().match("no") or {}) == {"answer": "no"}
    assert rudder.guidance is not rudder  # the function stays importable by name
    assert callable(rudder)


def test_calling_the_module_with_a_non_function_says_so() -> None:
    with pytest.raises(TypeError, match="decorates functions, not int"):
        guidance(5)  # type: ignore[operator]


# -- MatchError under guidance's names --------------------------------------------------------


def test_match_error_has_guidances_attribute_names() -> None:
    grammar = "id: " + regex("[0-9]{3}", name="id")
    with pytest.raises(MatchError) as raised:
        grammar.match("id: 12</script>", raise_exceptions=True)
    error = raised.value
    assert error.consumed_bytes == b"id: 12" == error.consumed
    assert error.current_byte == b"<" == error.byte
    assert error.allowed_bytes == {bytes([c]) for c in b"0123456789"}


def test_match_error_at_the_end_has_no_current_byte() -> None:
    with pytest.raises(MatchError) as raised:
        select(["日本", "no"]).match("日", raise_exceptions=True)
    assert raised.value.current_byte is None
    assert raised.value.consumed_bytes == "日".encode()


# -- the Mock's conventions -------------------------------------------------------------------


def test_mock_patterns_start_and_end_at_the_start_token() -> None:
    lm = models.Mock(b"<s>this\nis\na\ntest<s>")
    out = lm + gen(max_tokens=20)
    assert str(out) == "this\nis\na\ntest"
    assert out.generation is not None
    assert len(out.generation.tokens) < 20  # ended by <s>, not by max_tokens


def test_mock_continues_a_pattern_after_program_text() -> None:
    lm = models.Mock(b"<s>Count to 10: 1, 2, 3, 4, 5, 6, 7, 8, 9, 10")
    out = lm + "Count to 10: 1, 2, 3, 4, 5, 6, 7, " + gen("text", stop=", 9")
    assert out["text"] == "8"


def test_mock_has_the_start_token_as_a_special_token() -> None:
    out = models.Mock(b"<s>12345") + (special_token("<s>") + gen("n", regex=r"\d{5}"))
    assert out["n"] == "12345"
    assert str(out) == "<s>12345"
    assert out.generation is not None
    first = out.generation.tokens[0]
    assert first.special
    assert first.bytes == b"<s>"


def test_mock_text_that_looks_like_the_start_token_stays_text() -> None:
    # Program text "<s>" is three bytes, never the special token.
    lm = models.Mock(b"<s>bababa") + "<s>"
    out = lm + gen("x", stop="a", max_tokens=5)
    assert out["x"] == "b"
    assert [e for e in out.generation.tokens if e.special] == []  # type: ignore[union-attr]


def test_mock_follows_patterns_longer_than_a_short_context() -> None:
    record = {"name": "Ada </script> 日本 😀", "tags": [f"t{i}" for i in range(60)]}
    text = stdlib_json.dumps(record, ensure_ascii=False)  # llguidance writes no \u escapes
    assert len(text) > 400
    out = models.Mock(f"<s>{text}<s>".encode()) + rudder.json("r", schema={"type": "object"})
    assert out["r"] == text


def test_mock_second_pattern_is_the_fallback_when_the_grammar_forbids_the_first() -> None:
    lm = models.Mock([b"<s>maybe", b"<s>no"])
    assert (lm + select(["yes", "no"], name="a"))["a"] == "no"


def test_mock_noise_that_never_finishes_fails_at_the_context_length() -> None:
    with pytest.raises(GenerationError, match="context is full"):
        models.Mock() + regex("a+b")


# -- the end of an accepting grammar ----------------------------------------------------------


def test_an_open_regex_ends_where_the_model_leaves_it() -> None:
    out = models.Mock(b"<s>123abc") + gen(regex=r"\d+", max_tokens=10, name="test")
    assert out["test"] == "123"


def test_an_unbounded_regex_does_not_run_to_the_context_length() -> None:
    out = models.Mock(b"<s>hello world, and more<s>") + regex("[a-z ]+", name="words")
    assert out["words"] == "hello world"


def test_a_grammar_that_is_not_finished_keeps_to_what_it_allows() -> None:
    # Before the regex can end, the model's preference for "," is overruled, not obeyed.
    out = models.Mock(b"<s>1,234") + regex(r"\d{3}", name="n")
    assert len(out["n"]) == 3
    assert out["n"].isdigit()


def test_sampling_also_ends_an_accepting_grammar() -> None:
    lm = models.Mock(b"<s>42 is the answer", seed=3)
    out = lm + gen(regex=r"[0-9]+", temperature=0.7, name="n", max_tokens=10)
    assert out["n"] == "42"


# -- limits -----------------------------------------------------------------------------------


def test_select_over_more_options_than_llguidance_takes_in_a_row() -> None:
    options = [f"option {i} ✓" for i in range(2_500)]
    grammar = "Pick: " + select(options, name="pick") + "."
    match = grammar.match("Pick: option 2499 ✓.")
    assert match is not None
    assert match["pick"] == "option 2499 ✓"
    assert grammar.match("Pick: option 2500 ✓.") is None
    out = models.Mock(b"<s>Pick: option 1999 \xe2\x9c\x93.<s>") + grammar
    assert out["pick"] == "option 1999 ✓"


def test_a_wide_select_with_a_grammar_option_keeps_its_captures() -> None:
    options: list[object] = [str(i) for i in range(2_100)]
    options.append("<" + gen("tag", regex="[a-z]+") + ">")
    grammar = select(options, name="choice")
    match = grammar.match("<script>")
    assert match is not None
    assert match["tag"] == "script"
    match = grammar.match("2099")
    assert match is not None
    assert match["choice"] == "2099"


@pytest.mark.parametrize(
    "grammar",
    [
        rudder.sequence("ab", max_length=0),
        rudder.exactly_n_repeats("ab", 0),
        rudder.at_most_n_repeats("ab", 0),
    ],
)
def test_zero_repetitions_is_the_empty_grammar(grammar: rudder.GrammarNode) -> None:
    assert (grammar + "c").match("c") is not None
    assert (grammar + "c").match("abc") is None


def test_a_maximum_below_the_minimum_is_refused() -> None:
    with pytest.raises(rudder.errors.GrammarError, match=r"0 <= min <= max"):
        rudder.sequence("ab", min_length=2, max_length=0)


# -- decorators -------------------------------------------------------------------------------


def test_signature_leaves_out_lm() -> None:
    def plain(a: int, b: int = 1, *, c: str, d: str = "x") -> object: ...

    @guidance(stateless=True)  # type: ignore[operator]
    def decorated(lm: object, a: int, b: int = 1, *, c: str, d: str = "x") -> object:
        return lm

    assert inspect.signature(decorated) == inspect.signature(plain)


class Prompter:
    def __init__(self, thing: str = "Hello") -> None:
        self.thing = thing

    def plain(self, a: int = 0, b: int = 1, *, c: str = "") -> object: ...

    @guidance(stateless=True, cache=True)  # type: ignore[operator]
    def cached(self, lm: object, a: int = 0, b: int = 1, *, c: str = "") -> object:
        return lm + self.thing

    @guidance  # type: ignore[operator]
    def stateful(self, lm: models.Model) -> models.Model:
        return lm + self.thing + " " + gen("rest", max_tokens=5)


def test_a_method_signature_leaves_out_self_and_lm() -> None:
    obj = Prompter()
    assert inspect.signature(obj.cached) == inspect.signature(obj.plain)


def test_decorated_methods_are_bound_methods() -> None:
    obj = Prompter("Bonjour </s>")
    method = obj.cached
    assert isinstance(method, types.MethodType)
    assert method.__self__ is obj
    assert weakref.WeakMethod(method)() == method
    assert method().match("Bonjour </s>") is not None
    out = models.Mock(b"<s>Bonjour </s> monde<s>") + obj.stateful()
    assert str(out) == "Bonjour </s> monde"


def test_a_cached_method_keeps_its_grammar_per_instance_and_lets_it_go() -> None:
    first, second = Prompter("one"), Prompter("two")
    assert first.cached(1) is first.cached(1)
    assert first.cached(1) is not first.cached(2)
    assert second.cached(1).match("two") is not None
    alive = weakref.ref(first)
    method = weakref.WeakMethod(first.cached)
    del first
    gc.collect()
    assert alive() is None
    assert method() is None


def test_a_method_reference_works_after_its_instance_is_dropped() -> None:
    method = Prompter("still here").cached
    gc.collect()
    assert method().match("still here") is not None


def test_a_stateful_call_inside_an_f_string_runs_where_it_stands() -> None:
    @guidance  # type: ignore[operator]
    def greet(lm: models.Model, who: str) -> models.Model:
        return lm + "Hi " + who + select(["!", "?"], name="p")

    out = models.Mock(b"<s>Say: Hi \xe6\x97\xa5\xe6\x9c\xac? ok<s>") + f"Say: {greet('日本')} ok"
    assert str(out) == "Say: Hi 日本? ok"
    assert out["p"] == "?"
    with pytest.raises(rudder.errors.StatefulInGrammarError, match=r"^greet\(\) is stateful"):
        select(["a", f"{greet('x')}"])


def test_an_f_string_with_a_stateful_call_composes_with_grammars() -> None:
    @guidance  # type: ignore[operator]
    def name(lm: models.Model) -> models.Model:
        return lm + select(["Ada", "Bob"], name="who")

    steps = f"Dear {name()}, " + gen("rest", max_tokens=8)
    out = models.Mock(b"<s>Dear Bob, hello<s>") + steps
    assert (out["who"], out["rest"]) == ("Bob", "hello")
    assert str(out) == "Dear Bob, hello"


def test_dedent_of_an_empty_formatted_value() -> None:
    @guidance(stateless=True, dedent=True)  # type: ignore[operator]
    def empty(lm: object) -> object:
        s = f"""\
        {""}"""
        return lm + s

    assert str(models.Mock() + empty()) == ""


# -- captures and blocks ----------------------------------------------------------------------


def test_capture_around_a_stateful_call() -> None:
    @guidance  # type: ignore[operator]
    def pick(lm: models.Model) -> models.Model:
        return lm + select(["3", "4"], name="digit")

    lm = models.Mock(b"<s>start|<cap>4</cap>|end<s>")
    out = lm + "start|" + capture("<cap>" + pick() + "</cap>", name="cap") + "|end"
    assert out["cap"] == "<cap>4</cap>"
    assert out["digit"] == "4"
    assert str(out) == "start|<cap>4</cap>|end"
    then = capture(pick(), "c") + "|" + gen("after", max_tokens=3)  # more steps after it
    out = models.Mock(b"<s>4|end<s>") + then
    assert out["c"] == "4"
    assert out["after"] == "end"
    with pytest.raises(rudder.errors.GrammarError, match="list_append=True is not supported"):
        capture(pick(), "cap", list_append=True)


def test_list_append_keeps_equal_values_of_separate_rules() -> None:
    def item() -> rudder.GrammarNode:
        return gen("items", list_append=True, stop="a")

    grammar = item() + "a" + item() + "a" + item()
    assert (grammar.match("bababa") or {})["items"] == ["b", "b", "b"]
    out = models.Mock(b"<s>bababababa") + "<s>" + grammar
    assert out["items"] == ["b", "b", "b"]


def test_block_takes_guidances_opener_and_closer() -> None:
    lm = models.Mock(b"<s>open texta")
    with block(opener="open text", closer="</script>"):
        lm += regex(r".")
    assert str(lm) == "open texta"
    assert str(lm + "") == "open texta</script>"
    with pytest.raises(rudder.errors.RoleError, match="opening= or opener="):
        block(opening="a", opener="b")


def test_a_named_block_is_readable_while_open() -> None:
    lm = models.Mock(b"<s>open texta")
    with block("my_data"):
        lm += "open text"
        lm += regex(r".")
        assert lm["my_data"] == "open texta"
        assert "my_data" in lm
        assert lm.captures["my_data"] == "open texta"
    lm += "tmp"
    assert lm["my_data"] == "open texta"


def test_a_role_inside_a_stateless_function_is_an_error() -> None:
    @guidance(stateless=True)  # type: ignore[operator]
    def with_role(lm: object) -> object:
        with rudder.assistant():
            lm += gen()  # type: ignore[operator]
        return lm

    with pytest.raises(rudder.errors.RoleError, match="inside a stateless function"):
        with_role()
    with rudder.user():  # the failed build left no block open
        pass


# -- a json() value cut by its token limit ----------------------------------------------------


def test_a_json_value_cut_by_max_tokens_is_an_error_not_a_bad_value() -> None:
    lm = models.Mock(b'<s>{"name": "Ada </script> \xf0\x9f\x98\x80", "age": 36}<s>')
    whole = lm + rudder.json("p", max_tokens=60)
    assert stdlib_json.loads(whole["p"]) == {"name": "Ada </script> 😀", "age": 36}
    with pytest.raises(GenerationError, match=r"json\('p'\) was cut .* raise max_tokens"):
        lm + rudder.json("p", max_tokens=3)
    with pytest.raises(GenerationError, match=r"json\('xs'\) was cut"):
        lm + rudder.json("xs", max_tokens=3, list_append=True)


def test_the_start_token_written_by_the_grammar_is_kept_at_the_end_too() -> None:
    # <s> is the Mock's end token; written by the grammar, it is output, not an ending.
    s = special_token("<s>")
    out = models.Mock() + (s + gen("n", regex=r"\d{5}") + s)
    assert re.fullmatch(r"<s>\d{5}<s>", str(out))
    assert out.generation is not None
    assert [t.bytes for t in out.generation.tokens if t.special] == [b"<s>", b"<s>"]


def test_the_mock_records_the_temperature_of_each_chosen_token() -> None:
    lm = models.Mock(b"<s>Hot: 123 cold: 45<s>")
    out = lm + "Hot: " + gen(regex="[0-9]+", temperature=0.7) + " cold: " + gen(regex="[0-9]+")
    temperatures = out.engine.called_temperatures  # type: ignore[attr-defined]
    assert 0.7 in temperatures
    assert set(temperatures) <= {0.7, 0.0}


def test_the_mock_keeps_only_the_latest_temperatures() -> None:
    engine = models.Mock().engine
    kept = engine.TEMPERATURES_KEPT  # type: ignore[attr-defined]
    for index in range(2 * kept + 1):
        engine.note_sampling(float(index))  # type: ignore[attr-defined]
    temperatures = engine.called_temperatures  # type: ignore[attr-defined]
    assert temperatures == [float(i) for i in range(kept + 1, 2 * kept + 1)]
