"""Text stays text on the Mock: special tokens come only from the chat template's markers and
from ``special_token()`` with the exact text of one of its special tokens (the same programs
run on every Transformers tokenizer in ``tests/models/test_text_stays_text.py``)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from tests.hostile_text import HOSTILE, PROGRAMS, specials_outside_markers

from rudder import assistant, gen, models, select, special_token, user
from rudder.errors import GrammarError
from rudder.models import Model
from rudder.models._mock import SPECIAL_TOKENS


@pytest.mark.parametrize("program", PROGRAMS.values(), ids=PROGRAMS.keys())
def test_hostile_text_never_becomes_a_special_token(program: Callable[[Model], Model]) -> None:
    out = program(models.Mock([HOSTILE]))
    assert specials_outside_markers(out) == []
    assert out.generation is not None
    assert not any(token.special for token in out.generation.tokens)


def test_the_model_writing_hostile_text_in_a_chat_leaves_only_the_template_markers() -> None:
    # The Mock's patterns end at "<s>" (guidance's convention), so what it writes leaves it out.
    written = HOSTILE.replace("<s>", "")
    lm = models.Mock([written])
    with user():
        lm += "Quote: " + HOSTILE
    with assistant():
        lm += gen("reply", max_tokens=100) + select(["!", HOSTILE])
    with user():
        lm += "ok"
    assert written in lm["reply"]
    assert specials_outside_markers(lm) == []


def test_hostile_select_options_are_generated_as_text() -> None:
    out = models.Mock(["a<|im_end|>"]) + select(["a<|im_end|>", "c"], name="pick")
    assert out["pick"] == "a<|im_end|>"
    assert str(out) == "a<|im_end|>"


@pytest.mark.parametrize("text", SPECIAL_TOKENS)
def test_special_token_with_the_exact_text_emits_that_token(text: str) -> None:
    lm = models.Mock()
    out = lm + "Say: " + special_token(text)
    assert out.generation is not None
    (token,) = out.generation.tokens
    assert token.token_id == lm.engine.tokenizer.special_token_ids[text]
    assert token.special
    assert specials_outside_markers(out) == [token.token_id]


@pytest.mark.parametrize(
    "forged",
    [
        '<|im_end|> "x" <|im_start|>',
        "<|im_end|><|im_start|>",
        "<|im_end|>\n",
        " <|im_end|>",
        "im_end",
        "<[2]>",
        "<[0-300]>",
        "<>",
        "",
        "<|im_end|>\x1b[2J",
        None,
        b"<|im_end|>",
    ],
)
def test_special_token_refuses_anything_but_one_token_when_built(forged: object) -> None:
    with pytest.raises(GrammarError, match="exact text of one special token"):
        special_token(forged)  # type: ignore[arg-type]


def test_special_token_the_model_does_not_have_is_refused_and_nothing_changes() -> None:
    lm = models.Mock() + "Hi"
    entries, node = lm.entries, lm.trace
    with pytest.raises(GrammarError) as raised:
        lm + (select(["a", "b"]) + special_token("</s>"))
    message = str(raised.value)
    assert "special_token('</s>') names no special token" in message
    assert "'<s>', '<|im_start|>', '<|im_end|>'" in message
    assert lm.entries == entries
    assert lm.trace is node
    assert lm.engine.forward_calls == 0


def test_plain_encoding_never_yields_a_special_token() -> None:
    tokenizer = models.Mock().engine.tokenizer
    for text in SPECIAL_TOKENS:
        ids = tokenizer.encode(f"a{text}b", False)
        assert not tokenizer.special_ids.intersection(ids)
        assert b"".join(tokenizer.token_bytes(i) for i in ids) == f"a{text}b".encode()
        assert tokenizer.ll.tokenize_str(text) == tokenizer.encode(text, False)
        assert tokenizer.encode(text, True) == [tokenizer.special_token_ids[text]]
