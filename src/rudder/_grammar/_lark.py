"""Grammar nodes -> llguidance's grammar format: a pure translation, no I/O.

The output is llguidance's JSON form ``{"grammars": [{"lark_grammar": ...}, ...]}``: one Lark
grammar (llguidance's dialect, with ``%json`` and rule attributes) plus one sub-grammar per
embedded :class:`~._nodes.Lark` node and per rule whose options llguidance only accepts on
sub-grammars.

llguidance's constraints shape the output:

- ``temperature=`` and ``max_tokens=`` go only on rules whose body is a terminal, ``%json``
  or a ``@sub-grammar``; ``stop=``, ``suffix=`` and ``lazy`` only on terminal bodies.
  A rule whose body is *regular* (text, regexes and their combinations, no captures) is
  written as an uppercase terminal; any other body goes to a sub-grammar.
- Special tokens, ``%json`` and sub-grammar references cannot appear inside terminals.
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from rudder._grammar._nodes import (
    ANY_TEXT,
    NON_EMPTY_TEXT,
    GrammarNode,
    Join,
    Json,
    Lark,
    Literal,
    Regex,
    Repeat,
    Rule,
    RuleRef,
    Select,
    SpecialToken,
    Substring,
    _add_name,
)
from rudder.errors import GrammarError


@dataclass(frozen=True)
class CompiledGrammar:
    """A grammar ready for llguidance, with what a consumer needs to read its captures."""

    llguidance: str
    lark: str
    list_captures: frozenset[str]
    special_tokens: tuple[str, ...]
    #: Captures of json() values: a value cut by a token limit is not JSON, and is reported.
    json_captures: frozenset[str] = frozenset()


#: Choices wider than this are written so that llguidance's parser sees few alternatives
#: (its rows hold at most 2,000 items).
WIDE_SELECT = 100

_cache_lock = threading.Lock()
_compiled: dict[int, tuple[GrammarNode, CompiledGrammar]] = {}
_MAX_CACHED = 4096


def single_lark(node: GrammarNode) -> str:
    """``node`` as one Lark text, its sub-grammars inline (``%lark { ... }``): for servers
    that take a Lark grammar rather than llguidance's list of grammars."""
    return _Writer(_Shared(inline=True)).write_grammar(node)


def compile_without_token_limits(node: GrammarNode) -> CompiledGrammar:
    """``node`` without its ``max_tokens=`` limits (not cached): for replaying a server's
    output over a tokenizer other than its own, where its token limits (which the server
    enforced, counting its own tokens) cannot be counted."""
    return _Writer(_Shared(token_limits=False)).compile(node)


def compile_grammar(node: GrammarNode) -> CompiledGrammar:
    """Translate ``node`` (cached per node: nodes are immutable)."""
    key = id(node)
    with _cache_lock:
        hit = _compiled.get(key)
    if hit is not None and hit[0] is node:
        return hit[1]
    compiled = _Writer().compile(node)
    with _cache_lock:
        if len(_compiled) >= _MAX_CACHED:
            _compiled.clear()
        _compiled[key] = (node, compiled)
    return compiled


_LIST_MARK = "\u2063#"  # an invisible separator, then the rule's number


def capture_name(label: str) -> str:
    """The capture name behind llguidance's capture label (see ``capture_label``)."""
    return label.partition(_LIST_MARK)[0]


def lark_string(text: str) -> str:
    """A Lark string literal for ``text``."""
    return json.dumps(text, ensure_ascii=False)


def lark_regex(pattern: str) -> str:
    """A Lark ``/regex/`` token for ``pattern``: unescaped slashes and raw newlines escaped."""
    line_breaks = {"\n": "\\n", "\r": "\\r"}
    out: list[str] = []
    chars = iter(pattern)
    for char in chars:
        if char == "\\":
            escaped = next(chars, "\\")
            # An escaped line break (re.escape writes one) is the break: Lark needs it as \n.
            out.append(line_breaks.get(escaped, char + escaped))
        elif char == "/":
            out.append("\\/")
        else:
            out.append(line_breaks.get(char, char))
    return "/" + "".join(out) + "/"


def iter_nodes(root: GrammarNode) -> Iterator[GrammarNode]:
    """Every node reachable from ``root``, each once, following rule references."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        stack.extend(_children(node))


def _children(node: GrammarNode) -> tuple[GrammarNode, ...]:
    if isinstance(node, Join):
        return node.parts
    if isinstance(node, Select):
        return node.options
    if isinstance(node, Repeat):
        return (node.item,)
    if isinstance(node, Rule):
        extra = tuple(n for n in (node.stop, node.suffix) if n is not None)
        return (node.body, *extra)
    if isinstance(node, RuleRef):
        return (node.target,)
    return ()


class _Writer:
    """Writes one llguidance grammar; sub-grammars get their own writer and rule names."""

    def __init__(self, shared: _Shared | None = None) -> None:
        self.shared = shared or _Shared()
        self.lines: list[str] = []
        self.rule_names: dict[int, str] = {}
        # Apart from rule_names: one node may be both a rule and an uppercase terminal.
        self.terminal_names: dict[int, str] = {}
        self.regular: dict[int, bool] = {}

    def compile(self, root: GrammarNode) -> CompiledGrammar:
        names: dict[str, bool] = {}
        json_names: set[str] = set()
        specials: list[str] = []
        for node in iter_nodes(root):
            if isinstance(node, Rule):
                if node.capture is not None:
                    _add_name(names, node.capture, is_list=node.list_append)
                    if isinstance(node.body, Json):
                        json_names.add(node.capture)
                if node.stop_capture is not None:
                    _add_name(names, node.stop_capture, is_list=False)
            elif isinstance(node, SpecialToken) and node.text not in specials:
                specials.append(node.text)
        lark = self.write_grammar(root)
        grammars = [{"lark_grammar": lark}, *self.shared.subgrammars]
        return CompiledGrammar(
            llguidance=json.dumps({"grammars": grammars}, ensure_ascii=False),
            lark=lark,
            list_captures=frozenset(name for name, is_list in names.items() if is_list),
            json_captures=frozenset(json_names),
            special_tokens=tuple(specials),
        )

    def write_grammar(self, root: GrammarNode) -> str:
        start = self.expr(root)
        return "\n".join([f"start: {start}", *self.lines]) + "\n"

    # -- rule expressions (may contain non-terminals) -------------------------------------

    def expr(self, node: GrammarNode) -> str:
        if self.is_regular(node) and not isinstance(node, (Rule, RuleRef)):
            if self.has_wide_select(node):
                return self.terminal_name(node)  # one lexeme, not thousands of alternatives
            return self.term_expr(node)
        if isinstance(node, Select) and len(node.options) > WIDE_SELECT:
            return self.wide_select(node)
        composite = _composite(node, self.expr, self.atom)
        if composite is not None:
            return composite
        if isinstance(node, SpecialToken):
            return node.text  # checked by special_token(): one <...> token
        if isinstance(node, RuleRef):
            return self.rule_name(node.target)
        if isinstance(node, (Rule, Json, Lark)):
            return self.rule_name(node)
        raise AssertionError(f"unhandled grammar node {node!r}")

    def has_wide_select(self, node: GrammarNode) -> bool:
        """Whether a regular node holds a choice too wide for one parser row."""
        if isinstance(node, Select) and len(node.options) > WIDE_SELECT:
            return True
        return any(self.has_wide_select(child) for child in _children(node))

    def wide_select(self, node: Select) -> str:
        """A choice with more options than llguidance's parser takes in one row (2,000):
        the regular options become one terminal, so the row holds one item for them all."""
        regular = tuple(option for option in node.options if self.is_regular(option))
        others = [self.expr(option) for option in node.options if not self.is_regular(option)]
        if not regular:
            return " | ".join(others)
        return " | ".join([self.terminal_name(Select(regular)), *others])

    def atom(self, node: GrammarNode) -> str:
        text = self.expr(node)
        if isinstance(node, (Join, Select)) and not _is_single_token(text):
            return f"({text})"
        return text

    def rule_name(self, node: GrammarNode) -> str:
        name = self.rule_names.get(id(node))
        if name is None:
            hint = node.name if isinstance(node, Rule) else None
            name = self.shared.fresh(hint or ("json" if isinstance(node, Json) else "rule"))
            self.rule_names[id(node)] = name
            self.lines.append(self.rule_definition(name, node))
        return name

    def rule_definition(self, name: str, node: GrammarNode) -> str:
        if isinstance(node, (Json, Lark)):
            return f"{name}: {self.embedded(node)}"
        assert isinstance(node, Rule)
        if _ends_at_stop_or_eos(node):
            # A lazy lexeme ends only at its stop; the model's end-of-sequence token must end
            # it too, so the rule is the stop version or the same text ended by end-of-sequence.
            # The capture sits on the choice: on the alternatives, the end-of-sequence one
            # would report an empty capture as soon as it starts.
            at_stop_rule = dataclasses.replace(node, capture=None, list_append=False)
            body = at_stop_rule.body
            if isinstance(body, Regex) and body.pattern == ANY_TEXT:
                body = Regex(NON_EMPTY_TEXT)  # see gen(): no empty end-of-sequence lexeme
            at_eos_rule = dataclasses.replace(
                at_stop_rule, body=body, stop=Literal(""), stop_capture=None
            )
            at_stop, at_end = self.shared.fresh(f"{name}_stop"), self.shared.fresh(f"{name}_eos")
            self.lines.append(self.plain_rule_definition(at_stop, at_stop_rule))
            self.lines.append(self.plain_rule_definition(at_end, at_eos_rule))
            label = self.capture_label(node)
            capture = f"[capture={lark_string(label)}]" if label is not None else ""
            return f"{name}{capture}: {at_stop} | {at_end}"
        return self.plain_rule_definition(name, node)

    def plain_rule_definition(self, name: str, node: Rule) -> str:
        attributes = self.attributes(node)
        body = self.rule_body(node)
        suffix = f"[{', '.join(attributes)}]" if attributes else ""
        return f"{name}{suffix}: {body}"

    def rule_body(self, rule: Rule) -> str:
        needs_terminal = rule.lexeme_options
        needs_token_expr = needs_terminal or rule.temperature is not None or rule.max_tokens
        body = rule.body
        if not needs_token_expr:
            return self.expr(body)
        if self.is_regular(body):
            return self.terminal_name(body)
        if needs_terminal:
            raise GrammarError(
                "stop=, suffix= and lazy need a body of plain text or regexes (no captures, "
                f"JSON, special tokens or nested grammars); got {body!r}"
            )
        if isinstance(body, (Json, Lark)):
            return self.embedded(body)  # options must sit on the %json or @grammar itself
        return self.shared.reference(self.shared.add_subgrammar_node(body, self))

    def embedded(self, node: Json | Lark) -> str:
        if isinstance(node, Json):
            return f"%json {node.schema_text}"
        return self.shared.reference(self.shared.add_subgrammar(node.text))

    def attributes(self, rule: Rule) -> list[str]:
        attributes: list[str] = []
        label = self.capture_label(rule)
        if label is not None:
            attributes.append(f"capture={lark_string(label)}")
        if rule.temperature is not None:
            attributes.append(f"temperature={float(rule.temperature)!r}")
        if rule.max_tokens is not None and self.shared.token_limits:
            attributes.append(f"max_tokens={int(rule.max_tokens)}")
        if rule.stop is not None:
            attributes.append(f"stop={self.terminal_name(rule.stop, allow_empty=True)}")
        if rule.suffix is not None:
            attributes.append(f"suffix={self.terminal_name(rule.suffix)}")
        if rule.stop_capture is not None:
            attributes.append(f"stop_capture={lark_string(rule.stop_capture)}")
        if rule.lazy:
            attributes.append("lazy")
        return attributes

    def capture_label(self, rule: Rule) -> str | None:
        """The capture name llguidance sees: a list capture's gets a mark of its rule, so
        that equal values of two rules are two reports (llguidance reports a capture equal
        to the one before it once); :func:`capture_name` takes the mark off."""
        if rule.capture is None or not rule.list_append:
            return rule.capture
        return f"{rule.capture}{_LIST_MARK}{self.shared.fresh('')}"

    # -- terminals (regular expressions over bytes, no captures) ---------------------------

    def is_regular(self, node: GrammarNode) -> bool:
        known = self.regular.get(id(node))
        if known is not None:
            return known
        self.regular[id(node)] = False  # a cycle is never regular
        result = self._is_regular(node)
        self.regular[id(node)] = result
        return result

    def _is_regular(self, node: GrammarNode) -> bool:
        if isinstance(node, (Literal, Regex, Substring)):
            return True
        if isinstance(node, Join):
            return all(self.is_regular(part) for part in node.parts)
        if isinstance(node, Select):
            return all(self.is_regular(option) for option in node.options)
        if isinstance(node, Repeat):
            return self.is_regular(node.item)
        if isinstance(node, Rule):
            plain = node.capture is None and node.stop_capture is None
            no_options = node.temperature is None and node.max_tokens is None
            return plain and no_options and not node.lexeme_options and self.is_regular(node.body)
        return False

    def terminal_name(self, node: GrammarNode, *, allow_empty: bool = False) -> str:
        if allow_empty and isinstance(node, Literal) and node.text == "":
            return '""'
        name = self.terminal_names.get(id(node))
        if name is None:
            name = self.shared.fresh("T").upper()
            self.terminal_names[id(node)] = name
            self.lines.append(f"{name}: {self.term_expr(node)}")
        return name

    def term_expr(self, node: GrammarNode) -> str:
        if isinstance(node, Literal):
            return lark_string(node.text)
        if isinstance(node, Regex):
            return lark_regex(node.pattern)
        if isinstance(node, Substring):
            key = "substring_words" if node.chunk == "word" else "substring_chars"
            return self.terminal_definition(f"%regex {json.dumps({key: node.text})}")
        composite = _composite(node, self.term_expr, self.term_atom)
        if composite is not None:
            return composite
        if isinstance(node, Rule):
            return self.term_expr(node.body)
        raise AssertionError(f"not a terminal: {node!r}")

    def term_atom(self, node: GrammarNode) -> str:
        text = self.term_expr(node)
        if isinstance(node, Repeat) or _is_single_token(text):
            return text  # postfix repetition binds tightest: already an atom
        return f"({text})"

    def terminal_definition(self, body: str) -> str:
        name = self.shared.fresh("T").upper()
        self.lines.append(f"{name}: {body}")
        return name


class _Shared:
    """State shared by a grammar and its sub-grammars: unique names and the sub-grammar list."""

    def __init__(self, *, inline: bool = False, token_limits: bool = True) -> None:
        self.counter = 0
        self.subgrammars: list[dict[str, str]] = []
        self.by_node: dict[int, str] = {}
        #: Write each sub-grammar where it is used (``%lark { ... }``) instead of ``@name``.
        self.inline = inline
        #: Write ``max_tokens=`` (token limits count the tokens of the tokenizer that runs).
        self.token_limits = token_limits

    def reference(self, name: str) -> str:
        if not self.inline:
            return "@" + name
        text = next(g["lark_grammar"] for g in self.subgrammars if g["name"] == name)
        return "%lark {\n" + text.rstrip("\n") + "\n}"

    def fresh(self, hint: str) -> str:
        self.counter += 1
        base = re.sub(r"[^a-z0-9_]", "_", hint.lower()).strip("_") or "rule"
        if not base[0].isalpha():
            base = "r_" + base
        return f"{base}_{self.counter}"

    def add_subgrammar(self, lark: str) -> str:
        name = f"g{len(self.subgrammars) + 1}"
        self.subgrammars.append({"name": name, "lark_grammar": lark})
        return name

    def add_subgrammar_node(self, node: GrammarNode, parent: _Writer) -> str:
        known = self.by_node.get(id(node))
        if known is not None:
            return known
        index = len(self.subgrammars)
        name = f"g{index + 1}"
        self.by_node[id(node)] = name
        self.subgrammars.append({"name": name, "lark_grammar": ""})
        self.subgrammars[index]["lark_grammar"] = _Writer(self).write_grammar(node)
        return name


def _composite(
    node: GrammarNode, expr: Callable[[GrammarNode], str], atom: Callable[[GrammarNode], str]
) -> str | None:
    """Lark for a sequence, choice or repetition, the same for rules and terminals."""
    if isinstance(node, Join):
        return " ".join(atom(part) for part in node.parts)
    if isinstance(node, Select):
        return " | ".join(expr(option) for option in node.options)
    if isinstance(node, Repeat):
        return atom(node.item) + _repeat_suffix(node.min, node.max)
    return None


def _ends_at_stop_or_eos(rule: Rule) -> bool:
    stop = rule.stop
    has_stop_text = stop is not None and not (isinstance(stop, Literal) and stop.text == "")
    return has_stop_text and rule.suffix is None


def _repeat_suffix(low: int, high: int | None) -> str:
    if (low, high) == (0, None):
        return "*"
    if (low, high) == (1, None):
        return "+"
    if (low, high) == (0, 1):
        return "?"
    if high is None:
        return f"{{{low},}}"
    return f"{{{low}}}" if low == high else f"{{{low},{high}}}"


_SINGLE_TOKEN = re.compile(r'^(?:"(?:[^"\\]|\\.)*"|/(?:[^/\\]|\\.)*/|[A-Za-z_][\w-]*|<[^<>]*>)$')


def _is_single_token(text: str) -> bool:
    return _SINGLE_TOKEN.match(text) is not None
