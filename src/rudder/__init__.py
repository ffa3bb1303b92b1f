"""rudder: control language models with programs, and see every token.

The names follow the guidance library, so a guidance program runs with only its import
changed. Nothing heavy (torch, transformers, IPython) is imported here.

As in guidance, the module itself is the decorator: ``import rudder as guidance`` then
``@guidance`` or ``@guidance(stateless=True)``.
"""

import sys
import types
from typing import Any

from rudder import errors, models, trace
from rudder._decorator import GuidanceFunction, StatefulCall, guidance
from rudder._explore import TokenDetail, branches, explore, token_detail
from rudder._grammar._library import (
    at_most_n_repeats,
    capture,
    exactly_n_repeats,
    gbnf_to_lark,
    gen,
    json,
    lark,
    one_or_more,
    optional,
    regex,
    select,
    sequence,
    special_token,
    string,
    substring,
    token_limit,
    with_temperature,
    zero_or_more,
)
from rudder._grammar._match import Match
from rudder._grammar._nodes import GrammarNode
from rudder._roles import assistant, block, role, system, user
from rudder._settings import legacy_mode, settings
from rudder.store._writer import install as _install_store
from rudder.trace._run import hidden, run
from rudder.visual.html._export import export_html
from rudder.visual.notebook._notebook import install as _install_notebook
from rudder.visual.stream._publisher import install as _install_publisher
from rudder.visual.terminal._console import install as _install_terminal

__version__ = "0.1.0"

# Views attach late and replay: the trace is published to the bus from the first step.
_install_publisher()
# In a Jupyter kernel, cells become runs shown by the widget.
_install_notebook()
# In a terminal (or when asked for), runs are shown as text.
_install_terminal()
# With a store set (rudder.settings.store, RUDDER_STORE), every run is kept in it.
_install_store()


class _CallableModule(types.ModuleType):
    """rudder's module type: calling the module is calling :func:`rudder.guidance`."""

    def __call__(
        self,
        f: Any = None,
        *,
        stateless: bool = False,
        cache: bool = False,
        dedent: bool = True,
    ) -> Any:
        return guidance(f, stateless=stateless, cache=cache, dedent=dedent)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "GrammarNode",
    "GuidanceFunction",
    "Match",
    "StatefulCall",
    "TokenDetail",
    "__version__",
    "assistant",
    "at_most_n_repeats",
    "block",
    "branches",
    "capture",
    "errors",
    "exactly_n_repeats",
    "explore",
    "export_html",
    "gbnf_to_lark",
    "gen",
    "guidance",
    "hidden",
    "json",
    "lark",
    "legacy_mode",
    "models",
    "one_or_more",
    "optional",
    "regex",
    "role",
    "run",
    "select",
    "sequence",
    "settings",
    "special_token",
    "string",
    "substring",
    "system",
    "token_detail",
    "token_limit",
    "trace",
    "user",
    "with_temperature",
    "zero_or_more",
]
