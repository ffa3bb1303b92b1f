"""The schema forms ``json()`` accepts, normalised to one canonical JSON text.

A schema may be a dict, a JSON string, a pydantic model class, a pydantic ``TypeAdapter``, or
any other type pydantic can describe (a dataclass, a ``TypedDict``, ``list[int]`` ...).
Formatting options travel inside the schema under llguidance's ``x-guidance`` key.
"""

from __future__ import annotations

import functools
import json as _json
import re
from typing import Any, cast

from rudder.errors import GrammarError, GrammarTypeError

# guidance's defaults: json.dumps's separators ({"a": 1, "b": [1, 2]}), and an overlapping
# oneOf read as anyOf (llguidance warns when it does).
_DEFAULT_OPTIONS: dict[str, Any] = {
    "whitespace_flexible": False,
    "item_separator": ", ",
    "key_separator": ": ",
    "coerce_one_of": True,
}
#: ``separators=COMPACT`` writes {"a":1,"b":[1,2]}.
COMPACT = (",", ":")


def schema_to_dict(schema: object) -> dict[str, Any]:
    """The JSON schema ``schema`` stands for, as a new dict."""
    if schema is None or schema is True:
        return {}
    if schema is False:
        # llguidance's (and guidance's) words; schema=True or {} allows any value.
        raise GrammarError("Unsatisfiable schema: schema is false")
    if isinstance(schema, dict):
        return dict(schema)
    if isinstance(schema, str):
        try:
            loaded = _json.loads(schema)
        except ValueError as error:
            raise GrammarError(f"the schema string is not valid JSON: {error}") from None
        if not isinstance(loaded, dict):
            raise GrammarError('a JSON schema must be a JSON object, e.g. \'{"type": "integer"}\'')
        return loaded
    return _pydantic_schema(schema)


def _pydantic_schema(schema: object) -> dict[str, Any]:
    import pydantic

    generator = _generator_class()
    if isinstance(schema, pydantic.BaseModel):
        raise GrammarError(
            f"json(schema=...) takes the model class, not an instance: pass "
            f"{type(schema).__name__}, not {type(schema).__name__}(...)"
        )
    try:
        if isinstance(schema, pydantic.TypeAdapter):
            return dict(schema.json_schema(schema_generator=generator))
        if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
            return dict(schema.model_json_schema(schema_generator=generator))
        # Any type pydantic understands; which ones is pydantic's to decide at run time.
        adapter: pydantic.TypeAdapter[Any] = pydantic.TypeAdapter(cast(Any, schema))
        return dict(adapter.json_schema(schema_generator=generator))
    except _NonStringKeysError as error:
        raise GrammarError(
            f"JSON does not support non-string keys, got type {error.key_type} in {schema!r}; "
            "use str keys (dict[str, ...])"
        ) from None
    except (pydantic.PydanticSchemaGenerationError, pydantic.PydanticUserError, TypeError):
        raise GrammarError(
            f"cannot make a JSON schema from {schema!r}; pass a dict, a JSON string, a "
            "pydantic model class or a pydantic TypeAdapter"
        ) from None


class _NonStringKeysError(Exception):
    def __init__(self, key_type: str) -> None:
        super().__init__(key_type)
        self.key_type = key_type


@functools.cache
def _generator_class() -> type:
    """pydantic's schema generator, made strict where generation needs it to be.

    JSON object keys are strings, so a dict with other keys cannot be generated (guidance
    refuses it too). A model that ignores extra keys (pydantic's default) gets
    ``additionalProperties: false``: pydantic would drop extra keys anyway, so the model is
    not given room to write them; ``extra="allow"`` keeps them allowed.
    """
    from pydantic.json_schema import GenerateJsonSchema

    class Generator(GenerateJsonSchema):
        def dict_schema(self, schema: Any) -> Any:
            key_type = schema.get("keys_schema", {}).get("type", "any")
            if key_type not in ("str", "any"):
                raise _NonStringKeysError(key_type)
            return super().dict_schema(schema)

        def model_schema(self, schema: Any) -> Any:
            json_schema = super().model_schema(schema)
            if json_schema.get("type") == "object":
                json_schema.setdefault("additionalProperties", False)
            return json_schema

    return Generator


def schema_text(
    schema: object,
    *,
    separators: tuple[str, str] | None,
    whitespace_flexible: bool,
    whitespace_pattern: str | None,
    lenient: bool,
) -> str:
    """Canonical JSON text of the schema with rudder's formatting options applied."""
    as_dict = schema_to_dict(schema)
    options = dict(_DEFAULT_OPTIONS)
    given = as_dict.get("x-guidance")
    if isinstance(given, dict):
        options.update(given)
    if separators is not None:
        item, key = _separator_pair(separators)
        options["item_separator"] = re.escape(item)
        options["key_separator"] = re.escape(key)
    # As in guidance, a whitespace pattern makes the whitespace flexible.
    if whitespace_flexible or whitespace_pattern is not None:
        options["whitespace_flexible"] = True
        if separators is None:
            options.pop("item_separator", None)
            options.pop("key_separator", None)
    if whitespace_pattern is not None:
        options["whitespace_pattern"] = whitespace_pattern
    if lenient:
        options["lenient"] = True
    as_dict["x-guidance"] = options
    try:
        # Key order is kept on purpose: llguidance generates properties in schema order.
        return _json.dumps(as_dict, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as error:
        raise GrammarError(f"the schema cannot be written as JSON: {error}") from None


def _separator_pair(separators: object) -> tuple[str, str]:
    if (
        not isinstance(separators, (tuple, list))
        or len(separators) != 2
        or not all(isinstance(s, str) for s in separators)
    ):
        raise GrammarTypeError(
            f"separators must be a pair of str (between items, between a key and its value), "
            f'got {separators!r}; e.g. separators=(", ", ": ")'
        )
    return separators[0], separators[1]
