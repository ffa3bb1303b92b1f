"""One spelling of the usage figures: the loop's Generation, Usage, the messages, the
schema and the client's TypeScript types all name them alike, and the records are the
dataclasses themselves (no converter in between)."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path

import pytest
from tests.unit.test_protocol_messages import _usage

from rudder import gen, models
from rudder.engine._loop import Generation
from rudder.trace._monitor import SystemSample
from rudder.trace._records import RunRecord
from rudder.trace._usage import DERIVED_FIGURES, Usage
from rudder.visual.stream._protocol import Metrics, parse_server_message, protocol_schema

ROOT = Path(__file__).parents[2]
FIELDS = [f.name for f in dataclasses.fields(Usage)]
COUNTED = {"generations", "forced_tokens", "generated_tokens"}  # from a Generation's tokens


def test_a_message_writes_every_figure_and_reads_back_the_same_usage() -> None:
    usage = _usage()
    data = json.loads(Metrics(seq=0, run_id="r", usage=usage).model_dump_json())["usage"]
    assert data == usage.as_dict()
    assert data["output_tokens"] == 10
    assert data["token_reduction"] == 0.4
    assert data["per_token_s"] == 0.05
    parsed = parse_server_message(
        json.dumps({"type": "metrics", "seq": 0, "run_id": "r", "usage": data})
    )
    assert isinstance(parsed, Metrics)
    assert type(parsed.usage) is Usage
    assert parsed.usage == usage


def test_derived_figures_read_back_are_recomputed_not_trusted() -> None:
    """A stored record's derived figures are ignored: they follow from the fields."""
    data = _usage().as_dict() | {"output_tokens": 999, "per_token_s": -1.0}
    record = RunRecord.model_validate({"id": "r", "name": "n", "status": "done", "usage": data})
    assert record.usage.output_tokens == 10
    assert record.usage.per_token_s == 0.05


def test_a_usage_with_a_wrong_field_is_refused() -> None:
    data = _usage().as_dict() | {"prompt_tokens": "many"}
    with pytest.raises(ValueError, match="prompt_tokens"):
        RunRecord.model_validate({"id": "r", "name": "n", "status": "done", "usage": data})


def test_samples_travel_as_the_monitor_takes_them() -> None:
    sample = SystemSample(1.5, 12.5, 3.25, 2**33, 2**35, 2**29, 87.5, 2**36, 2**36)
    message = Metrics(seq=1, run_id="r", usage=Usage(), samples=[sample])
    parsed = parse_server_message(message.model_dump_json())
    assert isinstance(parsed, Metrics)
    assert parsed.samples == [sample]


def test_the_schema_and_typescript_types_name_the_figures_as_usage_does() -> None:
    definitions = protocol_schema()["$defs"]
    assert isinstance(definitions, dict)
    names = {*FIELDS, *DERIVED_FIGURES}
    assert set(definitions["Usage"]["properties"]) == names
    assert set(definitions["Usage"]["required"]) == names  # always written
    assert set(definitions["SystemSample"]["properties"]) == {
        f.name for f in dataclasses.fields(SystemSample)
    }
    types = (ROOT / "web/src/protocol.ts").read_text()
    body = re.search(r"export interface Usage \{(.*?)\n\}", types, re.S)
    assert body is not None, "protocol.ts has no Usage interface"
    assert set(re.findall(r"^\s+(\w+):", body.group(1), re.M)) == names
    assert "UsageRecord" not in types
    assert "SampleRecord" not in types


def test_a_generation_measures_its_figures_under_usages_names() -> None:
    lm = models.Mock([b"abcdefgh"]) + "Say=" + gen("a", stop="cde", max_tokens=8)
    generation = lm.generation
    assert generation is not None
    usage = Usage.of(generation)
    for name in set(FIELDS) - COUNTED:
        assert getattr(usage, name) == getattr(generation, name), name
    assert generation.backtracked_tokens > 0
    assert generation.forward_passes > 0
    assert lm.usage == usage


def test_a_generations_former_names_still_read_and_write() -> None:
    """``lm.generation`` was public with these names before they followed Usage's."""
    generation = Generation([], [], 3, 0, 0, "stop")
    former = {
        "forward_calls": "forward_passes",
        "forward_seconds": "forward_s",
        "mask_seconds": "mask_s",
        "total_seconds": "total_s",
        "first_token_seconds": "time_to_first_token_s",
        "backtracked": "backtracked_tokens",
    }
    for index, (old, new) in enumerate(former.items(), start=1):
        setattr(generation, old, index)
        assert getattr(generation, new) == index == getattr(generation, old)
