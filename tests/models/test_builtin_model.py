"""The built-in model: its corpus, its training script (in a reduced run) and the shipped
weights, which ``models.Transformers()`` loads when no model is named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import rudder._builtin
from rudder import gen, models
from rudder._builtin import MODEL_DIR, TRAINING_FILE, builtin_model_path
from rudder._builtin import train as training
from rudder._builtin._corpus import (
    CITIES,
    COUNTRIES,
    DEMO_SYSTEM,
    city_record,
    conversations,
    demo_conversation,
    founded_text,
)
from rudder._demo import City, program
from rudder.errors import ModelLoadError
from rudder.models import Model


@pytest.fixture(scope="module")
def builtin() -> Model:
    """The shipped model, loaded once (a Model is immutable, so tests can share it)."""
    import torch

    torch.set_num_threads(1)  # module fixtures run before the autouse fixture
    return models.Transformers()


# -- the corpus ---------------------------------------------------------------------------


def test_the_corpus_is_the_same_for_a_seed_and_differs_between_seeds() -> None:
    first = list(conversations(3, 300))
    assert first == list(conversations(3, 300))
    assert first != list(conversations(4, 300))


def test_the_corpus_holds_every_city_in_the_demo_shape() -> None:
    corpus = list(conversations(0, 2_000))
    for city in CITIES:
        assert demo_conversation(city) in corpus
    paris = demo_conversation(CITIES[0])
    assert [m["role"] for m in paris] == ["system", "user", "assistant"]
    assert paris[0]["content"] == DEMO_SYSTEM
    assert paris[1]["content"] == "Tell me about Paris."
    lines = paris[2]["content"].split("\n")
    assert lines[:3] == [
        "Country: France",
        "In short: Paris is the capital of France, famous for art, fashion and cafés.",
        "Founded: 250 BC",
    ]
    assert json.loads(lines[3].removeprefix("Record: ")) == city_record(CITIES[0])
    # Not a single template: other systems and questions are in the mix.
    systems = {conversation[0]["content"] for conversation in corpus}
    assert len(systems) >= 4


def test_every_record_validates_against_the_demo_schema() -> None:
    for city in CITIES:
        assert City.model_validate(city_record(city)).name == city.name
        assert city.country in COUNTRIES
    assert founded_text(-753) == "753 BC"
    assert founded_text(1624) == "1624"


# -- the training script ------------------------------------------------------------------


def test_a_reduced_training_run_saves_a_model_that_loads_and_generates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "model"
    status = training.main(["--small", "--output", str(output), "--threads", "1", "--seed", "5"])
    assert status == 0
    printed = capsys.readouterr().out
    assert "step 1/" in printed
    assert "loss" in printed
    assert f"saved to {output}" in printed
    for name in ("model.safetensors", "tokenizer.json", "config.json", TRAINING_FILE):
        assert (output / name).is_file()
    record = json.loads((output / TRAINING_FILE).read_text())
    assert record["seed"] == 5
    assert record["steps"] == training.SMALL.steps
    assert record["final_loss"] > 0

    lm = models.Transformers(str(output))
    assert lm.engine.tokenizer.eos_token_id == lm.engine.tokenizer.encode("<|im_end|>", True)[0]
    out = lm + "Tell me about Rome." + gen("text", max_tokens=5)
    assert out.generation is not None
    assert 1 <= len(out.generation.tokens) <= 5


def test_training_is_deterministic_for_a_seed(tmp_path: Path) -> None:
    plan = training.SMALL
    first = training.train(tmp_path / "a", plan, seed=1, threads=1, log=lambda line: None)
    second = training.train(tmp_path / "b", plan, seed=1, threads=1, log=lambda line: None)
    assert first["final_loss"] == second["final_loss"]
    for name in ("model.safetensors", "tokenizer.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_steps_below_one_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        training.main(["--steps", "0"])
    assert exit_info.value.code == 2
    assert "--steps must be at least 1" in capsys.readouterr().err


# -- the shipped model --------------------------------------------------------------------


def test_the_shipped_model_is_small_and_records_its_training() -> None:
    files = [path for path in MODEL_DIR.iterdir() if path.is_file()]
    assert sum(path.stat().st_size for path in files) <= 4 * 1024 * 1024
    record = json.loads((MODEL_DIR / TRAINING_FILE).read_text())
    assert record["steps"] == training.FULL.steps
    assert record["seed"] == 0


def test_no_model_given_loads_the_builtin_model_and_says_so(
    capfd: pytest.CaptureFixture[str],
) -> None:
    lm = models.Transformers()
    err = capfd.readouterr().err
    assert "built-in model" in err
    assert str(MODEL_DIR) in err
    assert lm.engine.model.dtype.is_floating_point


@pytest.mark.parametrize(
    ("city", "country", "founded"),
    [
        ("Paris", "France", "250 BC"),
        ("Tokyo", "Japan", "1457"),
        ("New York", "United States", "1624"),
    ],
)
def test_the_shipped_model_answers_the_demo(
    builtin: Model, city: str, country: str, founded: str
) -> None:
    out = program(builtin, city)
    assert out["country"] == country
    assert out["founded"] == founded
    summary = str(out["summary"])
    assert summary.startswith(city)
    assert summary.endswith(".")
    record = City.model_validate_json(str(out["record"]))
    assert record.name == city
    assert record.country == country
    assert len(record.landmarks) >= 2


def test_a_missing_builtin_model_says_how_to_rebuild_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(rudder._builtin, "MODEL_DIR", tmp_path)
    with pytest.raises(ModelLoadError, match=r"python -m rudder\._builtin\.train"):
        builtin_model_path()
    with pytest.raises(ModelLoadError, match="built-in model is missing"):
        models.Transformers()
