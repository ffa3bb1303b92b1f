"""The message protocol's three committed forms agree: the pydantic models, the JSON schema
(``src/rudder/visual/protocol.schema.json``) and the client's TypeScript types
(``web/src/protocol.ts``), which must stay a union that TypeScript narrows on ``type``.

The generator and the type checker come from ``web/node_modules`` (``npm ci --prefix
web``, which ``.ci/run`` does); when they are missing the tests fail, they never skip.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from web_tools import ROOT, WEB, run_node

from rudder.visual.protocol import SCHEMA_PATH
from rudder.visual.stream._protocol import schema_text

CLIENT = WEB
TYPES_PATH = CLIENT / "src" / "protocol.ts"
GENERATOR = CLIENT / "scripts" / "protocol-types.mjs"
TSC = CLIENT / "node_modules" / "typescript" / "bin" / "tsc"

REGENERATE = (
    "regenerate with `python -m rudder.visual.protocol` (the schema), then "
    "`npm run protocol-types --prefix web` (the TypeScript types), and commit both"
)


def schema() -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return doc


def exported_types(ts: str) -> dict[str, str]:
    """Each ``export interface``/``export type`` of ``ts``: name -> its declaration's text."""
    starts = list(re.finditer(r"^export (?:interface|type) (\w+)", ts, flags=re.MULTILINE))
    ends = [match.start() for match in starts[1:]] + [len(ts)]
    return {match[1]: ts[match.start() : end] for match, end in zip(starts, ends, strict=True)}


def test_committed_schema_matches_the_models() -> None:
    assert SCHEMA_PATH.read_text() == schema_text(), (
        f"{SCHEMA_PATH.relative_to(ROOT)} differs from the models in "
        f"rudder.visual.stream._protocol: {REGENERATE}"
    )


def test_generator_reproduces_the_committed_types(tmp_path: Path) -> None:
    out = tmp_path / "protocol.ts"
    result = run_node(GENERATOR, out)
    assert result.returncode == 0, f"{GENERATOR.name} failed:\n{result.stdout}{result.stderr}"
    assert out.read_text() == TYPES_PATH.read_text(), (
        f"{TYPES_PATH.relative_to(ROOT)} is not what {GENERATOR.name} makes from the "
        f"committed schema: {REGENERATE}"
    )


def test_types_name_every_model_once() -> None:
    """One exported type per model and the RudderMessage union, under the models' own names:
    no numbered copies (``UsageRecord1``), no aliases made from property titles (``RunId``)."""
    doc = schema()
    exported = exported_types(TYPES_PATH.read_text())
    assert set(exported) == {doc["title"], *doc["$defs"]}
    union = re.findall(r"\|\s*(\w+)", exported["RudderMessage"])
    assert union == [ref["$ref"].removeprefix("#/$defs/") for ref in doc["oneOf"]]
    assert {"RunStarted", "NodeAdded", "TokensAppended", "ClientReady", "ReplayRequest"} <= set(
        union
    )


def test_every_message_has_its_literal_type_tag() -> None:
    """Each union member declares ``type`` as a required string literal: the discriminator."""
    doc = schema()
    exported = exported_types(TYPES_PATH.read_text())
    mapping = doc["discriminator"]["mapping"]
    assert doc["discriminator"]["propertyName"] == "type"
    assert len(mapping) == len(doc["oneOf"])
    for tag, ref in mapping.items():
        name = ref.removeprefix("#/$defs/")
        assert f'\n  type: "{tag}";\n' in exported[name], f"{name} lacks `type: {tag!r}`"


def test_typescript_narrows_the_union_on_type() -> None:
    """``tsc`` accepts web/src/protocol.check.ts, which switches on ``message.type`` and
    reads fields only one variant has (``tokens`` is a token list in tokens_appended and a
    count in backtrack), and expects errors where no narrowing happened."""
    result = run_node(TSC, "--noEmit", "--pretty", "false", "-p", CLIENT)
    assert result.returncode == 0, (
        "web/src/protocol.check.ts does not type-check against web/src/protocol.ts; "
        "if the protocol changed on purpose, update the check (every message type has its "
        "case there):\n" + result.stdout + result.stderr
    )
