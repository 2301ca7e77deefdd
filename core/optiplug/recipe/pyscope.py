"""The state a ``.py`` config's evaluator works on: its names, its limits, and what it cannot see into.

:class:`Scope` holds one file's namespace (and the comprehension scopes inside it), the
count of values made against :data:`MAX_VALUES`, and the containers *poisoned* by code
that is not run: reading one of those reads the :class:`~optiplug.recipe.pyvalues.Unknown`
it became. :class:`Imported` and :class:`Function` are the two values a name holds that
are not data: a name bound by an import (never executed) and a ``def`` / ``class`` (never
called). The expressions (:mod:`~optiplug.recipe.pyexpressions`) and the statements
(:mod:`~optiplug.recipe.pystatements`) are evaluated over it.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optiplug.errors import ConfigError
from optiplug.recipe.pyvalues import Unknown

MAX_INT_BITS = 4096
MAX_SEQUENCE = 100_000
MAX_VALUES = 1_000_000
MAX_DEPTH = 100
MAX_STRING = 100_000
CONSTANTS = (str, int, float, bool, type(None))
CONSTRUCTS: dict[type[ast.AST], str] = {
    ast.Lambda: "a lambda",
    ast.FunctionDef: "a function definition",
    ast.AsyncFunctionDef: "a function definition",
    ast.ClassDef: "a class definition",
    ast.While: "a while loop",
    ast.With: "a with statement",
    ast.AsyncWith: "a with statement",
    ast.Try: "a try statement",
    ast.Match: "a match statement",
    ast.Await: "an await",
    ast.Yield: "a yield",
    ast.YieldFrom: "a yield",
    ast.AsyncFor: "an async loop",
}


class Imported:
    """A name bound by an import, never executed: ``module`` and the imported ``name`` (None: a module)."""

    __slots__ = ("module", "name")

    def __init__(self, module: str, name: str | None) -> None:
        self.module = module
        self.name = name

    def attribute(self, attr: str) -> Imported:
        """``x.attr`` of the imported ``x``, as MMEngine's LazyAttr."""
        return Imported(self.module if self.name is None else f"{self.module}.{self.name}", attr)

    @property
    def label(self) -> str:
        """The name the config uses for it, as ``str()`` of MMEngine's lazy objects gives it."""
        return self.module if self.name is None else self.name

    @property
    def dotted(self) -> str:
        """The full dotted name (``torch.optim.SGD``), as MMEngine's ``to_dict()`` writes it."""
        return self.module if self.name is None else f"{self.module}.{self.name}"


class Function:
    """A function or class defined in the file (never called: calling it may change any name)."""

    __slots__ = ("line", "name")

    def __init__(self, name: str, line: int) -> None:
        self.name = name
        self.line = line


class _Missing:
    pass


MISSING: Any = _Missing()
"""What :meth:`Scope.lookup` returns for a name bound nowhere."""


class Scope:
    """One file's namespace, its comprehension scopes, and the limits on what it makes."""

    def __init__(self, path: Path, names: dict[str, Any] | None = None) -> None:
        self.path = path
        self.source = str(path)
        self.names: dict[str, Any] = names if names is not None else {}
        self.scopes: list[dict[str, Any]] = []
        self.values = 0
        self.poisoned: dict[int, tuple[Any, Unknown]] = {}
        self.base_hook: Callable[[ast.With], bool] | None = None

    # -- errors and limits -------------------------------------------------------------------

    def stop(self, node: ast.AST, message: str) -> ConfigError:
        """A hard error for the whole file, naming the line."""
        return ConfigError(f"{self.source}, line {getattr(node, 'lineno', '?')}: {message}")

    def unknown(self, node: ast.AST, construct: str) -> Unknown:
        """An Unknown made at ``node`` by ``construct``."""
        return Unknown(self.source, getattr(node, "lineno", "?"), construct)

    def charge(self, node: ast.AST, count: int) -> None:
        """Count the values made: a few lines could otherwise double a list 40 times."""
        self.values += count
        if self.values > MAX_VALUES:
            raise self.stop(
                node, f"the file makes more than {MAX_VALUES:,} values (names copied into each other); too big"
            )

    def size(self, node: ast.AST, value: Any) -> int:
        """How many values ``value`` holds with its shared parts expanded (charged as it is counted)."""
        memo: dict[int, int] = {}
        return self._size(node, value, memo, 0, set())

    def _size(self, node: ast.AST, value: Any, memo: dict[int, int], depth: int, inside: set[int]) -> int:
        if not isinstance(value, dict | list | tuple | set):
            return 1
        key = id(value)
        if key in memo:
            return memo[key]
        if depth > MAX_DEPTH:
            raise self.stop(node, "nested too deeply to be a config")
        if key in inside:
            raise self.stop(node, "this value contains itself")
        inside.add(key)
        items = list(value.items()) if isinstance(value, dict) else [(None, v) for v in value]
        total = 1
        for k, v in items:
            total += self._size(node, k, memo, depth + 1, inside) + self._size(node, v, memo, depth + 1, inside)
            if total > MAX_VALUES:
                raise self.stop(node, f"the file makes more than {MAX_VALUES:,} values; too big")
        inside.discard(key)
        memo[key] = total
        return total

    def check_length(self, node: ast.AST, length: int) -> None:
        """Refuse a sequence over the limit before it is made."""
        if length > MAX_SEQUENCE:
            raise self.stop(node, f"a sequence of more than {MAX_SEQUENCE:,} items; too big for a config")

    # -- names ---------------------------------------------------------------------------

    def poison_all(self, unknown: Unknown) -> None:
        """Every name bound so far becomes ``unknown`` (and the values they hold)."""
        for name, value in list(self.names.items()):
            if not isinstance(value, Imported | Function):
                self.poison(value, unknown)
                self.names[name] = unknown

    def poison(self, value: Any, unknown: Unknown) -> None:
        """``value`` (a container, and all it holds) may have been changed: reading it is reading ``unknown``."""
        stack = [value]
        while stack:
            item = stack.pop()
            if isinstance(item, dict | list | set) and id(item) not in self.poisoned:
                self.poisoned[id(item)] = (item, unknown)
                stack.extend(item.values() if isinstance(item, dict) else item)
            elif isinstance(item, tuple):
                stack.extend(item)

    def bind(self, name: str, value: Any) -> None:
        """Bind ``name`` in the innermost scope (a comprehension's, else the file's)."""
        scope = self.scopes[-1] if self.scopes else self.names
        scope[name] = value

    def known(self, value: Any) -> Any:
        """``value``, or the Unknown it became when something it holds was changed by what is not run."""
        if isinstance(value, dict | list | set) and id(value) in self.poisoned:
            return self.poisoned[id(value)][1]
        return value

    def lookup(self, name: str) -> Any:
        """The value of ``name`` (comprehension scopes first); a sentinel when unbound."""
        for scope in reversed(self.scopes):
            if name in scope:
                return scope[name]
        return self.names.get(name, MISSING)


def hashable(key: Any) -> bool:
    """Whether ``key`` may be a dict key of config data (a constant, or a tuple of them)."""
    return isinstance(key, CONSTANTS) or (isinstance(key, tuple) and all(hashable(k) for k in key))


def root_name(node: ast.expr) -> str | None:
    """The name under ``x.a[0]`` (None if there is none)."""
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def short(node: ast.AST) -> str:
    """``node`` as source text, clipped for a message."""
    try:
        return clip(ast.unparse(node))
    except (ValueError, RecursionError, AttributeError):
        return type(node).__name__


def clip(text: str) -> str:
    """``text`` on one line, at most 60 characters."""
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."
