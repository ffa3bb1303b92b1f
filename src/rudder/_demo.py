"""``rudder demo``: one program that shows what rudder is for, on the built-in model.

A system prompt, a user question, then an assistant answer written with ``select``,
``gen`` with ``stop``, ``regex`` and ``json`` with a pydantic schema. The run streams to
the terminal view; afterwards the captures and usage figures are printed and the run is
written as one self-contained HTML file.

``--model`` runs the same program on any Hugging Face causal LM the user has (a path, or a
hub id in the local cache), or on a GGUF file through llama.cpp.
"""

from __future__ import annotations

import argparse
import importlib.util
import json as json_module
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import BaseModel

from rudder._builtin._corpus import CITIES, COUNTRIES, DEMO_QUESTION, DEMO_SYSTEM, city_named
from rudder.models._llama_cpp import INSTALL_HINT as LLAMA_CPP_INSTALL_HINT
from rudder.models._llama_cpp import is_gguf

if TYPE_CHECKING:
    from rudder.models import Model

DEFAULT_CITY = "Paris"
DEFAULT_OUTPUT = "rudder-demo.html"
#: llama.cpp's context for the demo, in tokens.
DEMO_CONTEXT = 2048
#: Exit status for anything the user can fix (arguments, installation, model).
USAGE_ERROR = 2
INSTALL_HINT = (
    "install them with `pip install 'rudder[transformers]'` (from a clone: "
    "`pip install torch==2.13.0 && pip install -e '.[transformers]'`; the first command "
    "gets the CPU build where there is no GPU)"
)


class City(BaseModel):
    """The record the demo asks for, as JSON valid under this schema."""

    name: str
    country: str
    founded: int
    population_millions: float
    landmarks: list[str]


def program(lm: Model, city: str, temperature: float = 0.0) -> Model:
    """The showcase program: a travel guide's answer about ``city``."""
    from rudder import assistant, gen, json, regex, select, system, user

    with system():
        lm += DEMO_SYSTEM
    with user():
        lm += DEMO_QUESTION.format(city=city)
    with assistant():
        lm += "Country: " + select(list(COUNTRIES), name="country") + "\n"
        lm += "In short: " + gen("summary", stop="\n", max_tokens=40, temperature=temperature)
        lm += "\n"
        lm += "Founded: " + regex(r"[0-9]{1,4}( BC)?", name="founded") + "\n"
        # The built-in model learned compact JSON.
        lm += "Record: " + json(
            "record",
            schema=City,
            max_tokens=160,
            temperature=temperature,
            separators=(",", ":"),
        )
    return lm


def add_arguments(parser: argparse.ArgumentParser) -> None:
    known = ", ".join(city.name for city in CITIES)
    parser.add_argument(
        "--city",
        default=DEFAULT_CITY,
        help=f"the city to ask about (default: {DEFAULT_CITY}); the built-in model knows {known}",
    )
    parser.add_argument(
        "--model",
        metavar="PATH_OR_ID",
        help="a Hugging Face causal LM (a local folder or a hub id already in the local cache) "
        "or a .gguf file for llama.cpp (default: rudder's built-in model)",
    )
    parser.add_argument("--device", help="cpu, cuda, cuda:1 ... (default: CUDA when available)")
    parser.add_argument(
        "--temperature",
        type=float,
        default=0.0,
        help="sampling temperature of the free text and the record (default: 0, greedy)",
    )
    parser.add_argument("--seed", type=int, help="seed of the sampler (with --temperature)")
    parser.add_argument(
        "--output",
        type=Path,
        default=Path(DEFAULT_OUTPUT),
        help=f"where to write the HTML report (default: ./{DEFAULT_OUTPUT})",
    )


class DemoError(Exception):
    """Something the user can fix: the message says what and how."""


def run(args: argparse.Namespace) -> int:
    """Run the demo with parsed arguments; returns the exit status."""
    try:
        return _run(args)
    except DemoError as error:
        print(f"rudder demo: {error}", file=sys.stderr)
        return USAGE_ERROR


def _run(args: argparse.Namespace) -> int:
    import rudder
    from rudder.errors import RudderError

    if args.temperature < 0:
        raise DemoError(f"--temperature must be 0 or more, got {args.temperature}")
    path = args.output.expanduser().resolve()
    if not path.parent.is_dir():
        raise DemoError(f"cannot write the report to {str(path)!r}: no folder {str(path.parent)!r}")
    if args.model is None and city_named(args.city) is None:
        print(
            f"rudder demo: {args.city!r} is not a city the built-in model was trained on; "
            "its answer will be made up (see `rudder demo --help` for the ones it knows)",
            file=sys.stderr,
        )
    started = time.perf_counter()
    lm = load_model(args.model, device=args.device, seed=args.seed)
    loaded = time.perf_counter() - started

    rudder.settings.view = "terminal"
    started = time.perf_counter()
    try:
        with rudder.run("demo"):
            lm = program(lm, args.city, args.temperature)
    except RudderError as error:
        # A model that cannot finish the program (its context is too short, say).
        print(f"rudder demo: the program failed on this model: {error}", file=sys.stderr)
        return 1
    wall = time.perf_counter() - started

    # Printed through sys.stdout as it is now: the terminal view guards it while it shows
    # the run, so these lines come after the view's own.
    _print_captures(lm)
    _print_usage(lm, loaded, wall)
    try:
        rudder.export_html(lm, path)
    except OSError as error:
        raise DemoError(f"cannot write the report to {str(path)!r}: {error}") from None
    print(f"\nReport: {path} (open it in a browser)")
    return 0


def load_model(
    path_or_id: str | None, *, device: str | None = None, seed: int | None = None
) -> Model:
    """The model ``--model PATH_OR_ID`` names (None: the built-in one): a Hugging Face
    causal LM or a .gguf file; a ``DemoError`` says what is missing or wrong."""
    args = argparse.Namespace(model=path_or_id, device=device, seed=seed)
    gguf = path_or_id is not None and is_gguf(path_or_id)
    _check_installed(gguf=gguf)
    if gguf:
        return _load_gguf(args)
    _set_threads(builtin=path_or_id is None)
    return _load(args)


def _check_installed(*, gguf: bool) -> None:
    if gguf:
        if importlib.util.find_spec("llama_cpp") is None:
            raise DemoError(f"a GGUF model needs llama-cpp-python; {LLAMA_CPP_INSTALL_HINT}")
        return
    missing = [name for name in ("torch", "transformers") if importlib.util.find_spec(name) is None]
    if missing:
        raise DemoError(f"the demo needs {' and '.join(missing)}; {INSTALL_HINT}")


def _set_threads(*, builtin: bool) -> None:
    """One thread for the small built-in model, whose steps are too small to share out
    (more threads only wait on each other); ``OMP_NUM_THREADS`` wins when set."""
    import torch

    if builtin and not os.environ.get("OMP_NUM_THREADS"):
        torch.set_num_threads(1)


def _load(args: argparse.Namespace) -> Model:
    from transformers.utils import logging as transformers_logging

    from rudder import models
    from rudder.errors import RudderError

    # The terminal view is the demo's display.
    transformers_logging.disable_progress_bar()  # type: ignore[no-untyped-call]
    try:
        if args.model is None:
            return models.Transformers(device=args.device, seed=args.seed)
        return models.Transformers(args.model, device=args.device, seed=args.seed)
    except RudderError as error:  # a missing model, a template rudder cannot use ...
        raise DemoError(str(error)) from None
    except (OSError, ValueError, RuntimeError, AssertionError) as error:
        # transformers and torch report an unusable model or device in these.
        what = "the built-in model" if args.model is None else repr(args.model)
        detail = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise DemoError(f"cannot load {what} on device {args.device or 'auto'}: {detail}") from None


def _load_gguf(args: argparse.Namespace) -> Model:
    from rudder import models
    from rudder.errors import RudderError

    # Every layer on the GPU unless --device cpu (a CPU-only build ignores it); a context
    # the program fits in several times, without the memory a model's full context takes.
    layers = 0 if args.device == "cpu" else -1
    try:
        return models.LlamaCpp(args.model, seed=args.seed, n_ctx=DEMO_CONTEXT, n_gpu_layers=layers)
    except RudderError as error:
        raise DemoError(str(error)) from None


def _print_captures(lm: Model) -> None:
    print("\nCaptures")
    for name in ("country", "summary", "founded"):
        print(f"  {name}: {lm[name]}")
    record = str(lm["record"])
    try:
        parsed = json_module.loads(record)
    except ValueError:
        print(f"  record (incomplete JSON): {record}")
        return
    print("  record:")
    print(json_module.dumps(parsed, indent=2, ensure_ascii=False))


def _print_usage(lm: Model, loaded: float, wall: float) -> None:
    usage = lm.usage
    first = usage.time_to_first_token_s
    per_token = usage.per_token_s
    rows = (
        ("prompt tokens", f"{usage.prompt_tokens}"),
        (
            "output tokens",
            f"{usage.output_tokens} ({usage.generated_tokens} generated, "
            f"{usage.forced_tokens} forced)",
        ),
        ("forced share", f"{usage.token_reduction:.0%} of the output needed no model call"),
        ("time to first token", "-" if first is None else f"{first * 1000:.0f} ms"),
        ("per output token", "-" if per_token is None else f"{per_token * 1000:.1f} ms"),
        ("program wall time", f"{wall:.2f} s (model loaded in {loaded:.1f} s)"),
    )
    print("\nUsage")
    for label, value in rows:
        print(f"  {label + ':':<21}{value}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="rudder demo", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))
