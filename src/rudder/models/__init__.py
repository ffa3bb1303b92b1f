"""Models: the immutable :class:`Model` and one class per engine.

``Transformers`` imports torch and transformers only when it is constructed, ``LlamaCpp``
llama_cpp, and ``OpenAI`` httpx (the ``openai`` extra).
"""

from rudder.models._llama_cpp import LlamaCpp
from rudder.models._mock import Mock
from rudder.models._model import Model
from rudder.models._openai import OpenAI
from rudder.models._stream import ModelStream
from rudder.models._transformers import Transformers

__all__ = ["LlamaCpp", "Mock", "Model", "ModelStream", "OpenAI", "Transformers"]
