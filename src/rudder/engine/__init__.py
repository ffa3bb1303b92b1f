"""The engine contract and the engine-agnostic decode loop."""

from rudder.engine._engine import Engine
from rudder.engine._sampler import Sampling
from rudder.engine._tokenizer import EngineTokenizer

__all__ = ["Engine", "EngineTokenizer", "Sampling"]
