"""The benchmark programs, written once against the API rudder and guidance share.

Each takes ``lib`` (the ``rudder`` or the ``guidance`` module) and a Model and returns the
Model it ends with, so both workers run the very same program text. Imports nothing from
either library.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

# Compact-with-spaces output on both sides (their defaults differ).
SEPARATORS = (", ", ": ")

# Case 1: grammars that cannot end before their last character, so that both sides run them
# to the end or to max_tokens (guidance lets the model end wherever the grammar could).
# Greedy decoding on the benchmark model never picks the regex's final full stop.
LONG_REGEX = "[a-z ]+\\."


def long_json_schema(records: int) -> dict[str, Any]:
    """An array of exactly ``records`` objects of fixed-length strings."""

    def text(length: int) -> dict[str, Any]:
        return {"type": "string", "minLength": length, "maxLength": length}

    tags = {"type": "array", "items": text(8), "minItems": 3, "maxItems": 3}
    record = {
        "type": "object",
        "properties": {
            "name": text(24),
            "count": {"type": "integer", "minimum": 0, "maximum": 99999},
            "tags": tags,
        },
        "required": ["name", "count", "tags"],
        "additionalProperties": False,
    }
    return {"type": "array", "items": record, "minItems": records, "maxItems": records}


# Case 2: much fixed text (keys, punctuation) around short values.
FIXED_KEYS_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customer_identifier": {"type": "integer", "minimum": 0, "maximum": 999},
        "shipping_address_country": {"enum": ["France", "Germany", "Spain", "Italy"]},
        "is_priority_delivery": {"type": "boolean"},
        "estimated_delivery_days": {"type": "integer", "minimum": 1, "maximum": 30},
        "payment_method_category": {"enum": ["card", "transfer", "invoice"]},
        "customer_reference_note": {"type": "string", "maxLength": 12},
        "requires_signature_on_arrival": {"type": "boolean"},
        "loyalty_program_membership_tier": {"enum": ["bronze", "silver", "gold"]},
    },
    "required": [
        "customer_identifier",
        "shipping_address_country",
        "is_priority_delivery",
        "estimated_delivery_days",
        "payment_method_category",
        "customer_reference_note",
        "requires_signature_on_arrival",
        "loyalty_program_membership_tier",
    ],
    "additionalProperties": False,
}

# Case 4: the JSON part of the end-to-end chat.
CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "city": {"type": "string", "maxLength": 20},
        "country": {"type": "string", "maxLength": 20},
        "population_millions": {"type": "number"},
    },
    "required": ["city", "country", "population_millions"],
    "additionalProperties": False,
}


def long_regex(lib: ModuleType, lm: Any, tokens: int) -> Any:
    return lm + "Words: " + lib.gen(regex=LONG_REGEX, max_tokens=tokens, name="out")


def long_gen(lib: ModuleType, lm: Any, tokens: int) -> Any:
    """Case 1: unconstrained text (the random-weight model all but never ends it early)."""
    return lm + "Words: " + lib.gen(max_tokens=tokens, name="out")


def long_json(lib: ModuleType, lm: Any, records: int) -> Any:
    schema = long_json_schema(records)
    return lm + "Records: " + lib.json(schema=schema, separators=SEPARATORS, name="out")


def fixed_keys_json(lib: ModuleType, lm: Any) -> Any:
    grammar = lib.json(schema=FIXED_KEYS_SCHEMA, separators=SEPARATORS, name="order")
    return lm + "Order: " + grammar


def fixed_form_chat(lib: ModuleType, lm: Any, turns: int) -> Any:
    """A chat whose answers are forms: fixed labels around short generated values."""
    with lib.system():
        lm += "You answer every question with the same form."
    for turn in range(turns):
        with lib.user():
            lm += f"Question {turn}: which city is place number {turn}?"
        with lib.assistant():
            lm += (
                "City name: "
                + lib.gen(stop="\n", max_tokens=4, name=f"city{turn}")
                + "\nCountry: "
                + lib.select(["France", "Germany", "Spain"], name=f"country{turn}")
                + "\nConfidence (percent): "
                + lib.gen(regex="[0-9]{2}", name=f"confidence{turn}")
                + "\nSource: the atlas of the world, page "
                + lib.gen(regex="[0-9]{3}", name=f"page{turn}")
                + "."
            )
    return lm


def chat_select_gen_json(lib: ModuleType, lm: Any) -> Any:
    """Case 4: a short chat with a choice, free text and a JSON object."""
    with lib.system():
        lm += "You are a helpful assistant who knows geography."
    with lib.user():
        lm += "Is Paris the capital of France? Answer yes or no, then say why."
    with lib.assistant():
        lm += (
            lib.select(["Yes", "No"], name="answer")
            + ". "
            + lib.gen(stop="\n", max_tokens=24, name="why")
        )
    with lib.user():
        lm += "Describe Paris as JSON."
    with lib.assistant():
        lm += lib.json(schema=CITY_SCHEMA, separators=SEPARATORS, max_tokens=48, name="city")
    return lm


def schema_first_token(lib: ModuleType, lm: Any, schema: dict[str, Any]) -> Any:
    """Case 6: a JSON grammar made from ``schema``, up to its first token (unnamed: a named
    json() cut by its token limit is an error in rudder)."""
    return lm + "Output: " + lib.json(schema=schema, max_tokens=1)


def appends(lm: Any, steps: int, start: int = 0) -> Any:
    """Case 3: a program of ``steps`` appends of short text."""
    for index in range(start, start + steps):
        lm += f"line {index}\n"
    return lm


def long_prefix(lm: Any, lines: int) -> Any:
    """Case 3: one append of ``lines`` lines, the prefix the branches share."""
    return lm + "".join(f"line {index}\n" for index in range(lines))


def branches(prefix: Any, count: int) -> list[Any]:
    """Case 3: ``count`` programs that continue one prefix."""
    return [prefix + f"branch {index}: what comes next?\n" for index in range(count)]


GENERATIONS = {
    "long_regex": long_regex,
    "long_gen": long_gen,
    "long_json": long_json,
    "fixed_keys_json": fixed_keys_json,
    "fixed_form_chat": fixed_form_chat,
    "chat_select_gen_json": chat_select_gen_json,
    "schema_first_token": schema_first_token,
}
