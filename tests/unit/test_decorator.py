"""Tests for ``rudder.guidance``: stateless grammars, recursion, cache, stateful calls, dedent."""

from __future__ import annotations

import pytest

import rudder
from rudder import (
    GrammarNode,
    StatefulCall,
    capture,
    gen,
    guidance,
    one_or_more,
    optional,
    regex,
    select,
    zero_or_more,
)
from rudder.errors import GrammarError, StatefulInGrammarError


def matches(grammar: GrammarNode, text: str) -> bool:
    # ``match`` returns a Mapping of captures, which is falsy when there are none.
    return grammar.match(text) is not None


class StandInLM:
    """A stand-in for a Model: ``+`` records what was added and returns a new instance.

    Deferred values (stateful calls and sequences of steps) are applied to the stand-in the
    way a Model applies them: by calling them with the model.
    """

    def __init__(self, added: tuple[object, ...] = ()) -> None:
        self.added = added

    def __add__(self, other: object) -> StandInLM:
        if callable(other):
            result = other(self)
            assert isinstance(result, StandInLM)
            return result
        return StandInLM((*self.added, other))


# -- module-level grammars (recursion through globals) --------------------------------------


@guidance(stateless=True)
def parens(lm):
    return lm + select(["(" + parens() + ")", ""])


@guidance(stateless=True)
def value(lm):
    return lm + select([regex(r"[0-9]+"), "[" + value() + zero_or_more("," + value()) + "]"])


@guidance(stateless=True)
def expr(lm):
    return lm + term() + zero_or_more(select(["+", "-"]) + term())


@guidance(stateless=True)
def term(lm):
    return lm + select([regex(r"[0-9]+"), "(" + expr() + ")"])


@guidance(stateless=True)
def items(lm, sep):
    return lm + regex(r"[a-z]+") + optional(sep + items(sep))


# -- stateless functions ----------------------------------------------------------------------


def test_stateless_function_returns_a_grammar_node():
    @guidance(stateless=True)
    def yes_or_no(lm):
        return lm + select(["yes", "no"])

    grammar = yes_or_no()
    assert isinstance(grammar, GrammarNode)
    assert matches(grammar, "yes")
    assert matches(grammar, "no")
    assert not matches(grammar, "maybe")
    assert not matches(grammar, "yesno")
    assert not matches(grammar, "")


def test_stateless_function_receives_positional_and_keyword_arguments():
    @guidance(stateless=True)
    def labelled(lm, label, digits, *, suffix="."):
        return lm + label + ": " + regex(f"[0-9]{{{digits}}}") + suffix

    grammar = labelled("Code", 3)
    assert matches(grammar, "Code: 123.")
    assert not matches(grammar, "Code: 12.")
    assert not matches(grammar, "Code: 1234.")
    assert not matches(grammar, "Name: 123.")

    other = labelled("Pin", digits=2, suffix="!")
    assert matches(other, "Pin: 42!")
    assert not matches(other, "Pin: 42.")


def test_stateless_function_default_arguments_are_used():
    @guidance(stateless=True)
    def greeting(lm, name="world", punctuation="!"):
        return lm + "hello " + name + punctuation

    assert matches(greeting(), "hello world!")
    assert matches(greeting("you"), "hello you!")
    assert matches(greeting(punctuation="?"), "hello world?")
    assert not matches(greeting(), "hello you!")


def test_stateless_function_accepts_unhashable_arguments():
    @guidance(stateless=True)
    def one_of(lm, options):
        return lm + select(options)

    grammar = one_of(["red", "green"])
    assert matches(grammar, "red")
    assert matches(grammar, "green")
    assert not matches(grammar, "blue")


def test_stateless_grammars_compose_and_keep_captures():
    @guidance(stateless=True)
    def answer(lm, name):
        return lm + "Answer: " + select(["yes", "no"], name=name)

    grammar = "Q? " + answer("first") + ", " + answer("second")
    result = grammar.match("Q? Answer: yes, Answer: no")
    assert result is not None
    assert dict(result) == {"first": "yes", "second": "no"}
    assert not matches(grammar, "Q? Answer: yes, Answer: maybe")


def test_stateless_function_can_use_other_stateless_functions():
    @guidance(stateless=True)
    def digit(lm):
        return lm + regex(r"[0-9]")

    @guidance(stateless=True)
    def number(lm):
        return lm + one_or_more(digit())

    grammar = number()
    assert matches(grammar, "7")
    assert matches(grammar, "2024")
    assert not matches(grammar, "")
    assert not matches(grammar, "12a")


def test_stateless_function_runs_its_body_on_each_call():
    runs = []

    @guidance(stateless=True)
    def word(lm, text):
        runs.append(text)
        return lm + text

    assert runs == []
    word("a")
    word("b")
    assert runs == ["a", "b"]


def test_stateless_function_returning_none_raises_grammar_error():
    @guidance(stateless=True)
    def forgot_return(lm):
        lm += "text"

    with pytest.raises(GrammarError, match=r"forgot_return\(\) returned None"):
        forgot_return()


def test_stateless_function_returning_a_non_grammar_raises_grammar_error():
    @guidance(stateless=True)
    def returns_dict(lm):
        return {"not": "a grammar"}

    with pytest.raises(GrammarError, match="dict"):
        returns_dict()


def test_stateless_function_raising_twice_raises_twice():
    @guidance(stateless=True)
    def broken(lm):
        raise KeyError("broken body")

    with pytest.raises(KeyError):
        broken()
    # The failed build leaves nothing behind that would turn the next call into a reference.
    with pytest.raises(KeyError):
        broken()


def test_guidance_rejects_non_callables():
    with pytest.raises(TypeError, match="int"):
        guidance(42)


# -- recursion ----------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "()", "(())", "((()))", "(((((())))))"])
def test_recursive_balanced_parentheses_match(text):
    assert matches(parens(), text)


@pytest.mark.parametrize("text", ["(", ")", "(()", "())", ")(", "(()))", "()()", "(x)"])
def test_recursive_balanced_parentheses_reject(text):
    assert not matches(parens(), text)


@pytest.mark.parametrize(
    "text", ["7", "42", "[1]", "[1,2,3]", "[1,[2,3]]", "[[[4]]]", "[1,[2,[3,4]],5]"]
)
def test_recursive_nested_list_matches(text):
    assert matches(value(), text)


@pytest.mark.parametrize(
    "text", ["", "[", "]", "[]", "[1,]", "[,1]", "[1,[2]", "[[1]]]", "1,2", "[a]"]
)
def test_recursive_nested_list_rejects(text):
    assert not matches(value(), text)


def test_recursive_grammar_with_captures_inside():
    @guidance(stateless=True)
    def tree(lm):
        leaf = regex(r"[0-9]+", name="leaf", list_append=True)
        return lm + select([leaf, "[" + tree() + zero_or_more("," + tree()) + "]"])

    result = tree().match("[1,[22,3],[[4]]]")
    assert result is not None
    assert result["leaf"] == ["1", "22", "3", "4"]


@pytest.mark.parametrize("text", ["1", "1+2", "(1)", "(1+2)-3", "((1))", "1-(2+(3-4))+5"])
def test_mutual_recursion_expr_term_matches(text):
    assert matches(expr(), text)


@pytest.mark.parametrize("text", ["", "+", "1+", "(1", "1)", "((1)", "(1+2))", "()", "1++2"])
def test_mutual_recursion_expr_term_rejects(text):
    assert not matches(expr(), text)


def test_mutual_recursion_entered_through_the_other_function():
    grammar = term()
    assert matches(grammar, "7")
    assert matches(grammar, "(1+(2-3))")
    assert not matches(grammar, "1+2")
    assert not matches(grammar, "(1+2")


def test_mutual_recursion_between_local_functions():
    @guidance(stateless=True)
    def clause(lm):
        return lm + select(["x", "not " + atom()])

    @guidance(stateless=True)
    def atom(lm):
        return lm + select(["y", "{" + clause() + "}"])

    grammar = clause()
    assert matches(grammar, "x")
    assert matches(grammar, "not y")
    assert matches(grammar, "not {x}")
    assert matches(grammar, "not {not {not y}}")
    assert not matches(grammar, "not {not y")
    assert not matches(grammar, "y")
    assert not matches(grammar, "not x")


def test_recursion_with_an_argument():
    comma = items(",")
    assert matches(comma, "a")
    assert matches(comma, "a,b")
    assert matches(comma, "ab,cd,ef,gh")
    assert not matches(comma, "a;b")
    assert not matches(comma, "a,")
    assert not matches(comma, ",a")

    semicolon = items(";")
    assert matches(semicolon, "a;b;c")
    assert not matches(semicolon, "a,b")


def test_recursion_with_a_keyword_argument():
    @guidance(stateless=True)
    def words(lm, *, sep):
        return lm + regex(r"[a-z]+") + optional(sep + words(sep=sep))

    grammar = words(sep=" | ")
    assert matches(grammar, "a | b | c")
    assert not matches(grammar, "a|b")
    assert not matches(grammar, "a | ")


def test_recursion_with_changing_arguments_terminates():
    @guidance(stateless=True)
    def nest(lm, depth):
        if depth == 0:
            return lm + "x"
        return lm + select(["x", "(" + nest(depth - 1) + ")"])

    grammar = nest(3)
    assert matches(grammar, "x")
    assert matches(grammar, "(((x)))")
    assert not matches(grammar, "((((x))))")
    assert not matches(grammar, "((x)")


def test_recursive_function_body_runs_once_per_build():
    runs = []

    @guidance(stateless=True)
    def chain(lm):
        runs.append(1)
        return lm + "a" + optional(chain())

    grammar = chain()
    assert len(runs) == 1
    assert matches(grammar, "aaaa")
    assert not matches(grammar, "")


# -- cache ----------------------------------------------------------------------------------------


def test_cache_returns_the_identical_node_for_the_same_arguments():
    runs = []

    @guidance(stateless=True, cache=True)
    def repeated(lm, text, times=2):
        runs.append((text, times))
        return lm + text * times

    first = repeated("ab")
    assert repeated("ab") is first
    assert runs == [("ab", 2)]

    other = repeated("ab", 3)
    assert other is not first
    assert repeated("ab", 3) is other
    assert runs == [("ab", 2), ("ab", 3)]
    assert matches(first, "abab")
    assert matches(other, "ababab")
    assert not matches(first, "ababab")


def test_without_cache_each_call_builds_a_distinct_node():
    runs = []

    @guidance(stateless=True)
    def digits(lm):
        runs.append(1)
        return lm + regex(r"[0-9]+")

    first = digits()
    second = digits()
    assert first is not second
    assert len(runs) == 2
    for grammar in (first, second):
        assert matches(grammar, "123")
        assert not matches(grammar, "12a")


def test_cache_with_recursion():
    @guidance(stateless=True, cache=True)
    def brackets(lm):
        return lm + select(["[" + brackets() + "]", "."])

    grammar = brackets()
    assert brackets() is grammar
    assert matches(grammar, "[[.]]")
    assert not matches(grammar, "[[.]")


# -- stateful functions -------------------------------------------------------------------------


def test_stateful_call_runs_nothing_until_applied():
    runs = []

    @guidance
    def greet(lm, name, punctuation="!"):
        runs.append((lm, name, punctuation))
        lm += "Hello, "
        lm += name + punctuation
        return lm

    call = greet("Ann", punctuation="?")
    assert isinstance(call, StatefulCall)
    assert runs == []

    lm = StandInLM()
    result = call(lm)
    assert runs == [(lm, "Ann", "?")]
    assert result.added == ("Hello, ", "Ann?")
    assert lm.added == ()


def test_stateful_with_empty_parentheses_behaves_the_same():
    runs = []

    @guidance()
    def note(lm, text):
        runs.append(text)
        return lm + ("note: " + text)

    call = note("hi")
    assert isinstance(call, StatefulCall)
    assert runs == []
    result = StandInLM(("start",)) + call
    assert runs == ["hi"]
    assert result.added == ("start", "note: hi")


def test_stateful_function_passes_the_lm_first():
    seen = []

    @guidance
    def record(lm, *args, **kwargs):
        seen.append((lm, args, kwargs))
        return lm

    lm = StandInLM()
    call = record(1, "two", three=3)
    assert seen == []
    assert call(lm) is lm
    assert seen == [(lm, (1, "two"), {"three": 3})]


def test_stateful_call_can_be_applied_more_than_once():
    runs = []

    @guidance
    def tick(lm):
        runs.append(1)
        return lm + "tick"

    call = tick()
    assert (StandInLM() + call).added == ("tick",)
    assert (StandInLM(("a",)) + call).added == ("a", "tick")
    assert len(runs) == 2


def test_text_plus_stateful_call_is_a_sequence_applied_in_order():
    runs = []

    @guidance
    def step(lm, label):
        runs.append(label)
        return lm + f"[{label}]"

    sequence = "intro " + step("one")
    assert runs == []
    assert not isinstance(sequence, GrammarNode)

    result = StandInLM() + sequence
    assert runs == ["one"]
    assert result.added == ("intro ", "[one]")


def test_stateful_call_plus_grammar_is_a_sequence_applied_in_order():
    @guidance
    def ask(lm, question):
        return lm + f"Q: {question}\n"

    answer = gen("answer", stop="\n")
    sequence = ask("why?") + answer
    result = StandInLM() + sequence
    assert result.added == ("Q: why?\n", answer)


def test_longer_sequences_keep_their_order():
    @guidance
    def mark(lm, label):
        return lm + label

    tail = select(["x", "y"])
    sequence = "a" + mark("b") + "c" + mark("d") + tail
    result = StandInLM() + sequence
    assert result.added == ("a", "b", "c", "d", tail)


def test_grammar_plus_stateful_call_is_a_sequence():
    @guidance
    def mark(lm, label):
        return lm + label

    head = regex(r"[0-9]+")
    result = StandInLM() + (head + mark("!"))
    assert result.added == (head, "!")


def test_stateful_function_can_call_other_stateful_functions():
    @guidance
    def inner(lm, text):
        return lm + text.upper()

    @guidance
    def outer(lm, text):
        lm += "<"
        lm += inner(text)
        lm += ">"
        return lm

    assert (StandInLM() + outer("hi")).added == ("<", "HI", ">")


def test_stateful_function_returning_none_raises_grammar_error():
    @guidance
    def forgot(lm):
        lm += "text"

    call = forgot()
    with pytest.raises(GrammarError, match="return lm"):
        call(StandInLM())
    with pytest.raises(GrammarError, match=r"forgot\(\)"):
        StandInLM() + call


# -- stateful inside grammars --------------------------------------------------------------------


def test_adding_a_stateful_call_inside_a_stateless_function_raises():
    @guidance
    def chat(lm):
        return lm + "hi"

    @guidance(stateless=True)
    def grammar(lm):
        return lm + chat()

    with pytest.raises(StatefulInGrammarError) as raised:
        grammar()
    message = str(raised.value)
    assert "chat()" in message
    assert "grammar()" in message
    assert "@guidance(stateless=True)" in message


def test_augmented_stateful_call_inside_a_stateless_function_raises():
    @guidance
    def chat(lm):
        return lm + "hi"

    @guidance(stateless=True)
    def grammar(lm):
        lm += "before "
        lm += chat()
        lm += " after"
        return lm

    with pytest.raises(StatefulInGrammarError, match=r"stateless=True"):
        grammar()


def test_select_of_a_stateful_call_inside_a_stateless_function_raises():
    @guidance
    def chat(lm):
        return lm + "hi"

    @guidance(stateless=True)
    def grammar(lm):
        return lm + select([chat(), "no"])

    with pytest.raises(StatefulInGrammarError) as raised:
        grammar()
    message = str(raised.value)
    assert "chat()" in message
    assert "@guidance(stateless=True)" in message


@pytest.mark.parametrize(
    "wrap",
    [
        lambda value: select([value]),
        lambda value: select(["a", value]),
        lambda value: one_or_more(capture(value, "x")),
        lambda value: one_or_more(value),
        lambda value: optional(value),
    ],
)
def test_library_functions_reject_stateful_calls(wrap):
    @guidance
    def chat(lm):
        return lm + "hi"

    with pytest.raises(StatefulInGrammarError, match=r"@guidance\(stateless=True\)"):
        wrap(chat())


def test_stateful_in_grammar_error_is_a_grammar_error():
    assert issubclass(StatefulInGrammarError, GrammarError)
    assert issubclass(StatefulInGrammarError, rudder.errors.RudderError)


# -- dedent ---------------------------------------------------------------------------------------


def test_dedent_removes_common_indentation_of_a_multiline_literal():
    @guidance(stateless=True)
    def prompt(lm):
        lm += """Instructions:
            first line
              indented more
            last line"""
        return lm

    grammar = prompt()
    assert matches(grammar, "Instructions:\nfirst line\n  indented more\nlast line")
    assert not matches(
        grammar,
        "Instructions:\n            first line\n              indented more\n            last line",
    )


def test_dedent_of_a_literal_ending_with_a_newline():
    @guidance(stateless=True)
    def prompt(lm):
        lm += """Begin
            middle
            """
        return lm + "end"

    grammar = prompt()
    assert matches(grammar, "Begin\nmiddle\nend")
    assert not matches(grammar, "Begin\n            middle\n            end")


def test_dedent_of_a_multiline_fstring_with_formatted_values():
    @guidance(stateless=True)
    def profile(lm, name, age, bio):
        lm += f"""Name: {name!r}
            Age: {age:03d}
              Bio: {bio}
            Total: {age * 2} units"""
        return lm

    grammar = profile("Ann", 7, "likes tea")
    assert matches(grammar, "Name: 'Ann'\nAge: 007\n  Bio: likes tea\nTotal: 14 units")
    pad = " " * 12
    indented = f"Name: 'Ann'\n{pad}Age: 007\n{pad}  Bio: likes tea\n{pad}Total: 14 units"
    assert not matches(grammar, indented)


def test_dedent_leaves_formatted_values_unchanged():
    @guidance(stateless=True)
    def quote(lm, text):
        lm += f"""Quote:
            {text}
            end"""
        return lm

    grammar = quote("one\n    two")
    assert matches(grammar, "Quote:\none\n    two\nend")
    assert not matches(grammar, "Quote:\none\ntwo\nend")


def test_dedent_of_an_fstring_embedding_grammars():
    @guidance(stateless=True)
    def form(lm):
        lm += f"""Answer: {select(["yes", "no"], name="answer")}
            Reason: {gen("reason", regex="[a-z ]+")}
            Done"""
        return lm

    grammar = form()
    result = grammar.match("Answer: no\nReason: too late\nDone")
    assert result is not None
    assert dict(result) == {"answer": "no", "reason": "too late"}
    assert not matches(grammar, "Answer: no\n            Reason: too late\n            Done")


def test_dedent_false_keeps_the_indentation():
    @guidance(stateless=True, dedent=False)
    def prompt(lm, name):
        lm += f"""Hello {name}
            indented line"""
        return lm

    grammar = prompt("Bo")
    assert matches(grammar, "Hello Bo\n            indented line")
    assert not matches(grammar, "Hello Bo\nindented line")


def test_dedent_in_a_stateful_function():
    @guidance
    def instructions(lm, task):
        lm += f"""Task: {task}
            Steps:
              1. think
            Go."""
        lm += """Tail
            line"""
        return lm

    result = StandInLM() + instructions("sum")
    assert result.added == ("Task: sum\nSteps:\n  1. think\nGo.", "Tail\nline")


def test_dedent_false_in_a_stateful_function():
    @guidance(dedent=False)
    def instructions(lm):
        lm += """Top
            line"""
        return lm

    result = StandInLM() + instructions()
    assert result.added == ("Top\n            line",)


def test_dedent_leaves_single_line_strings_alone():
    @guidance(stateless=True)
    def spaced(lm, text):
        return lm + "   lead " + text + "   "

    assert matches(spaced("x"), "   lead x   ")


def test_dedent_keeps_a_closure_working():
    def make(greeting):
        punctuation = "!"

        @guidance(stateless=True)
        def hello(lm, name):
            lm += f"""{greeting}, {name}{punctuation}
                How are you{punctuation}"""
            return lm

        return hello

    grammar = make("Hi")("Ann")
    assert matches(grammar, "Hi, Ann!\nHow are you!")
    assert not matches(grammar, "Hi, Ann!\n                How are you!")
    assert matches(make("Hey")("Bo"), "Hey, Bo!\nHow are you!")


def test_dedent_closure_sees_later_rebinding_of_the_enclosing_variable():
    def make():
        word = "before"

        @guidance(stateless=True)
        def show(lm):
            lm += f"""value:
                {word}"""
            return lm

        word = "after"
        return show

    assert matches(make()(), "value:\nafter")
    assert not matches(make()(), "value:\nbefore")


def test_dedent_closure_in_a_stateful_function():
    def make(prefix):
        @guidance
        def tag(lm, text):
            lm += f"""{prefix}
                {text}"""
            return lm

        return tag

    assert (StandInLM() + make(">>")("body")).added == (">>\nbody",)


def test_recursive_function_defined_inside_a_function_with_dedent():
    @guidance(stateless=True)
    def nested(lm):
        inner = select([nested(), "x"])
        lm += f"""<
            {inner}
            >"""
        return lm

    grammar = nested()
    assert matches(grammar, "<\nx\n>")
    assert matches(grammar, "<\n<\nx\n>\n>")
    assert matches(grammar, "<\n<\n<\nx\n>\n>\n>")
    assert not matches(grammar, "<\n            x\n            >")
    assert not matches(grammar, "<\n<\nx\n>")
    assert not matches(grammar, "x")


def test_recursive_closure_with_an_argument_and_dedent():
    def make(open_text, close_text):
        @guidance(stateless=True)
        def block(lm, body):
            lm += f"""{open_text}
                {select([body, block(body)])}
                {close_text}"""
            return lm

        return block

    grammar = make("begin", "end")("stmt")
    assert matches(grammar, "begin\nstmt\nend")
    assert matches(grammar, "begin\nbegin\nstmt\nend\nend")
    assert not matches(grammar, "begin\nbegin\nstmt\nend")
    assert not matches(grammar, "begin\n                stmt\n                end")


def test_dedent_of_a_literal_opened_with_a_backslash_newline():
    @guidance(stateless=True)
    def ask(lm, question):
        lm += f"""\
        Question: {question}
        Answer: """
        return lm

    assert matches(ask("Why?"), "Question: Why?\nAnswer: ")
    assert not matches(ask("Why?"), "        Question: Why?\nAnswer: ")


def test_dedent_leaves_escaped_newlines_in_single_line_strings_alone():
    @guidance(stateless=True)
    def code(lm):
        lm += "def f():\n    return 1"
        return lm + ("\n# two literals\n    # on two lines\n")

    expected = "def f():\n    return 1\n# two literals\n    # on two lines\n"
    assert matches(code(), expected)


def test_dedent_falls_back_for_a_lambda():
    table = {
        "a": guidance(lambda lm: lm + "x", stateless=True),
    }
    assert matches(table["a"](), "x")


def test_cache_hits_on_methods_per_instance():
    class Holder:
        def __init__(self, word):
            self.word = word

        @guidance(stateless=True, cache=True)
        def grammar(self, lm):
            return lm + self.word

    first, second = Holder("a"), Holder("b")
    assert first.grammar() is first.grammar()
    assert second.grammar() is not first.grammar()
    assert matches(second.grammar(), "b")


# -- methods --------------------------------------------------------------------------------------


class Form:
    def __init__(self, label, choices):
        self.label = label
        self.choices = choices

    @guidance(stateless=True)
    def field(self, lm, name):
        return lm + self.label + ": " + select(self.choices, name=name)

    @guidance(stateless=True)
    def nested(self, lm):
        return lm + select([self.label, "(" + self.nested() + ")"])

    @guidance
    def fill(self, lm, value):
        lm += f"""{self.label}:
            {value}"""
        return lm


def test_stateless_method_uses_the_instance():
    form = Form("Color", ["red", "blue"])
    grammar = form.field("color")
    assert isinstance(grammar, GrammarNode)
    result = grammar.match("Color: blue")
    assert result is not None
    assert dict(result) == {"color": "blue"}
    assert not matches(grammar, "Color: green")
    assert not matches(grammar, "Size: red")

    other = Form("Size", ["S", "M"]).field("size")
    assert matches(other, "Size: M")
    assert not matches(other, "Color: red")


def test_recursive_stateless_method():
    grammar = Form("leaf", []).nested()
    assert matches(grammar, "leaf")
    assert matches(grammar, "((leaf))")
    assert not matches(grammar, "((leaf)")
    assert matches(Form("x", []).nested(), "(x)")
    assert not matches(Form("x", []).nested(), "(leaf)")


def test_stateful_method_passes_self_and_lm():
    form = Form("Name", [])
    call = form.fill("Ann")
    assert isinstance(call, StatefulCall)
    result = StandInLM() + call
    assert result.added == ("Name:\nAnn",)
    assert (StandInLM() + Form("City", []).fill("Oslo")).added == ("City:\nOslo",)


def test_stateful_method_runs_nothing_until_applied():
    runs = []

    class Agent:
        def __init__(self, name):
            self.name = name

        @guidance
        def speak(self, lm, text):
            runs.append((self, lm, text))
            return lm + f"{self.name}: {text}"

    agent = Agent("bot")
    call = agent.speak("hello")
    assert runs == []
    lm = StandInLM()
    result = call(lm)
    assert runs == [(agent, lm, "hello")]
    assert result.added == ("bot: hello",)


# -- metadata ----------------------------------------------------------------------------------


def test_stateless_function_keeps_name_and_doc():
    @guidance(stateless=True)
    def documented(lm):
        """Builds a documented grammar."""
        return lm + "x"

    assert documented.__name__ == "documented"
    assert documented.__doc__ == "Builds a documented grammar."


def test_stateful_function_keeps_name_and_doc():
    @guidance
    def chat_step(lm):
        """One step of a chat."""
        return lm

    assert chat_step.__name__ == "chat_step"
    assert chat_step.__doc__ == "One step of a chat."

    @guidance()
    def other_step(lm):
        """Another step."""
        return lm

    assert other_step.__name__ == "other_step"
    assert other_step.__doc__ == "Another step."


def test_methods_keep_name_and_doc():
    class Holder:
        @guidance(stateless=True)
        def rule(self, lm):
            """A rule on a class."""
            return lm + "r"

    assert Holder.rule.__name__ == "rule"
    assert Holder.rule.__doc__ == "A rule on a class."
    assert Holder().rule.__name__ == "rule"
    assert Holder().rule.__doc__ == "A rule on a class."


def test_decorated_object_is_a_guidance_function():
    @guidance(stateless=True)
    def grammar(lm):
        return lm

    @guidance
    def step(lm):
        return lm

    assert isinstance(grammar, rudder.GuidanceFunction)
    assert isinstance(step, rudder.GuidanceFunction)
