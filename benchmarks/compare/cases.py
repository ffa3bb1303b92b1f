"""The six cases: what the driver asks each worker, in which order, and which figures it keeps.

Every measured run goes to both libraries, one after the other, the order swapped from one
run to the next, so that the machine's noise falls on both alike. Each case starts with a
warm-up call per side that is not kept. A case returns :class:`Figure` rows: the raw samples
of each side; :mod:`benchmarks.compare.report` turns them into medians, spreads and ratios.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.compare import programs
from benchmarks.compare.protocol import Worker

SIDES = ("rudder", "guidance")
SCHEMAS = Path(__file__).resolve().parent / "schemas"


@dataclass(frozen=True)
class Config:
    """How big each case is (``TINY`` keeps the test short)."""

    runs: int = 5
    tokens: int = 1_000  # case 1's regex generation
    records: int = 20  # case 1's JSON array
    chat_turns: int = 4  # case 2's chat
    appends: tuple[int, int] = (1_000, 10_000)  # case 3
    prefix: int = 1_000  # case 3: lines of the prefix the branches share
    branches: int = 100
    build_runs: int = 3  # case 3: at most this many runs
    # Case 3: a program that takes longer than this is not run again (guidance runs each
    # append through the model: its 1,000 appends take minutes), and none may take longer
    # than the limit (its appends stop there).
    slow_program_s: float = 30.0
    time_limit_s: float = 120.0
    instrumented_tokens: int = 500  # case 5's regex generation
    schemas: int | None = None  # case 6: how many of schemas/ (None: all)


TINY = Config(
    runs=2, tokens=24, records=1, chat_turns=1, appends=(20, 200), prefix=50, branches=10,
    build_runs=2, instrumented_tokens=24, schemas=3,
)  # fmt: skip


@dataclass
class Figure:
    """One row of a case: a quantity measured on both sides, run by run."""

    label: str
    unit: str
    samples: dict[str, list[float]]
    # Per side, when its figure is a bound rather than a full measurement: why.
    bounds: dict[str, str] = field(default_factory=dict)


@dataclass
class Case:
    number: int
    title: str
    measures: str
    figures: list[Figure]
    notes: list[str] = field(default_factory=list)


@dataclass
class Setting:
    """What every case needs: the two workers, the sizes, the models."""

    workers: Mapping[str, Worker]
    config: Config
    chat_model: str  # "builtin" or "tiny"


def alternate(
    setting: Setting,
    runs: int,
    one_run: Callable[[Worker, int], Any],
    warm_up: bool = True,
    again: Callable[[Any], bool] = lambda result: True,
) -> dict[str, list[Any]]:
    """``runs`` results of ``one_run`` per side, the sides' order swapped every run; a side
    whose last result fails ``again`` is not run any more."""
    if warm_up:
        for side in SIDES:
            one_run(setting.workers[side], -1)
    results: dict[str, list[Any]] = {side: [] for side in SIDES}
    for index in range(runs):
        order = SIDES if index % 2 == 0 else tuple(reversed(SIDES))
        for side in order:
            if not results[side] or again(results[side][-1]):
                results[side].append(one_run(setting.workers[side], index))
    return results


def _per_side(
    results: Mapping[str, list[Any]], value: Callable[[Any], float]
) -> dict[str, list[float]]:
    return {side: [value(result) for result in results[side]] for side in SIDES}


def _library_ms_per_token(result: Mapping[str, Any]) -> float:
    return (result["wall_s"] - result["forward_s"]) / result["tokens"] * 1e3


def library_overhead(setting: Setting) -> Case:
    config = setting.config
    json_grammar = {
        "json": programs.long_json_schema(config.records),
        "separators": list(programs.SEPARATORS),
    }
    grammars = (
        ("JSON", "long_json", {"records": config.records}, json_grammar),
        ("regex", "long_regex", {"tokens": config.tokens}, {"regex": programs.LONG_REGEX}),
        ("unconstrained gen", "long_gen", {"tokens": config.tokens}, None),
    )
    figures, notes = [], []
    for name, program, args, grammar in grammars:
        results = alternate(
            setting,
            config.runs,
            lambda worker, _, p=program, a=args: worker.call(
                "generate", model="wide", program=p, args=a
            ),
        )
        tokens = {side: results[side][-1]["tokens"] for side in SIDES}
        outputs = {side: results[side][-1]["captures"]["out"] for side in SIDES}
        figures.append(
            Figure(
                f"{name}: library time per output token",
                "ms",
                _per_side(results, _library_ms_per_token),
            )
        )
        if grammar is not None:  # unconstrained text has no grammar to replay
            text = outputs["rudder"]
            floors = alternate(
                setting,
                config.runs,
                lambda worker, _, g=grammar, t=text: worker.call(
                    "floor", model="wide", grammar=g, text=t
                ),
            )
            figures.append(
                Figure(
                    f"{name}: llguidance alone (mask and consume) per token, the floor",
                    "ms",
                    _per_side(floors, lambda result: result["ms_per_token"]),
                )
            )
        same = "the same text" if outputs["rudder"] == outputs["guidance"] else "different texts"
        forward = {
            side: statistics.median(values)
            for side, values in _per_side(
                results, lambda r: r["forward_s"] / r["tokens"] * 1e3
            ).items()
        }
        notes.append(
            f"{name}: {tokens['rudder']} output tokens (rudder) and {tokens['guidance']} "
            f"(guidance), {same}; the model's forward took "
            f"{forward['rudder']:.2f} ms and {forward['guidance']:.2f} ms per token."
        )
    notes.append(
        "Greedy decoding on the same weights, yet the texts may differ: guidance puts the "
        "BOS token before every prompt, rudder only when the tokenizer does, so the model sees "
        "other contexts. The forward costs differ too: each side has its own transformers "
        "version, and guidance passes an attention mask and position ids with every call."
    )
    return Case(
        1,
        "Library overhead per token",
        f"A long constrained generation (an array of {config.records} records from a JSON "
        f"schema; {config.tokens:,} tokens of a regex) and {config.tokens:,} tokens of "
        "unconstrained `gen()` on the 32k-vocabulary model, greedy. "
        "The library's time is the generation's "
        "wall time minus the time inside the model's forward, per output token: grammar, "
        "mask, sampling and bookkeeping. The floor replays the same output through "
        "llguidance's LLMatcher alone (each side's llguidance version): a bitmask and a "
        "consume per token, nothing else.",
        figures,
        notes,
    )


def forward_passes(setting: Setting) -> Case:
    config = setting.config
    templates = (
        ("JSON object with 8 fixed keys", "fixed_keys_json", {}),
        (f"chat of {config.chat_turns} turns with fixed role markers and labels",
         "fixed_form_chat", {"turns": config.chat_turns}),
    )  # fmt: skip
    figures, notes = [], []
    for label, program, args in templates:
        results = alternate(
            setting,
            config.runs,
            lambda worker, _, p=program, a=args: worker.call(
                "generate", model="wide", program=p, args=a
            ),
        )
        samples = _per_side(results, lambda r: r["forward_calls"] / r["tokens"])
        figures.append(Figure(f"{label}: forward passes per output token", "", samples))
        last = {side: results[side][-1] for side in SIDES}
        notes.append(
            f"{label}: "
            + "; ".join(
                f"{side} {last[side]['forward_calls']} passes for {last[side]['tokens']} tokens"
                for side in SIDES
            )
            + "."
        )
    return Case(
        2,
        "Forward passes per output token",
        "Templates with much fixed text, on the 32k-vocabulary model: the model's forward "
        "calls (counted on the Hugging Face module in each worker) divided by the tokens the "
        "program added (the final text's tokens minus the starting text's, role markers "
        "included, counted the same way for both). Below 1, tokens were forced by the grammar "
        "or the template without a model call.",
        figures,
        notes,
    )


def program_building(setting: Setting) -> Case:
    config = setting.config
    small, large = config.appends
    runs = min(config.runs, config.build_runs)

    def build(kind: str, size: int, memory: bool = False) -> dict[str, list[Any]]:
        # Only the small program ends with a generated token: a prefill of the large one
        # would be a single forward over some 60,000 tokens.
        return alternate(
            setting,
            1 if memory else runs,
            lambda worker, _: worker.call(
                "build", model="wide", kind=kind, size=size, memory=memory,
                prefix=config.prefix, time_limit_s=config.time_limit_s, then_token=size == small,
            ),
            warm_up=False,
            again=lambda result: result.get("wall_s", 0.0) < config.slow_program_s,
        )  # fmt: skip

    def bounds(results: Mapping[str, list[Any]], size: int) -> dict[str, str]:
        done = {side: min(r["steps_done"] for r in results[side]) for side in SIDES}
        return {
            side: f"stopped at the {config.time_limit_s:.0f} s limit after {steps:,} of "
            f"{size:,} appends; an append costs more as the program grows, so the full "
            "figure is higher"
            for side, steps in done.items()
            if steps < size
        }

    for side in SIDES:  # a warm-up: the first appends of a process pay for imports
        setting.workers[side].call(
            "build", model="wide", kind="appends", size=10, memory=False, prefix=0,
            time_limit_s=config.time_limit_s, then_token=True,
        )  # fmt: skip
    figures = []
    appended = {size: build("appends", size) for size in (small, large)}
    for size, results in appended.items():
        figures.append(
            Figure(
                f"{size:,} appends of short text: time per append",
                "ms",
                _per_side(results, lambda r: r["appends_s"] / r["steps_done"] * 1e3),
                bounds=bounds(results, size),
            )
        )
    figures.append(
        Figure(
            f"{small:,} appends, then one generated token: the whole program",
            "s",
            _per_side(appended[small], lambda r: r["wall_s"]),
            bounds=bounds(appended[small], small),
        )
    )
    results = build("branches", config.branches)
    figures.append(
        Figure(
            f"{config.branches} branches from one prefix of {config.prefix:,} lines",
            "ms",
            _per_side(results, lambda r: r["wall_s"] * 1e3),
        )
    )
    for kind, size, label in (
        ("appends", small, f"{small:,} appends and one token"),
        ("branches", config.branches, f"{config.branches} branches"),
    ):
        results = build(kind, size, memory=True)
        figures.append(
            Figure(
                f"{label}: peak Python memory",
                "MB",
                _per_side(results, lambda r: r["peak_bytes"] / 1e6),
                bounds=bounds(results, size) if kind == "appends" else {},
            )
        )
    return Case(
        3,
        "Program building",
        f'`lm += f"line {{i}}\\n"` {small:,} times then one generated token, and {large:,} '
        "times, on the 32k-vocabulary model; "
        f"{config.branches} programs continuing one prefix of {config.prefix:,} lines "
        "(appended in one step, outside the measurement). Time: up to "
        f"{runs} runs (a program that took over {config.slow_program_s:.0f} s is "
        "not run again); memory: the peak of Python allocations during the build "
        "(tracemalloc, one run; tensors such as the KV cache are not counted).",
        figures,
        [
            "guidance runs each append through the model at once (the text is a grammar the "
            "engine forces: the whole prompt is tokenized again and the new tokens go through "
            "a forward pass); rudder appends an entry and tokenizes and runs the model at the "
            "next generation. The row with one generated token shows the whole bill: there "
            "rudder pays its tokenization and one forward over the whole prompt.",
        ],
    )


def end_to_end(setting: Setting) -> Case:
    results = alternate(
        setting,
        setting.config.runs,
        lambda worker, _: worker.call(
            "generate", model="chat", program="chat_select_gen_json", args={}
        ),
    )
    figures = [
        Figure("chat with select, gen and json: the whole program", "s",
               _per_side(results, lambda r: r["wall_s"])),
        Figure("library time (the program minus the model's forward)", "s",
               _per_side(results, lambda r: r["wall_s"] - r["forward_s"])),
        Figure("forward passes", "", _per_side(results, lambda r: float(r["forward_calls"]))),
    ]  # fmt: skip
    model = (
        "rudder's built-in model"
        if setting.chat_model == "builtin"
        else "the tiny test model (rudder's built-in model is not built in this checkout)"
    )
    return Case(
        4,
        "End to end",
        f"A chat program on {model}: a system and a user message, an assistant answer with "
        "`select` and `gen`, a second user message and a `json` answer; greedy.",
        figures,
        ["What the last run wrote: " + "; ".join(_chat_outcome(side, results) for side in SIDES)],
    )


def _chat_outcome(side: str, results: Mapping[str, list[Any]]) -> str:
    captures = results[side][-1]["captures"]
    try:
        json.loads(captures["city"])
        city = "valid JSON"
    except ValueError:
        city = "JSON cut at max_tokens"
    why = json.dumps(captures["why"][:60], ensure_ascii=False)
    return f"{side} answered {captures['answer']!r}, then {why}, then {city}"


def instrumentation(setting: Setting) -> Case:
    config = setting.config
    modes = ((False, "off"), (True, "on"))
    results: dict[str, dict[str, list[Any]]] = {side: {"off": [], "on": []} for side in SIDES}
    for index in range(-1, config.runs):  # -1: the warm-up
        for side in SIDES if index % 2 == 0 else reversed(SIDES):
            for on, mode in modes if index % 2 == 0 else reversed(modes):
                result = setting.workers[side].call(
                    "instrumented", model="wide", on=on, tokens=config.instrumented_tokens
                )
                if index >= 0:
                    results[side][mode].append(result)

    def both(mode: str, value: Callable[[Any], float]) -> dict[str, list[float]]:
        return {side: [value(result) for result in results[side][mode]] for side in SIDES}

    factor = {
        side: [
            on["wall_s"] / off["wall_s"]
            for on, off in zip(results[side]["on"], results[side]["off"], strict=True)
        ]
        for side in SIDES
    }
    figures = [
        Figure("time with views and metrics on / time with them off", "×", factor),
        Figure("library time per token, instrumentation off", "ms",
               both("off", _library_ms_per_token)),
        Figure("library time per token, instrumentation on", "ms",
               both("on", _library_ms_per_token)),
    ]  # fmt: skip
    messages = {side: results[side]["on"][-1]["messages"] for side in SIDES}
    catch_up = both("on", lambda result: result["view_catch_up_s"] * 1e3)
    return Case(
        5,
        "Instrumentation cost",
        f"A {config.instrumented_tokens:,}-token generation of case 1's regex on the "
        "32k-vocabulary model, with each library's views and metrics on and off, alternated. "
        "rudder on: `settings.echo` and `settings.monitor` on, inside `rudder.run()`, and a "
        "renderer subscribed to `rudder.visual.get_bus()` that keeps every message; off: "
        "both settings off, nothing subscribed. guidance on: a Model made with `echo=True` "
        "(token probabilities and top-5 candidates computed, trace messages published on "
        "its exchange) and `enable_monitoring=True` (its CPU and memory monitor), with a "
        "subscriber on the exchange that keeps every message; off: `echo=False`, the "
        "monitor stopped. Library time is as in case 1: the generation minus the forward.",
        figures,
        [
            "Comparable, not identical: rudder records each step's top candidates and builds "
            "its trace whether views are on or not (that cost is in both of its modes); "
            "guidance computes probabilities only with echo on, and then also runs the model "
            "over forced tokens to give them probabilities. rudder's renderer runs in a thread "
            "of the bus and may finish after the generation; guidance's exchange calls its "
            "subscribers inside the generation.",
            "messages a view received in one run: "
            + ", ".join(f"{side} {count:,}" for side, count in messages.items())
            + "; after the generation returned, the view had everything within (median) "
            + ", ".join(f"{side} {statistics.median(catch_up[side]):.1f} ms" for side in SIDES)
            + ".",
        ],
    )


def _schemas(config: Config) -> list[tuple[str, dict[str, Any]]]:
    files = sorted(SCHEMAS.glob("*.json"))[: config.schemas]
    return [(file.stem, json.loads(file.read_text())) for file in files]


def grammar_compile(setting: Setting) -> Case:
    config = setting.config
    schemas = _schemas(config)

    def first_token(worker: Worker, schema: dict[str, Any], run: int) -> float:
        # A new description each run: no cache of either library can hold the grammar.
        fresh = {**schema, "description": f"benchmark run {run} on {worker.name}"}
        result = worker.call(
            "generate", model="wide", program="schema_first_token", args={"schema": fresh}
        )
        return (result["wall_s"] - result["forward_s"]) * 1e3

    figures = []
    for name, schema in schemas:
        samples = alternate(
            setting, config.runs, lambda worker, run, s=schema: first_token(worker, s, run)
        )
        figures.append(Figure(f"{name}.json", "ms", samples))
    total = {
        side: [sum(run) for run in zip(*(f.samples[side] for f in figures), strict=True)]
        for side in SIDES
    }
    figures.append(Figure("all schemas together", "ms", total))
    return Case(
        6,
        "Grammar compile time",
        f"{len(schemas)} JSON schemas of real-world shapes (`benchmarks/compare/schemas/`): "
        "the time from calling `json(schema=...)` to the first token chosen, minus the "
        "model's forward, on the 32k-vocabulary model: schema to grammar, grammar to "
        "llguidance's parser, the first mask. Each run changes the schema's description, so "
        "no cache holds it.",
        figures,
    )


CASES: dict[int, Callable[[Setting], Case]] = {
    1: library_overhead,
    2: forward_passes,
    3: program_building,
    4: end_to_end,
    5: instrumentation,
    6: grammar_compile,
}
