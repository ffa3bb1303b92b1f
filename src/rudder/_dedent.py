"""Remove the common indentation of multi-line string literals inside a function body.

Prompts are often written as indented triple-quoted strings inside a function::

    @guidance
    def ask(lm, question):
        lm += f'''\\
        Question: {question}
        Answer: '''
        return lm

``@guidance(dedent=True)`` recompiles the function from its source with every multi-line
literal (plain or f-string) dedented: the lines after the first lose the indentation they
share. The first line keeps what it has, since it starts right after the quotes. Functions
whose source cannot be read (built in a REPL, by ``exec``) are used unchanged.
"""

from __future__ import annotations

import ast
import inspect
import textwrap
import types
from collections.abc import Callable
from typing import Any

# Stands for a formatted value while an f-string's text is dedented; never in source text.
_HOLE = "\x00"
_INNER = "__rudder_dedented__"


def dedent_text(text: str, *, include_first: bool = False) -> str:
    """Strip the indentation shared by the lines after the first (with the first too when
    ``include_first``, for literals that open with a backslash-newline), as
    ``textwrap.dedent`` does: lines of only whitespace become empty."""
    lines = text.split("\n")
    if len(lines) < 2 and not include_first:
        return text
    start = 0 if include_first else 1
    indents = [len(line) - len(line.lstrip(" \t")) for line in lines[start:] if line.strip(" \t")]
    margin = min(indents, default=0)
    body = [line[margin:] if line.strip(" \t") else "" for line in lines[start:]]
    return "\n".join(body if include_first else [lines[0], *body])


class _DedentStrings(ast.NodeTransformer):
    """Dedents triple-quoted literals written over several source lines; others stay."""

    def __init__(self, source: str) -> None:
        self.source = source

    def _layout(self, node: ast.expr) -> tuple[bool, bool]:
        """Whether ``node`` spans several source lines, and whether it opens with ``\\``."""
        if node.end_lineno is None or node.end_lineno == node.lineno:
            return False, False
        segment = ast.get_source_segment(self.source, node) or ""
        opening = segment.lstrip("rbfuRBFU")
        # Only triple-quoted literals: ("a\\n"  "  b") over two lines is written as meant.
        if not opening.startswith(('"""', "'''")):
            return False, False
        return True, opening[3:].startswith("\\\n")

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        if not isinstance(node.value, str):
            return node
        multi_line, continued = self._layout(node)
        if not multi_line:
            return node
        text = dedent_text(node.value, include_first=continued)
        return ast.copy_location(ast.Constant(text), node)

    def visit_JoinedStr(self, node: ast.JoinedStr) -> ast.AST:
        multi_line, continued = self._layout(node)
        pieces = [v.value if isinstance(v, ast.Constant) else _HOLE for v in node.values]
        text = "".join(str(piece) for piece in pieces)
        if not multi_line or text.count(_HOLE) != sum(p is _HOLE for p in pieces):
            return self.generic_visit(node)
        texts = iter(dedent_text(text, include_first=continued).split(_HOLE))
        values: list[ast.expr] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                continue
            values.extend(_text_constant(next(texts), value))
            values.append(self.visit(value))
        values.extend(_text_constant(next(texts), node))
        node.values = values
        return node


def _text_constant(text: str, where: ast.AST) -> list[ast.expr]:
    return [ast.copy_location(ast.Constant(text), where)] if text else []


def dedented(function: Callable[..., Any]) -> Callable[..., Any]:
    """``function`` recompiled with its multi-line string literals dedented."""
    try:
        source = textwrap.dedent(inspect.getsource(function))
        filename = inspect.getsourcefile(function) or "<guidance>"
        first_line = function.__code__.co_firstlineno
    except (OSError, TypeError, AttributeError):
        return function
    try:
        tree = ast.parse(source)
    except SyntaxError:  # e.g. a lambda whose source line is not a statement on its own
        return function
    definition = tree.body[0] if tree.body else None
    if not isinstance(definition, (ast.FunctionDef, ast.AsyncFunctionDef)):
        return function  # a lambda or something else we do not rewrite
    definition.decorator_list = []
    # Renamed so that the name does not become a local of the enclosing function below,
    # which would turn recursive calls into references to an unset closure cell.
    definition.name = _INNER
    _DedentStrings(source).visit(definition)
    code = _compile_in_closure(definition, function, filename, first_line)
    if code is None:
        return function
    rebuilt = types.FunctionType(
        code,
        function.__globals__,
        function.__name__,
        function.__defaults__,
        _closure_for(code, function),
    )
    rebuilt.__kwdefaults__ = function.__kwdefaults__
    rebuilt.__dict__.update(function.__dict__)
    rebuilt.__qualname__ = function.__qualname__
    return rebuilt


def _compile_in_closure(
    definition: ast.FunctionDef | ast.AsyncFunctionDef,
    function: Callable[..., Any],
    filename: str,
    first_line: int,
) -> types.CodeType | None:
    # Free variables stay free only if the function is compiled inside an enclosing function
    # that defines them; its cells are then swapped for the original closure's cells.
    assignments = [ast.parse(f"{name} = None").body[0] for name in function.__code__.co_freevars]
    outer = ast.FunctionDef(
        name="__rudder_outer__",
        args=ast.arguments(
            posonlyargs=[],
            args=[],
            vararg=None,
            kwonlyargs=[],
            kw_defaults=[],
            kwarg=None,
            defaults=[],
        ),
        body=[*assignments, definition],
        decorator_list=[],
        returns=None,
        type_comment=None,
    )
    module = ast.Module(body=[outer], type_ignores=[])
    ast.fix_missing_locations(module)
    ast.increment_lineno(module, first_line - 1)
    module_code = compile(module, filename, "exec")
    outer_code = _code_named(module_code, "__rudder_outer__")
    inner = None if outer_code is None else _code_named(outer_code, _INNER)
    return None if inner is None else inner.replace(co_name=function.__name__)


def _code_named(code: types.CodeType, name: str) -> types.CodeType | None:
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType) and constant.co_name == name:
            return constant
    return None


def _closure_for(code: types.CodeType, function: Callable[..., Any]) -> tuple[Any, ...] | None:
    if not code.co_freevars:
        return None
    cells = dict(zip(function.__code__.co_freevars, function.__closure__ or (), strict=True))
    return tuple(cells.get(name) or types.CellType() for name in code.co_freevars)
