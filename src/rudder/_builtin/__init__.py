"""rudder's built-in model: a small Llama-style chat model that ships with the package.

It is trained by ``python -m rudder._builtin.train`` on a corpus the script generates
(:mod:`rudder._builtin._corpus`), and is what ``models.Transformers()`` loads when no model
is named, and what ``rudder demo`` runs by default.
"""

from __future__ import annotations

from pathlib import Path

from rudder.errors import ModelLoadError

#: Where the trained model's files live inside the package.
MODEL_DIR = Path(__file__).resolve().parent / "model"
#: The training run's record (steps, final loss, seconds, seed), next to the weights.
TRAINING_FILE = "training.json"
_REQUIRED = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")


def builtin_model_path() -> Path:
    """The folder of the built-in model; raises ``ModelLoadError`` when files are missing."""
    missing = [name for name in _REQUIRED if not (MODEL_DIR / name).is_file()]
    if missing:
        raise ModelLoadError(
            f"rudder's built-in model is missing from {MODEL_DIR} ({', '.join(missing)}); "
            "rebuild it with `python -m rudder._builtin.train`, or reinstall rudder"
        )
    return MODEL_DIR
