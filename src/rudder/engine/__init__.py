"""The engine contracts (local: logits; remote: a server's tokens) and the shared loop."""

from rudder.engine._engine import Engine
from rudder.engine._remote import (
    RemoteEngine,
    RemoteRequest,
    ServerCandidate,
    ServerEnd,
    ServerToken,
    Support,
)
from rudder.engine._sampler import Sampling
from rudder.engine._tokenizer import EngineTokenizer

__all__ = [
    "Engine",
    "EngineTokenizer",
    "RemoteEngine",
    "RemoteRequest",
    "Sampling",
    "ServerCandidate",
    "ServerEnd",
    "ServerToken",
    "Support",
]
