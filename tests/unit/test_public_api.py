"""rudder's public names are pinned: a change here is a change to the API users see."""

from __future__ import annotations

import subprocess
import sys

import rudder

EXPECTED_NAMES = [
    "GrammarNode",
    "GuidanceFunction",
    "Match",
    "StatefulCall",
    "TokenDetail",
    "__version__",
    "assistant",
    "at_most_n_repeats",
    "block",
    "branches",
    "capture",
    "errors",
    "exactly_n_repeats",
    "explore",
    "export_html",
    "gbnf_to_lark",
    "gen",
    "guidance",
    "hidden",
    "json",
    "lark",
    "legacy_mode",
    "models",
    "one_or_more",
    "optional",
    "regex",
    "role",
    "run",
    "select",
    "sequence",
    "settings",
    "special_token",
    "string",
    "substring",
    "system",
    "token_detail",
    "token_limit",
    "trace",
    "user",
    "with_temperature",
    "zero_or_more",
]


def test_public_names_are_pinned_and_sorted() -> None:
    assert rudder.__all__ == EXPECTED_NAMES
    assert sorted(rudder.__all__) == rudder.__all__
    for name in rudder.__all__:
        assert hasattr(rudder, name), name


def test_errors_module_lists_every_error() -> None:
    assert sorted(rudder.errors.__all__) == [
        "CaptureNameError",
        "CaptureNotFoundError",
        "ChatTemplateError",
        "ExploreError",
        "ExportError",
        "ExportPathError",
        "GenerationError",
        "GrammarError",
        "GrammarTypeError",
        "MatchError",
        "ModelLoadError",
        "RoleError",
        "RudderError",
        "RunError",
        "SettingsError",
        "StatefulInGrammarError",
        "StoreError",
        "TextEncodingError",
        "TraceError",
        "WrongTypeError",
    ]


def test_import_pulls_in_nothing_heavy() -> None:
    heavy = ["torch", "transformers", "IPython", "llama_cpp", "numpy", "jinja2", "anywidget"]
    heavy += ["sqlite3", "opentelemetry"]  # the store and rudder.otel load them when used
    code = f"import sys, rudder\nprint(','.join(m for m in {heavy!r} if m in sys.modules))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_models_module_is_pinned() -> None:
    assert rudder.models.__all__ == [
        "LlamaCpp",
        "Mock",
        "Model",
        "ModelStream",
        "OpenAI",
        "Transformers",
    ]


def test_engine_module_is_pinned() -> None:
    import rudder.engine

    assert rudder.engine.__all__ == [
        "Engine",
        "EngineTokenizer",
        "RemoteEngine",
        "RemoteRequest",
        "Sampling",
        "ServerCandidate",
        "ServerEnd",
        "ServerToken",
        "Support",
    ]
