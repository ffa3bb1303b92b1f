"""Text stays text on every Transformers tokenizer: special tokens enter the state only from
the chat template's markers and from ``special_token()`` with the exact text of one.

Each program below puts hostile text where a special token could sneak in (fixed grammar
text, f-strings, regexes, ``select`` options, JSON constants, the bytes token healing
re-makes) and the test checks the token ids the model is then given: the only special ids
are the template's own markers (and the start-of-text token the tokenizer adds).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from json import loads
from pathlib import Path

import pytest
from tests.hostile_text import HOSTILE, PROGRAMS, specials_outside_markers

from rudder import assistant, gen, json, models, select, special_token, user
from rudder.errors import GrammarError
from rudder.models import Model

ENGINES = ("llama", "gpt2", "builtin", "sentencepiece")


@pytest.fixture(scope="module", params=ENGINES)
def engine_lm(request: pytest.FixtureRequest) -> Model:
    """One Model per tokenizer, loaded once (Models are immutable)."""
    import torch

    torch.set_num_threads(1)  # module fixtures run before the autouse fixture
    if request.param == "builtin":
        return models.Transformers(echo=False)
    path: Path = request.getfixturevalue(f"{request.param}_path")
    return models.Transformers(str(path), echo=False)


@pytest.mark.parametrize("program", PROGRAMS.values(), ids=PROGRAMS.keys())
def test_hostile_text_never_becomes_a_special_token(
    engine_lm: Model, program: Callable[[Model], Model]
) -> None:
    out = program(engine_lm)
    assert specials_outside_markers(out) == []
    assert out.generation is not None
    assert not any(token.special for token in out.generation.tokens)


def test_the_hostile_text_is_written_as_given(engine_lm: Model) -> None:
    assert str(engine_lm + "Q: " + gen("x", regex=re.escape(HOSTILE))) == "Q: " + HOSTILE
    assert (engine_lm + select(["a<|im_end|>", "a<|im_end|>"], name="x"))["x"] == "a<|im_end|>"
    assert loads((engine_lm + json("x", schema={"const": HOSTILE}))["x"]) == HOSTILE


def test_untrusted_text_in_a_message_leaves_only_the_template_markers(engine_lm: Model) -> None:
    lm = engine_lm
    with user():
        lm += "Quote: " + HOSTILE
    with assistant():
        lm += gen("reply", max_tokens=3)
    with user():
        lm += f"And {HOSTILE}: {select(['yes', 'no'], name='answer')}"
    assert specials_outside_markers(lm) == []
    assert HOSTILE in str(lm)


def test_special_token_emits_the_exact_special_token(engine_lm: Model) -> None:
    tokenizer = engine_lm.engine.tokenizer
    eos = tokenizer.special_tokens["eos_token"]
    out = engine_lm + "Hi" + special_token(eos)
    assert out.generation is not None
    (token,) = out.generation.tokens
    assert token.token_id == tokenizer.eos_token_id
    assert token.special
    assert specials_outside_markers(out) == [tokenizer.eos_token_id]


@pytest.mark.parametrize("text", ["<|bogus|>", "<|IM_END|>", "<S>", "<thinking>"])
def test_special_token_of_another_tokenizer_is_refused_when_it_meets_the_model(
    engine_lm: Model, text: str
) -> None:
    lm = engine_lm + "Hi"
    entries, node = lm.entries, lm.trace
    specials = ", ".join(repr(t) for t in lm.engine.tokenizer.special_token_ids)
    with pytest.raises(GrammarError, match="names no special token") as raised:
        lm + "then " + special_token(text)
    assert specials in str(raised.value)
    assert lm.entries == entries
    assert lm.trace is node


def test_special_token_names_only_the_tokens_the_tokenizer_has(engine_lm: Model) -> None:
    tokenizer = engine_lm.engine.tokenizer
    known = set(tokenizer.special_token_ids)
    sentencepiece = {"<unk>", "<s>", "</s>", "<think>"}
    chatml = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}
    assert known in (sentencepiece, chatml)
    for text in known:
        ids = (engine_lm + special_token(text)).generation.tokens  # type: ignore[union-attr]
        assert [t.token_id for t in ids] == [tokenizer.special_token_ids[text]]


def test_every_special_token_text_encodes_as_ordinary_tokens_outside_templates(
    engine_lm: Model,
) -> None:
    tokenizer = engine_lm.engine.tokenizer
    for text, token_id in tokenizer.special_token_ids.items():
        hostile = f"a{text}b{text}"
        for ids in (
            tokenizer.encode(hostile, False),
            tokenizer.encode_continuation(hostile),
            tokenizer.ll.tokenize_str(hostile),  # what llguidance makes of fixed text
            tokenizer.ll.tokenize_str(hostile, parse_special=True),
        ):
            assert not tokenizer.special_ids.intersection(ids), (text, ids)
            assert b"".join(tokenizer.token_bytes(i) for i in ids).endswith(f"b{text}".encode())
        # Template text is where the tokenizer's markers are parsed.
        assert token_id in tokenizer.encode(hostile, True)
