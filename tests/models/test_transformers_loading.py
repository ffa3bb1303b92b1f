"""Loading a Transformers model: bad arguments fail at once, before any weight is read; a
hub id that cannot be had fails at once; a short program prints nothing."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from rudder import models
from rudder.errors import ModelLoadError, RudderError


@pytest.mark.parametrize(
    ("device", "message"),
    [
        ("bogus", "unknown device 'bogus'"),
        ("cuda:7", "CUDA"),
        ("cuda", "CUDA"),
        (5, "device must be a string"),
    ],
)
def test_a_bad_device_fails_before_the_model_is_looked_for(
    tmp_path: Path, device: object, message: str
) -> None:
    # The path does not exist: had the weights been looked for first, that error would win.
    with pytest.raises(ModelLoadError, match=message):
        models.Transformers(str(tmp_path / "no-such-model"), device=device)


@pytest.mark.parametrize("dtype", ["float13", "int8", 3, "torch.bogus"])
def test_a_bad_dtype_fails_before_the_model_is_looked_for(tmp_path: Path, dtype: object) -> None:
    with pytest.raises(ModelLoadError, match="unknown dtype") as caught:
        models.Transformers(str(tmp_path / "no-such-model"), dtype=dtype)
    assert "float16" in str(caught.value)  # it says what would work
    assert isinstance(caught.value, RudderError)


@pytest.mark.parametrize("dtype", ["float32", "torch.float32", "auto", None])
def test_dtype_names_torch_knows_load(llama_path: Path, dtype: object) -> None:
    import torch

    lm = models.Transformers(str(llama_path), dtype=dtype, device="cpu")
    assert lm.engine.model.dtype == torch.float32  # the tiny model is saved in float32


def test_an_unknown_hub_id_with_the_hub_out_of_reach_fails_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    with pytest.raises(ModelLoadError, match="cannot be reached") as caught:
        models.Transformers("nobody/no-such-model")
    assert "nobody/no-such-model" in str(caught.value)
    assert "local path" in str(caught.value)


def test_an_unknown_hub_id_offline_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    with pytest.raises(ModelLoadError, match="HF_HUB_OFFLINE"):
        models.Transformers("nobody/no-such-model")


def test_a_short_program_prints_nothing_even_with_warnings_as_errors(llama_path: Path) -> None:
    # What a user's script sees: no deprecation warning from any transformers version the
    # extra allows, no progress bar in a pipe, nothing else on stdout or stderr.
    program = (
        "import torch; torch.set_num_threads(1)\n"
        "from rudder import gen, models\n"
        f"lm = models.Transformers({str(llama_path)!r}, echo=False)\n"
        "lm += 'Once upon a time ' + gen('story', max_tokens=5)\n"
        "assert len(lm['story']) > 0\n"
    )
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", program],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
