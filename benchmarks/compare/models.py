"""The models both libraries load: built once into a cache folder, saved with ``save_pretrained``.

* ``wide``: a Llama-style model of one small layer over a 32,000-token BPE vocabulary (a
  realistic vocabulary: masks and tokenizer work cost what they cost with real models) and
  a 131,072-token context (long programs fit). Its forward is cheap, and timed apart.
* ``chat``: rudder's built-in model when it is there, else the tiny test model; both ChatML.

Both are saved with ``tokenizer_class`` set to ``PreTrainedTokenizerFast``, which the
transformers 5 of rudder's environment and the 4.x that guidance pins both load.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

CACHE = Path(__file__).resolve().parents[1] / ".cache"
WIDE_VOCABULARY = 32_000
WIDE_CONTEXT = 131_072

_WORD_TEXT = """
the of and to in is was for on that with as by at from it this be are or an which have has
not but one all new more can will about city country name age price order date time user
email address number value list item items type status id title text description created
updated total count start end first last home work phone tags true false null yes no open
closed active pending done error data result response
"""
_WORDS = _WORD_TEXT.split()
_SYLLABLES = [c + v for c in "bcdfghjklmnprstvwz" for v in ("a", "e", "i", "o", "u", "ai", "ou")]


def _corpus(seed: int = 0, lines: int = 20_000) -> list[str]:
    """English-like sentences and JSON records over made-up words: enough pairs for 32k merges."""
    rng = random.Random(seed)
    made_up = ["".join(rng.choices(_SYLLABLES, k=rng.randint(1, 4))) for _ in range(60_000)]
    texts = []
    for index in range(lines):
        words = [rng.choice(_WORDS) if rng.random() < 0.4 else rng.choice(made_up)
                 for _ in range(rng.randint(5, 15))]  # fmt: skip
        texts.append(" ".join(words).capitalize() + ".")
        record = {
            "id": index,
            rng.choice(_WORDS): rng.choice(made_up),
            "count": rng.randint(0, 9999),
            "score": round(rng.random() * 100, 2),
            "email": f"{rng.choice(made_up)}@{rng.choice(made_up)}.com",
            "date": f"20{rng.randint(10, 29)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
        }
        texts.append(json.dumps(record))
    return texts


def _make_portable(path: Path) -> Path:
    config_file = path / "tokenizer_config.json"
    config = json.loads(config_file.read_text())
    config["tokenizer_class"] = "PreTrainedTokenizerFast"
    config_file.write_text(json.dumps(config, indent=2) + "\n")
    return path


def build_wide_model(path: Path) -> Path:
    """The 32k-vocabulary model (reused when already built)."""
    if (path / "model.safetensors").is_file():
        return path
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig

    from rudder._tiny_models import train_tokenizer

    tokenizer = train_tokenizer(_corpus(), WIDE_VOCABULARY)
    shape: dict[str, Any] = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 1}
    heads = {"num_attention_heads": 4, "num_key_value_heads": 2}
    config = LlamaConfig(
        vocab_size=len(tokenizer), max_position_embeddings=WIDE_CONTEXT, **shape, **heads,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
    )  # fmt: skip
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config)
    building = path.with_name(path.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    model.save_pretrained(building)
    tokenizer.save_pretrained(building)
    _make_portable(building)
    building.rename(path)
    return path


def _builtin_source() -> Path | None:
    try:
        from rudder._builtin import builtin_model_path

        return builtin_model_path()
    except Exception:  # not built yet (ModelLoadError), or not in this rudder (ImportError)
        return None


def chat_model(cache: Path) -> tuple[Path, str]:
    """rudder's built-in model (a portable copy) or, without it, the tiny test model."""
    source = _builtin_source()
    if source is None:
        from rudder._tiny_models import build_tiny_model

        return _make_portable(build_tiny_model(cache / "tiny-llama", "llama")), "tiny"
    stamp = json.dumps([str(source), (source / "model.safetensors").stat().st_mtime_ns])
    path = cache / "builtin"
    if not (path / "source.json").is_file() or (path / "source.json").read_text() != stamp:
        shutil.rmtree(path, ignore_errors=True)
        shutil.copytree(source, path)
        _make_portable(path)
        (path / "source.json").write_text(stamp)
    return path, "builtin"
