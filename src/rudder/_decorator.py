"""``@guidance``: Python functions as grammars (stateless) or as program steps (stateful).

A *stateless* function builds a grammar: calling it runs the body once with an empty grammar
as ``lm`` and returns the resulting node, wrapped in a rule named after the function. When the
body calls the function again with the same arguments (recursion, also through other
functions), that inner call returns a :class:`RuleRef` which is tied to the finished rule, so
``value()`` may refer to ``value()``.

A *stateful* function is a function of a Model: calling it runs nothing and returns a
:class:`StatefulCall`, which a Model applies later (``lm + plan("goal")``). Composing it with
text or grammars gives a :class:`StatefulSequence` of steps applied in order. A stateful call
cannot become part of a grammar: that fails at once with
:class:`~rudder.errors.StatefulInGrammarError`.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import threading
import types
import weakref
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, Generic, TypeVar, overload

from rudder._dedent import dedented
from rudder._grammar._nodes import EMPTY, Deferred, GrammarNode, Rule, RuleRef, as_node
from rudder.errors import GrammarError, StatefulInGrammarError, WrongTypeError

F = TypeVar("F", bound=Callable[..., Any])


class StatefulCall(Deferred):
    """A stateful guidance function with its arguments, waiting for a Model."""

    __slots__ = ("args", "function", "kwargs")

    def __init__(
        self, function: GuidanceFunction[Any], args: tuple[Any, ...], kwargs: dict[str, Any]
    ):
        self.function = function
        self.args = args
        self.kwargs = kwargs

    def __call__(self, lm: Any) -> Any:
        """Run the function on ``lm`` and return what it returns (the new Model)."""
        result = self.function.invoke(lm, self.args, self.kwargs)
        if result is None:
            raise GrammarError(
                f"the stateful function {self.function.__name__}() returned None; "
                "it must return the Model (end it with `return lm`)"
            )
        return result

    def __str__(self) -> str:
        return f"{self.function.__name__}()"

    __repr__ = __str__


class StatefulSequence(Deferred):
    """Steps (text, grammars, stateful calls) that a Model applies one after another."""

    __slots__ = ("steps",)

    def __init__(self, steps: tuple[object, ...]) -> None:
        self.steps = steps

    def __call__(self, lm: Any) -> Any:
        for step in self.steps:
            lm = lm + step
        return lm

    def __str__(self) -> str:
        names = ", ".join(str(step) for step in self.steps if isinstance(step, StatefulCall))
        return f"a sequence with stateful steps ({names})"

    __repr__ = __str__


def sequence_of_steps(left: object, right: object) -> StatefulSequence:
    steps: list[object] = []
    for value in (left, right):
        if isinstance(value, StatefulSequence):
            steps.extend(value.steps)
        elif isinstance(value, (Deferred, GrammarNode, str)):
            steps.append(value)
        else:
            steps.append(as_node(value))  # raises a clear error for unsupported values
    return StatefulSequence(tuple(steps))


_building = threading.local()

#: How many stateless functions are being built in this context (roles are not allowed there).
_stateless_depth: contextvars.ContextVar[int] = contextvars.ContextVar(
    "rudder_stateless_depth", default=0
)


def building_stateless() -> bool:
    """Whether a stateless function's body is running (its ``lm`` is a grammar)."""
    return _stateless_depth.get() > 0


@contextmanager
def _stateless_body() -> Iterator[None]:
    token = _stateless_depth.set(_stateless_depth.get() + 1)
    try:
        yield
    finally:
        _stateless_depth.reset(token)


def _in_progress() -> dict[Hashable, RuleRef]:
    table: dict[Hashable, RuleRef] | None = getattr(_building, "table", None)
    if table is None:
        table = _building.table = {}
    return table


class GuidanceFunction(Generic[F]):
    """What ``@guidance`` returns: call it to build a grammar or a stateful call.

    Read through an instance (a decorated method), it gives a real bound method whose
    function is this function's method form (``method=True``: the first argument is the
    instance), so ``weakref.WeakMethod`` works and nothing holds the instance.
    """

    def __init__(
        self,
        function: F,
        *,
        stateless: bool,
        cache: bool,
        dedent: bool,
        method: bool = False,
    ) -> None:
        functools.update_wrapper(self, function)
        self.__name__: str = getattr(function, "__name__", "guidance_function")
        self.function = function
        self.stateless = stateless
        self.cache = cache
        self.dedent = dedent
        self.method = method
        self._body: Callable[..., Any] | None = None
        self._cached: dict[Hashable, GrammarNode] = {}
        # A method's grammars are kept per instance, and go with it.
        self._cached_per_instance: weakref.WeakKeyDictionary[Any, dict[Hashable, GrammarNode]]
        self._cached_per_instance = weakref.WeakKeyDictionary()
        self._method_form: GuidanceFunction[F] | None = None

    @property
    def __signature__(self) -> inspect.Signature:
        """The function's signature without ``lm`` (the Model or grammar it is given)."""
        signature = inspect.signature(self.function)
        parameters = list(signature.parameters.values())
        lm_index = 1 if self.method else 0
        del parameters[lm_index : lm_index + 1]
        return signature.replace(parameters=parameters)

    def __get__(self, instance: object, owner: type | None = None) -> Any:
        if instance is None:
            return self
        if self._method_form is None:
            form = GuidanceFunction(
                self.function,
                stateless=self.stateless,
                cache=self.cache,
                dedent=self.dedent,
                method=True,
            )
            form._body = self._body  # shares the recompiled body once there is one
            self._method_form = form
        return types.MethodType(self._method_form, instance)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.method and not args:
            raise TypeError(f"{self.__name__}() is a method: call it on an instance")
        if not self.stateless:
            return StatefulCall(self, args, kwargs)
        return self._build_grammar(args, kwargs)

    def invoke(self, lm: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """Run the body with ``lm`` as its first argument (after ``self`` for methods)."""
        body = self._resolved_body()
        if self.method:
            return body(args[0], lm, *args[1:], **kwargs)
        return body(lm, *args, **kwargs)

    def _resolved_body(self) -> Callable[..., Any]:
        if self._body is None:
            self._body = dedented(self.function) if self.dedent else self.function
        return self._body

    def _cache_for(self, args: tuple[Any, ...]) -> dict[Hashable, GrammarNode] | None:
        """Where grammars built for ``args`` are kept (None: not kept)."""
        if not self.cache:
            return None
        if not self.method:
            return self._cached
        try:
            return self._cached_per_instance.setdefault(args[0], {})
        except TypeError:  # an instance that cannot be weakly referenced or hashed
            return None

    def _build_grammar(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> GrammarNode:
        key = self._key(args, kwargs)
        if key is None:  # unhashable arguments: no recursion detection, no cache
            return self._run_stateless(args, kwargs)
        cache = self._cache_for(args)
        # Without the instance's id: a method's cache is the instance's own.
        cache_key = (key[0], *key[2:]) if self.method else key
        hit = cache.get(cache_key) if cache is not None else None
        if hit is not None:
            return hit
        building = _in_progress()
        pending = building.get(key)
        if pending is not None:
            return pending
        reference = RuleRef(self.__name__)
        building[key] = reference
        try:
            node = self._run_stateless(args, kwargs)
        finally:
            del building[key]
        rule = Rule(node, name=self.__name__)
        reference.resolve(rule)
        if cache is not None:
            cache[cache_key] = rule
        return rule

    def _run_stateless(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> GrammarNode:
        with _stateless_body():
            result = self.invoke(EMPTY, args, kwargs)
        if isinstance(result, Deferred):
            raise StatefulInGrammarError(
                f"the stateless function {self.__name__}() uses {result!s}, which is stateful; "
                "make that function stateless too (@guidance(stateless=True)), or make "
                f"{self.__name__}() stateful"
            )
        if result is None:
            raise GrammarError(
                f"the stateless function {self.__name__}() returned None; "
                "it must return the grammar it built (end it with `return lm + ...`)"
            )
        return as_node(result, where=f"the grammar returned by {self.__name__}()")

    def _key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Hashable, ...] | None:
        # The instance of a method counts by identity, as Python's own binding does.
        instance = (id(args[0]),) if self.method else ()
        rest = args[1:] if self.method else args
        key = (id(self.function), *instance, rest, tuple(sorted(kwargs.items())))
        try:
            hash(key)
        except TypeError:
            return None
        return key

    def __repr__(self) -> str:
        kind = "stateless" if self.stateless else "stateful"
        return f"<guidance function {self.__name__} ({kind})>"


@overload
def guidance(
    f: F, *, stateless: bool = False, cache: bool = False, dedent: bool = True
) -> GuidanceFunction[F]: ...


@overload
def guidance(
    f: None = None, *, stateless: bool = False, cache: bool = False, dedent: bool = True
) -> Callable[[F], GuidanceFunction[F]]: ...


def guidance(
    f: F | None = None,
    *,
    stateless: bool = False,
    cache: bool = False,
    dedent: bool = True,
) -> GuidanceFunction[F] | Callable[[F], GuidanceFunction[F]]:
    """Turn a function of ``lm`` into a grammar (``stateless=True``) or a program step.

    ``cache=True`` reuses the grammar built for the same arguments. ``dedent=True`` (the
    default) removes the common indentation of multi-line string literals in the body, so
    indented prompt text reads as written.
    """

    for flag, value in (("stateless", stateless), ("cache", cache), ("dedent", dedent)):
        if not isinstance(value, bool):
            raise WrongTypeError(f"@guidance({flag}=...) must be True or False, got {value!r}")

    def decorate(function: F) -> GuidanceFunction[F]:
        if not callable(function):
            raise WrongTypeError(f"@guidance decorates functions, not {type(function).__name__}")
        return GuidanceFunction(function, stateless=stateless, cache=cache, dedent=dedent)

    return decorate if f is None else decorate(f)
