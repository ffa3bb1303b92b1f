"""One Model, one engine, eight threads running different programs at once.

Each program samples (temperature 1.0) from a seeded generator, so its result is fixed by
the program alone. The engine is shared: its lock serialises forward passes, and its KV
cache jumps between the programs' sequences. Every result must equal the same program run
alone, before the threads start.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rudder import (
    assistant,
    gen,
    guidance,
    json,
    lark,
    regex,
    select,
    user,
    with_temperature,
)
from rudder.models import Model

HOT = 1.0
WORKERS = 8


@guidance
def two_steps(lm: Model) -> Model:
    lm += "First: " + gen("first", temperature=HOT, max_tokens=8)
    # The second step depends on what the first produced.
    lm += f"\nLength {len(lm['first'])}: " + regex("[a-z]{1,8}", name="second")
    return lm


def story(lm: Model) -> Model:
    return lm + "Tell me a story: " + gen("story", temperature=HOT, max_tokens=16)


def number(lm: Model) -> Model:
    return lm + "A number: " + gen("number", regex="[0-9]{1,12}", temperature=HOT)


def city(lm: Model) -> Model:
    cities = select(["Paris", "Berlin", "Rome", "London", "Madrid"], name="city")
    lm += "A city: " + with_temperature(cities, HOT)
    return lm + " is nice because " + gen("why", temperature=HOT, max_tokens=10)


def record(lm: Model) -> Model:
    schema = {
        "type": "object",
        "properties": {
            "n": {"type": "integer", "minimum": 0, "maximum": 99},
            "c": {"enum": ["red", "green", "blue"]},
        },
        "required": ["n", "c"],
        "additionalProperties": False,
    }
    return lm + "Record: " + json("record", schema=schema, temperature=HOT, max_tokens=40)


def chat(lm: Model) -> Model:
    with user():
        lm += "Say something."
    with assistant():
        lm += gen("reply", temperature=HOT, max_tokens=16, stop=".")
    return lm + ""


def steps(lm: Model) -> Model:
    return lm + "Two steps.\n" + two_steps()


def words(lm: Model) -> Model:
    grammar = lark('start: w (" " w)*\nw: /[a-z]{1,6}/\n', name="words", max_tokens=16)
    return lm + "Some words: " + with_temperature(grammar, HOT)


def reseeded(lm: Model) -> Model:
    # Another seed for this program alone.
    lm = lm.with_sampling(seed=99)
    return lm + "Items:" + gen("items", stop=";", list_append=True, temperature=HOT, max_tokens=6)


PROGRAMS: list[Callable[[Model], Model]] = [
    story,
    number,
    city,
    record,
    chat,
    steps,
    words,
    reseeded,
]


def test_eight_threads_on_one_model_match_sequential_runs(load: Callable[..., Model]) -> None:
    assert len(PROGRAMS) == WORKERS
    base = load(seed=11) + "Shared preamble. "
    engine = base.engine
    calls = engine.forward_calls
    expected = [program(base) for program in PROGRAMS]
    sequential_calls = engine.forward_calls - calls
    # The programs really are different.
    assert len({str(result) for result in expected}) == WORKERS

    # The timeout only turns a hang (a worker that never arrives) into an error.
    barrier = threading.Barrier(WORKERS, timeout=120)

    def run(program: Callable[[Model], Model]) -> Model:
        barrier.wait()  # all eight start together, so their steps interleave
        return program(base)

    calls = engine.forward_calls
    with ThreadPoolExecutor(WORKERS) as pool:
        results = list(pool.map(run, PROGRAMS))

    for program, alone, threaded in zip(PROGRAMS, expected, results, strict=True):
        assert str(threaded) == str(alone), program.__name__
        assert threaded.captures == alone.captures, program.__name__
    # Each sampled token cost one forward pass, as it did alone.
    assert engine.forward_calls - calls == sequential_calls
