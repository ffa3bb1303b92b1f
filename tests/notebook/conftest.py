"""Fixtures of the notebook tier: a tiny local model, and where screenshots go.

The tier runs real kernels (nbclient) and a real JupyterLab driven by Debian's Chromium
(Playwright, never its downloaded browsers). Everything stays on 127.0.0.1: the kernels
load a tiny model built here, and hub access is switched off for them.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

# Kernels started by this tier inherit the environment: nothing may reach the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
# The debugger's frozen-modules note on stderr, printed by every kernel, is noise here.
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")

#: Screenshots and logs for people to look at (git-ignored).
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts" / "notebook"


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama-style model and its tokenizer, saved once for every kernel of the tier."""
    import torch

    from rudder._tiny_models import build_tiny_model

    torch.set_num_threads(1)
    return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"), "llama")


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    """The tier's artifacts folder, emptied of an earlier session's files."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    for old in ARTIFACTS.iterdir():
        if old.is_file():
            old.unlink()
    return ARTIFACTS


def execute_saved(
    notebook: nbformat.NotebookNode, directory: Path, *, store_widget_state: bool = False
) -> nbformat.NotebookNode:
    """Run ``notebook``'s cells in a real kernel (working in ``directory``), save it and read
    it back from disk: what a saved notebook holds is what a reader gets."""
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    NotebookClient(
        notebook,
        timeout=180,
        startup_timeout=120,
        kernel_name="python3",
        store_widget_state=store_widget_state,
        resources={"metadata": {"path": str(directory)}},
    ).execute()
    nbformat.write(notebook, directory / "executed.ipynb")
    return nbformat.read(directory / "executed.ipynb", as_version=4)
