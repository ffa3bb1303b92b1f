"""Models: the immutable :class:`Model` and one class per engine.

``Transformers`` imports torch and transformers only when it is constructed; ``OpenAI``
imports httpx (the ``openai`` extra) only then.
"""

from rudder.models._mock import Mock
from rudder.models._model import Model
from rudder.models._openai import OpenAI
from rudder.models._stream import ModelStream
from rudder.models._transformers import Transformers

__all__ = ["Mock", "Model", "ModelStream", "OpenAI", "Transformers"]
