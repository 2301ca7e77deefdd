"""The statements and expressions of a ``.py`` config, evaluated as data: nothing is ever run.

:class:`Evaluator` walks one file's module-level statements over its own namespace. It
computes what plain Python would for literals, displays, names, arithmetic,
comparisons, ``if`` / ``for`` over known values, comprehensions, subscripts, f-strings,
a fixed set of pure builtins (:data:`PURE_BUILTINS`) and methods of known values
(:data:`METHODS`: ``update``, ``extend``, ``append``, ``get``, ...). Everything else
(a call of anything else, a function or class definition, ``while``, ``try``...) is
never run: its result is an :class:`~optiplug.recipe.pyvalues.Unknown` and the names it
assigns or the values it could mutate become Unknown. A bare call of something the
reader does not model could change any name, so every name bound so far becomes Unknown.

Imports are never executed: a name bound by an import is the imported thing's name, as
MMEngine's lazy import makes it (``from torch.optim import SGD`` then ``type=SGD`` is
``'SGD'``; ``torch.optim.SGD`` too). ``copy.deepcopy`` / ``copy.copy`` are the one
imported call evaluated (a copy of known data).

Resource limits are hard errors, as before: more than :data:`MAX_VALUES` values made
(names copied into each other included), a sequence over :data:`MAX_SEQUENCE` items, an
integer over :data:`MAX_INT_BITS` bits, nesting too deep.
"""

from __future__ import annotations

import ast
import copy
import math
import operator
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from optiplug.errors import ConfigError
from optiplug.recipe.pyvalues import Unknown, UnknownValueError

MAX_INT_BITS = 4096
MAX_SEQUENCE = 100_000
MAX_VALUES = 1_000_000
MAX_DEPTH = 100
MAX_STRING = 100_000
CONSTANTS = (str, int, float, bool, type(None))
BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
    ast.BitOr: operator.or_,
}
COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
}
PURE_BUILTINS: dict[str, Callable[..., Any]] = {
    "dict": dict,
    "list": list,
    "tuple": tuple,
    "set": set,
    "sum": sum,
    "min": min,
    "max": max,
    "len": len,
    "range": range,
    "int": int,
    "float": float,
    "str": str,
    "bool": bool,
    "abs": abs,
    "round": round,
    "sorted": sorted,
    "reversed": reversed,
    "zip": zip,
    "enumerate": enumerate,
    "any": any,
    "all": all,
}
"""The only callables evaluated, and only on known arguments."""
METHODS: dict[type, frozenset[str]] = {
    dict: frozenset({"get", "keys", "values", "items", "copy", "update", "pop", "setdefault"}),
    list: frozenset({"append", "extend", "insert", "pop", "copy", "index", "count", "remove", "reverse"}),
    tuple: frozenset({"index", "count"}),
    str: frozenset(
        {"join", "lower", "upper", "strip", "lstrip", "rstrip", "split", "startswith", "endswith", "format"}
    ),
}
"""Methods of known values that are evaluated (on known arguments)."""
COPY_FUNCTIONS = {("copy", "deepcopy"), ("copy", "copy")}
CONVERSIONS: dict[int, Callable[[Any], str]] = {115: str, 114: repr, 97: ascii}
"""f-string conversions: ``!s``, ``!r``, ``!a``."""
HARMLESS_CALLS = frozenset({"print"})
NAMESPACE_BUILTINS = frozenset(
    {"exec", "eval", "compile", "globals", "locals", "vars", "setattr", "delattr", "getattr", "__import__"}
)
"""Builtins that can reach the file's namespace: a call of one may change any name."""
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


class Evaluator:
    """One file's namespace, filled statement by statement."""

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

    # -- statements ------------------------------------------------------------------------

    def run(self, body: list[ast.stmt]) -> None:
        """Evaluate ``body`` in order."""
        for statement in body:
            try:
                self.statement(statement)
            except RecursionError:
                raise self.stop(statement, "nested too deeply to be a config") from None

    def statement(self, node: ast.stmt) -> None:
        """Evaluate one statement."""
        if isinstance(node, ast.Assign):
            value = self.expr(node.value)
            for target in node.targets:
                self.assign(target, value, node)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.assign(node.target, self.expr(node.value), node)
        elif isinstance(node, ast.AugAssign):
            self.aug_assign(node)
        elif isinstance(node, ast.Expr):
            self.expression_statement(node)
        elif isinstance(node, ast.If):
            self.if_statement(node)
        elif isinstance(node, ast.For):
            self.for_statement(node)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            self.import_statement(node)
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self.delete(target, node)
        elif isinstance(node, ast.With) and self.base_hook is not None and self.base_hook(node):
            return
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            # a class body, decorators and default values run at definition: a call there may change any name
            runs = node.body if isinstance(node, ast.ClassDef) else []
            runs_now = [*node.decorator_list, *runs]
            if not isinstance(node, ast.ClassDef):
                runs_now += [*node.args.defaults, *(d for d in node.args.kw_defaults if d is not None)]
            else:
                runs_now += [*node.bases, *(k.value for k in node.keywords)]
            if any(self._calls_anything(item) for item in runs_now):
                self.poison_all(
                    self.unknown(node, f"the definition of {node.name} (it runs code that may change any name)")
                )
            self.bind(node.name, Function(node.name, node.lineno))
        elif isinstance(node, ast.Pass | ast.Global | ast.Nonlocal | ast.Assert | ast.Raise):
            return
        else:
            self.not_evaluated(node, [node], CONSTRUCTS.get(type(node), f"a {type(node).__name__} statement"))

    def not_evaluated(self, node: ast.AST, body: list[ast.stmt], construct: str) -> None:
        """The names ``body`` assigns or mutates become Unknown (every name, if it calls what it may not)."""
        unknown = self.unknown(node, construct)
        if any(self._calls_anything(s) for s in body):
            self.poison_all(unknown)
        for name in sorted(_assigned_names(body)):
            self.bind(name, unknown)

    def _calls_anything(self, statement: ast.AST) -> bool:
        for sub in ast.walk(statement):
            if isinstance(sub, ast.Call) and not self._is_modelled_call(sub):
                return True
            if isinstance(sub, ast.Global):
                return True
            if isinstance(sub, ast.ImportFrom) and any(a.name == "*" for a in sub.names):
                return True
        return False

    def _is_modelled_call(self, node: ast.Call) -> bool:
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in PURE_BUILTINS or func.id in HARMLESS_CALLS
        return isinstance(func, ast.Attribute) and any(func.attr in m for m in METHODS.values())

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

    def assign(self, target: ast.expr, value: Any, node: ast.stmt) -> None:
        """Assign ``value`` to an assignment target."""
        if isinstance(target, ast.Name):
            self.bind(target.id, value)
        elif isinstance(target, ast.Tuple | ast.List):
            self.unpack(target, value, node)
        elif isinstance(target, ast.Subscript):
            self.set_item(target, value, node)
        elif isinstance(target, ast.Starred):
            self.assign(target.value, value, node)
        elif isinstance(target, ast.Attribute) and isinstance(self.known(self.expr(target.value)), dict):
            self.known(self.expr(target.value))[target.attr] = value  # MMEngine's ConfigDict: keys as attributes
        else:
            self.mutated(target, self.unknown(node, f"an assignment to {ast.unparse(target)}"))

    def unpack(self, target: ast.Tuple | ast.List, value: Any, node: ast.stmt) -> None:
        """``a, *b = value``: each target gets its item, or all become unknown."""
        items = self.known(value)
        if isinstance(items, str | dict):
            items = list(items)
        stars = [i for i, t in enumerate(target.elts) if isinstance(t, ast.Starred)]
        if isinstance(items, list | tuple) and len(stars) <= 1:
            count = len(target.elts)
            if not stars and len(items) == count:
                for sub, item in zip(target.elts, items, strict=True):
                    self.assign(sub, item, node)
                return
            if stars and len(items) >= count - 1:
                star = stars[0]
                after = count - star - 1
                split = len(items) - after
                for sub, item in zip(target.elts[:star], items[:star], strict=True):
                    self.assign(sub, item, node)
                self.assign(target.elts[star], list(items[star:split]), node)
                for sub, item in zip(target.elts[star + 1 :], items[split:], strict=True):
                    self.assign(sub, item, node)
                return
        unknown = value if isinstance(value, Unknown) else self.unknown(node, f"unpacking into {ast.unparse(target)}")
        for name in _target_names(target):
            self.bind(name, unknown)

    def set_item(self, target: ast.Subscript, value: Any, node: ast.stmt) -> None:
        """``x[key] = value`` on a known dict or list; otherwise ``x`` becomes unknown."""
        container = self.known(self.expr(target.value))
        key = self.key(target.slice)
        if isinstance(container, dict) and not isinstance(key, Unknown) and _hashable(key):
            container[key] = value
            return
        if isinstance(container, list) and isinstance(key, int) and not isinstance(key, bool):
            if -len(container) <= key < len(container):
                container[key] = value
                return
        self.mutated(target, self.unknown(node, f"an assignment to {ast.unparse(target)}"))

    def mutated(self, target: ast.expr, unknown: Unknown) -> None:
        """The value under ``target`` (``x``, ``x.a``, ``x[0]``...) may have changed.

        The deepest known container on the way to it becomes unknown (every name holding
        it sees that); the name itself when none is known.
        """
        prefix = target
        while isinstance(prefix, ast.Attribute | ast.Subscript | ast.Starred):
            prefix = prefix.value
            if isinstance(prefix, ast.Name | ast.Attribute | ast.Subscript):
                container = self.known(self.expr(prefix))
                if isinstance(container, dict | list | set):
                    self.poison(container, unknown)
                    return
        if isinstance(target, ast.Name):
            current = self.known(self.lookup(target.id))
            if isinstance(current, dict | list | set):
                self.poison(current, unknown)
            self.bind(target.id, unknown)
            return
        root = _root_name(target)
        if root is not None:
            self.bind(root, unknown)

    def aug_assign(self, node: ast.AugAssign) -> None:
        """``x += value`` (in place for a list, as Python does)."""
        if isinstance(node.target, ast.Name):
            current = self.lookup_node(node.target)
            operand = self.expr(node.value)
            if isinstance(current, list) and isinstance(node.op, ast.Add):
                extra = self.known(operand)
                if isinstance(extra, list | tuple):
                    self.check_length(node, len(current) + len(extra))
                    current.extend(extra)  # in place, as Python does
                    return
            self.bind(node.target.id, self.binary(node, node.op, current, operand))
            return
        if isinstance(node.target, ast.Subscript | ast.Attribute):
            current = self.expr(node.target)
            self.assign(node.target, self.binary(node, node.op, current, self.expr(node.value)), node)
            return
        self.mutated(node.target, self.unknown(node, f"an augmented assignment to {ast.unparse(node.target)}"))

    def delete(self, target: ast.expr, node: ast.stmt) -> None:
        """``del x`` / ``del x[key]``."""
        if isinstance(target, ast.Name):
            scope = self.scopes[-1] if self.scopes else self.names
            scope.pop(target.id, None)
            return
        if isinstance(target, ast.Subscript):
            container = self.known(self.expr(target.value))
            key = self.key(target.slice)
            if isinstance(container, dict) and not isinstance(key, Unknown) and _hashable(key) and key in container:
                del container[key]
                return
        if isinstance(target, ast.Attribute):  # MMEngine's ConfigDict: del _base_.model
            container = self.known(self.expr(target.value))
            if isinstance(container, dict) and target.attr in container:
                del container[target.attr]
                return
        self.mutated(target, self.unknown(node, f"del {ast.unparse(target)}"))

    def expression_statement(self, node: ast.Expr) -> None:
        """A bare expression: a method of a known value is applied; any other call may change any name."""
        value = node.value
        if isinstance(value, ast.Constant):
            return
        if isinstance(value, ast.Call):
            func = value.func
            if isinstance(func, ast.Name) and func.id in HARMLESS_CALLS and func.id not in self.names:
                return
            if isinstance(func, ast.Attribute) and self._method_receiver(func) is not None:
                self.expr(value)  # a method of a known value: evaluated, or its receiver made unknown
                return
            if isinstance(func, ast.Name) and func.id in PURE_BUILTINS and func.id not in self.names:
                return
            self.poison_all(self.unknown(node, f"a call to {_short(func)}() (it may change any name)"))
            return
        self.expr(value)

    def if_statement(self, node: ast.If) -> None:
        """The branch a known condition selects; both branches' names unknown otherwise."""
        test = self.truth(self.expr(node.test))
        if isinstance(test, Unknown):
            construct = f"an if on {_short(node.test)}, which is not known ({test.construct})"
            self.not_evaluated(node, [*node.body, *node.orelse], construct)
        else:
            self.run_nested(node.body if test else node.orelse)

    def run_nested(self, body: list[ast.stmt]) -> None:
        """Evaluate the statements of a block."""
        for statement in body:
            self.statement(statement)

    def for_statement(self, node: ast.For) -> None:
        """A loop over a known iterable, run item by item (bounded)."""
        iterable = self.iterate(node, self.expr(node.iter))
        jumps = any(isinstance(s, ast.Break | ast.Continue) for s in ast.walk(node))
        if isinstance(iterable, Unknown) or jumps or node.orelse:
            construct = f"a loop over {_short(node.iter)}"
            if isinstance(iterable, Unknown):
                construct += f", which is not known ({iterable.construct})"
            self.not_evaluated(node, [node], construct)
            return
        for item in iterable:
            self.charge(node, 1)
            self.assign(node.target, item, node)
            self.run_nested(node.body)

    def import_statement(self, node: ast.Import | ast.ImportFrom) -> None:
        """Bind imported names (never imported): they stand for the names they import."""
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    self.bind(alias.asname, Imported(alias.name, None))
                else:
                    top = alias.name.split(".")[0]
                    self.bind(top, Imported(top, None))
            return
        module = "." * node.level + (node.module or "")
        for alias in node.names:
            if alias.name == "*":
                self.poison_all(self.unknown(node, f"from {module} import * (it may change any name)"))
            else:
                self.bind(alias.asname or alias.name, Imported(module, alias.name))

    # -- expressions -----------------------------------------------------------------------

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
        return self.names.get(name, _MISSING)

    def lookup_node(self, node: ast.Name) -> Any:
        """The value of a name used in an expression (charged as copied), or an Unknown saying why not."""
        value = self.lookup(node.id)
        if value is _MISSING:
            if node.id in PURE_BUILTINS:
                return self.unknown(node, f"the builtin {node.id} used as a value")
            return self.unknown(node, f"the name {node.id!r}, assigned nowhere before (nor imported)")
        if isinstance(value, Function):
            return Unknown(self.source, value.line, f"{value.name}, defined by a def or class statement")
        value = self.known(value)
        if isinstance(value, dict | list | tuple | set):
            self.charge(node, self.size(node, value))
        return value

    def expr(self, node: ast.expr) -> Any:
        """The value of ``node``: plain data, an :class:`Imported` name, or an Unknown."""
        method = getattr(self, f"_{type(node).__name__}", None)
        if method is None:
            return self.unknown(node, CONSTRUCTS.get(type(node), f"a {type(node).__name__} expression"))
        try:
            return method(node)
        except UnknownValueError as exc:  # an Unknown used inside a builtin: the result is unknown
            return exc.unknown if exc.unknown is not None else self.unknown(node, _short(node))
        except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            return self.unknown(node, f"{_short(node)} ({type(exc).__name__}: {exc})")

    def data(self, node: ast.expr) -> Any:
        """``expr`` with imported names as the names they import (how they stand in config data)."""
        value = self.expr(node)
        return value.label if isinstance(value, Imported) else value

    def _Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, CONSTANTS):
            return self.unknown(node, f"the literal {_short(node)}")
        if isinstance(node.value, str):
            self.charge(node, 1 + len(node.value) // 64)
        return node.value

    def _Name(self, node: ast.Name) -> Any:
        return self.lookup_node(node)

    def _List(self, node: ast.List) -> Any:
        return self.items(node, node.elts)

    def _Tuple(self, node: ast.Tuple) -> Any:
        items = self.items(node, node.elts)
        return items if isinstance(items, Unknown) else tuple(items)

    def _Set(self, node: ast.Set) -> Any:
        items = self.items(node, node.elts)
        if isinstance(items, Unknown):
            return items
        return self.call_pure(node, set, [items], {})

    def items(self, node: ast.expr, nodes: list[ast.expr]) -> Any:
        """The items of a list, tuple or call's positional arguments (``*x`` unpacked)."""
        out: list[Any] = []
        for item in nodes:
            if isinstance(item, ast.Starred):
                unpacked = self.iterate(item, self.expr(item.value))
                if isinstance(unpacked, Unknown):
                    return unpacked
                out.extend(unpacked)
            else:
                out.append(self.data(item))
            self.check_length(node, len(out))
        self.charge(node, len(out) + 1)
        return out

    def _Dict(self, node: ast.Dict) -> Any:
        out: dict[Any, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            if key_node is None:
                mapping = self.known(self.expr(value_node))
                if not isinstance(mapping, dict):
                    return self.not_a_mapping(value_node, mapping)
                out.update(mapping)
                continue
            key = self.data(key_node)
            if isinstance(key, Unknown):
                return key
            if not _hashable(key):
                return self.unknown(key_node, f"the dict key {_short(key_node)}")
            out[key] = self.data(value_node)
        self.charge(node, len(out) + 1)
        return out

    def not_a_mapping(self, node: ast.expr, value: Any) -> Unknown:
        """The Unknown for ``**x`` where ``x`` is not a dict."""
        if isinstance(value, Unknown):
            return value
        return self.unknown(node, f"**{_short(node)}, which is not a dict")

    def _BinOp(self, node: ast.BinOp) -> Any:
        return self.binary(node, node.op, self.expr(node.left), self.expr(node.right))

    def binary(self, node: ast.AST, op: ast.operator, left: Any, right: Any) -> Any:
        """``left op right`` for the operands and operators allowed."""
        left, right = self.known(left), self.known(right)
        for operand in (left, right):
            if isinstance(operand, Unknown):
                return operand
        function = BINARY.get(type(op))
        label = f"{ast.unparse(node)}" if isinstance(node, ast.expr) else "an operation"
        if function is None or not self.allowed_operands(node, op, left, right):
            return self.unknown(node, f"{_clip(label)} (not evaluated on these operands)")
        if function is operator.pow and _power_bits(left, right) > MAX_INT_BITS:
            raise self.stop(node, f"the number would have more than {MAX_INT_BITS} bits")
        if function is operator.or_ and isinstance(left, dict) and isinstance(right, dict):
            self.charge(node, len(left) + len(right))
        result = function(left, right)
        if isinstance(result, int) and not isinstance(result, bool) and result.bit_length() > MAX_INT_BITS:
            raise self.stop(node, f"the number would have more than {MAX_INT_BITS} bits")
        if isinstance(result, complex):
            return self.unknown(node, f"{_clip(label)} (a complex number)")
        return result

    def allowed_operands(self, node: ast.AST, op: ast.operator, left: Any, right: Any) -> bool:
        """Whether ``op`` is evaluated on these operands (sizes checked first)."""
        if all(_is_number(o) for o in (left, right)):
            return not isinstance(op, ast.BitOr)
        if isinstance(op, ast.Add) and type(left) is type(right) and isinstance(left, str | list | tuple):
            self.check_length(node, len(left) + len(right))
            self.charge(node, len(left) + len(right))
            return True
        if isinstance(op, ast.Mult):
            sequence, times = (left, right) if isinstance(left, str | list | tuple) else (right, left)
            if isinstance(sequence, str | list | tuple) and isinstance(times, int) and not isinstance(times, bool):
                self.check_length(node, len(sequence) * max(times, 0))
                self.charge(
                    node, (self.size(node, sequence) if isinstance(sequence, list | tuple) else 1) * max(times, 0)
                )
                return True
            return False
        return isinstance(op, ast.BitOr) and isinstance(left, dict) and isinstance(right, dict)

    def check_length(self, node: ast.AST, length: int) -> None:
        """Refuse a sequence over the limit before it is made."""
        if length > MAX_SEQUENCE:
            raise self.stop(node, f"a sequence of more than {MAX_SEQUENCE:,} items; too big for a config")

    def _UnaryOp(self, node: ast.UnaryOp) -> Any:
        operand = self.known(self.expr(node.operand))
        if isinstance(operand, Unknown):
            return operand
        if isinstance(node.op, ast.Not):
            truth = self.truth(operand)
            return truth if isinstance(truth, Unknown) else not truth
        if _is_number(operand) and isinstance(node.op, ast.UAdd | ast.USub):
            return -operand if isinstance(node.op, ast.USub) else +operand
        if isinstance(operand, int) and isinstance(node.op, ast.Invert):
            return ~operand
        return self.unknown(node, f"{_short(node)} (not evaluated on this operand)")

    def truth(self, value: Any) -> Any:
        """The truth of a known value; Unknown stays Unknown."""
        value = self.known(value)
        if isinstance(value, Unknown | Imported | Function):
            return value if isinstance(value, Unknown) else True
        return bool(value)

    def _BoolOp(self, node: ast.BoolOp) -> Any:
        value: Any = None
        for operand in node.values:
            value = self.data(operand)
            truth = self.truth(value)
            if isinstance(truth, Unknown):
                return truth
            if truth == isinstance(node.op, ast.Or):
                return value
        return value

    def _Compare(self, node: ast.Compare) -> Any:
        left = self.known(self.data(node.left))
        for op, right_node in zip(node.ops, node.comparators, strict=True):
            right = self.known(self.data(right_node))
            if _holds_unknown(left) or _holds_unknown(right):
                return _first_unknown(left, right)
            if isinstance(op, ast.Is | ast.IsNot):
                if not any(v is None or isinstance(v, bool) for v in (left, right)):
                    return self.unknown(node, f"{_short(node)} (an identity test)")
                result = (left is right) == isinstance(op, ast.Is)
            else:
                result = COMPARE[type(op)](left, right)
            if not result:
                return False
            left = right
        return True

    def _IfExp(self, node: ast.IfExp) -> Any:
        test = self.truth(self.expr(node.test))
        if isinstance(test, Unknown):
            return test
        return self.expr(node.body if test else node.orelse)

    def _Subscript(self, node: ast.Subscript) -> Any:
        container = self.known(self.expr(node.value))
        key = self.key(node.slice)
        if isinstance(container, Unknown):
            return container
        if isinstance(key, Unknown):
            return key
        if isinstance(container, Imported):
            return self.unknown(node, f"{_short(node)} (a subscript of an import)")
        if isinstance(key, slice):
            if not isinstance(container, list | tuple | str):
                return self.unknown(node, f"{_short(node)} (a slice of a {type(container).__name__})")
            result = container[key]
            self.charge(node, len(result))
            return result
        if not isinstance(container, dict | list | tuple | str):
            return self.unknown(node, f"{_short(node)} (a subscript of a {type(container).__name__})")
        return container[key]

    def key(self, node: ast.expr) -> Any:
        """A subscript's key or slice."""
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self.known(self.expr(p)) for p in (node.lower, node.upper, node.step)]
            for part in parts:
                if isinstance(part, Unknown):
                    return part
                if part is not None and not (isinstance(part, int) and not isinstance(part, bool)):
                    return self.unknown(node, f"the slice {_short(node)}")
            return slice(*parts)
        return self.known(self.data(node))

    def _Attribute(self, node: ast.Attribute) -> Any:
        base = self.known(self.expr(node.value))
        if isinstance(base, Unknown):
            return base
        if isinstance(base, Imported):
            return base.attribute(node.attr)
        if isinstance(base, dict) and node.attr in base and node.attr not in METHODS[dict]:
            return base[node.attr]  # MMEngine's ConfigDict reads keys as attributes
        return self.unknown(node, f"the attribute {_short(node)}")

    def _JoinedStr(self, node: ast.JoinedStr) -> Any:
        parts: list[str] = []
        for value in node.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
                continue
            assert isinstance(value, ast.FormattedValue)
            item = self.known(self.data(value.value))
            if _holds_unknown(item):
                return _first_unknown(item)
            if not isinstance(item, CONSTANTS):
                return self.unknown(value, f"the f-string {_short(node)} (formats a {type(item).__name__})")
            spec = ""
            if value.format_spec is not None:
                spec = self.expr(value.format_spec)
                if isinstance(spec, Unknown):
                    return spec
                if not isinstance(spec, str) or _wide(spec):
                    return self.unknown(value, f"the f-string {_short(node)} (a width or precision over 999)")
            conversion = CONVERSIONS.get(value.conversion)
            text = conversion(item) if conversion is not None else item
            parts.append(format(text, spec))
            self.check_length(node, sum(len(p) for p in parts))
        return "".join(parts)

    # -- comprehensions --------------------------------------------------------------------

    def _ListComp(self, node: ast.ListComp) -> Any:
        return self.comprehension(node, lambda: [self.data(node.elt)], list)

    def _GeneratorExp(self, node: ast.GeneratorExp) -> Any:
        return self.comprehension(node, lambda: [self.data(node.elt)], list)

    def _SetComp(self, node: ast.SetComp) -> Any:
        items = self.comprehension(node, lambda: [self.data(node.elt)], list)
        return items if isinstance(items, Unknown) else self.call_pure(node, set, [items], {})

    def _DictComp(self, node: ast.DictComp) -> Any:
        pairs = self.comprehension(node, lambda: [(self.data(node.key), self.data(node.value))], list)
        if isinstance(pairs, Unknown):
            return pairs
        out: dict[Any, Any] = {}
        for key, value in pairs:
            if isinstance(key, Unknown):
                return key
            if not _hashable(key):
                return self.unknown(node, f"the dict key {_short(node.key)}")
            out[key] = value
        return out

    def comprehension(
        self,
        node: ast.ListComp | ast.GeneratorExp | ast.SetComp | ast.DictComp,
        produce: Callable[[], list[Any]],
        _: Any,
    ) -> Any:
        """The items a comprehension makes, in its own scope."""
        out: list[Any] = []
        self.scopes.append({})
        try:
            result = self._generators(node, node.generators, produce, out)
        finally:
            self.scopes.pop()
        return result if isinstance(result, Unknown) else out

    def _generators(
        self, node: ast.expr, generators: list[ast.comprehension], produce: Callable[[], list[Any]], out: list[Any]
    ) -> Any:
        if not generators:
            out.extend(produce())
            self.check_length(node, len(out))
            self.charge(node, 1)
            return None
        first, rest = generators[0], generators[1:]
        iterable = self.iterate(first, self.expr(first.iter))
        if isinstance(iterable, Unknown):
            return iterable
        for item in iterable:
            self.charge(node, 1)
            self.assign(first.target, item, node)  # type: ignore[arg-type]
            keep = True
            for condition in first.ifs:
                truth = self.truth(self.expr(condition))
                if isinstance(truth, Unknown):
                    return truth
                keep = keep and bool(truth)
                if not keep:
                    break
            if keep:
                result = self._generators(node, rest, produce, out)
                if isinstance(result, Unknown):
                    return result
        return None

    def iterate(self, node: ast.AST, value: Any) -> Any:
        """The items of a known iterable, as a list (bounded); Unknown when not known."""
        value = self.known(value)
        if isinstance(value, Unknown):
            return value
        if isinstance(value, range):
            if len(value) > MAX_SEQUENCE:
                raise self.stop(node, f"a range of more than {MAX_SEQUENCE:,} items; too big for a config")
            return list(value)
        if isinstance(value, dict | list | tuple | str | set):
            return list(value)
        return self.unknown(node, f"iterating over {_short(node)}")

    # -- calls -----------------------------------------------------------------------------

    def _Call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self._method_receiver(func)
            if receiver is not None:
                return self.method_call(node, func, receiver)
        callee = self.known(self.expr(func))
        if isinstance(func, ast.Name) and self.lookup(func.id) is _MISSING and func.id in PURE_BUILTINS:
            return self.builtin_call(node, func.id)
        if isinstance(callee, Imported) and (callee.module, callee.name) in COPY_FUNCTIONS:
            args, kwargs = self.arguments(node)
            if isinstance(args, Unknown):
                return args
            if len(args) != 1 or kwargs:
                return self.unknown(node, f"a call to {_short(func)}() with these arguments")
            self.charge(node, self.size(node, args[0]))
            return copy.deepcopy(args[0]) if callee.name == "deepcopy" else copy.copy(args[0])
        unknown = self.unknown(node, f"a call to {_short(func)}()")
        if isinstance(callee, Function) or (isinstance(func, ast.Name) and func.id in NAMESPACE_BUILTINS):
            # a function of the file, exec, globals...: may change any name
            self.poison_all(self.unknown(node, f"a call to {_short(func)}() (it may change any name)"))
            return unknown
        for argument in [*node.args, *(k.value for k in node.keywords)]:  # the callee may change what it is given
            target = argument.value if isinstance(argument, ast.Starred) else argument
            if isinstance(target, ast.Name | ast.Attribute | ast.Subscript):
                if isinstance(self.known(self.expr(target)), dict | list | set):
                    self.mutated(target, unknown)
        return unknown

    def _method_receiver(self, func: ast.Attribute) -> Any:
        """The known value whose method ``func`` names (None if it is not such a method)."""
        if not any(func.attr in names for names in METHODS.values()):
            return None
        receiver = self.known(self.expr(func.value))
        if isinstance(receiver, Unknown):
            return receiver
        for kind, names in METHODS.items():
            if isinstance(receiver, kind) and func.attr in names:
                return receiver
        return None

    def method_call(self, node: ast.Call, func: ast.Attribute, receiver: Any) -> Any:
        """A method of a known value on known arguments (a mutating one on unknown ones: the receiver unknown)."""
        if isinstance(receiver, Unknown):
            if func.attr in MUTATING:
                self.mutated(func.value, receiver)
            return receiver
        args, kwargs = self.arguments(node)
        unknown_args = args if isinstance(args, Unknown) else _first_unknown(*args, *kwargs.values())
        if not isinstance(args, Unknown) and func.attr in ITERATES_ARGUMENT:
            whole = next((a for a in args if isinstance(self.known(a), Unknown)), None)
            if whole is not None:
                args = self.known(whole)  # its items are not known: nothing can be stored
        mutating = func.attr in MUTATING and isinstance(receiver, dict | list)
        if isinstance(args, Unknown) or (unknown_args is not None and func.attr not in STORES_UNKNOWN):
            reason = unknown_args if isinstance(unknown_args, Unknown) else args
            if mutating:
                self.mutated(func.value, self.unknown(node, f"{_short(func)}() with {reason.construct}"))
            return reason
        if func.attr in ("update", "extend", "append", "insert"):
            grows = sum(self.size(node, a) for a in args) + sum(self.size(node, v) for v in kwargs.values())
            self.charge(node, grows)
            if isinstance(receiver, list):
                self.check_length(
                    node,
                    len(receiver)
                    + (len(args[0]) if func.attr == "extend" and args and isinstance(args[0], list | tuple) else 1),
                )
        if isinstance(receiver, str) and func.attr == "format":
            values = [*args, *kwargs.values()]
            if not all(isinstance(v, CONSTANTS) for v in values) or _wide(receiver):
                return self.unknown(node, f"{_short(node)} (formats what is not a plain value, or too wide)")
            self.check_length(node, len(receiver) + sum(len(str(v)) for v in values))
        if isinstance(receiver, str) and func.attr == "join" and args:
            parts = self.known(args[0])
            if not isinstance(parts, list | tuple) or not all(isinstance(p, str) for p in parts):
                return self.unknown(node, f"{_short(func)}() of {_short(node.args[0]) if node.args else 'this'}")
            self.check_length(node, sum(len(p) for p in parts) + len(receiver) * len(parts))
        result = getattr(receiver, func.attr)(*args, **kwargs)
        if isinstance(result, type({}.keys()) | type({}.values()) | type({}.items())):
            result = list(result)
        return result

    def arguments(self, node: ast.Call) -> tuple[Any, dict[str, Any]]:
        """A call's positional and keyword arguments (``*x`` and ``**x`` unpacked)."""
        args = self.items(node, node.args)
        if isinstance(args, Unknown):
            return args, {}
        kwargs: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                mapping = self.known(self.expr(keyword.value))
                if not isinstance(mapping, dict):
                    return self.not_a_mapping(keyword.value, mapping), {}
                if not all(isinstance(k, str) for k in mapping):
                    return self.unknown(keyword.value, f"**{_short(keyword.value)} with keys that are not strings"), {}
                kwargs.update(mapping)
            else:
                kwargs[keyword.arg] = self.data(keyword.value)
        return args, kwargs

    def builtin_call(self, node: ast.Call, name: str) -> Any:
        """One of :data:`PURE_BUILTINS` on known arguments."""
        args, kwargs = self.arguments(node)
        if isinstance(args, Unknown):
            return args
        if name == "dict":
            if args and not isinstance(self.known(args[0]), dict | list | tuple):
                return self.unknown(node, f"{_short(node)} (not a mapping)")
            return self.call_pure(node, dict, args, kwargs)
        if _holds_unknown(args) or _holds_unknown(kwargs):
            if name in ("list", "tuple", "len", "enumerate", "zip", "reversed") and not kwargs:
                pass  # containers of unknowns stay containers; len and zip do not look at the items
            else:
                return _first_unknown(*args, *kwargs.values())
        if name == "range":
            return self.call_pure(node, range, args, kwargs)
        if name in ("str", "int", "float") and args and not isinstance(args[0], CONSTANTS):
            return self.unknown(node, f"{_short(node)} (of a {type(args[0]).__name__})")
        if name in ("int",) and args and isinstance(args[0], str) and len(args[0]) > 1000:
            return self.unknown(node, f"{_short(node)} (a long number)")
        return self.call_pure(node, PURE_BUILTINS[name], args, kwargs)

    def call_pure(self, node: ast.AST, function: Callable[..., Any], args: list[Any], kwargs: dict[str, Any]) -> Any:
        """Call a pure builtin and bound its result."""
        args = [self.iterate(node, a) if isinstance(a, range) else a for a in args]
        for arg in args:
            if isinstance(arg, list | tuple | dict | set | str):
                self.check_length(node, len(arg))
        result = function(*args, **kwargs)
        if isinstance(result, range):
            if len(result) > MAX_SEQUENCE:
                raise self.stop(node, f"a range of more than {MAX_SEQUENCE:,} items; too big for a config")
            return result
        if isinstance(result, Iterator):
            result = list(result)
            self.check_length(node, len(result))
        if isinstance(result, list | dict | tuple | set):
            self.charge(node, len(result) + 1)
        return result

    def _NamedExpr(self, node: ast.NamedExpr) -> Any:
        value = self.expr(node.value)
        self.bind(node.target.id, value)
        return value

    def _Starred(self, node: ast.Starred) -> Any:
        return self.unknown(node, f"{_short(node)} here")


MUTATING = frozenset({"update", "pop", "setdefault", "append", "extend", "insert", "remove", "reverse"})
ITERATES_ARGUMENT = frozenset({"update", "extend", "index", "count", "remove", "join"})
STORES_UNKNOWN = frozenset({"update", "append", "extend", "insert", "setdefault", "copy", "get", "pop"})
"""Methods that may take an Unknown as an argument: it is stored, not looked at (``get``/``pop``: a default)."""


class _Missing:
    pass


_MISSING: Any = _Missing()


def _wide(template: str) -> bool:
    """A format that could make a huge string: a width or precision over 999 (or a long spec)."""
    specs = re.findall(r"\{[^{}]*\}", template) if "{" in template else [template]
    return any(len(spec) > 24 or any(len(n) > 3 for n in re.findall(r"\d+", spec)) for spec in specs)


def _hashable(key: Any) -> bool:
    return isinstance(key, CONSTANTS) or (isinstance(key, tuple) and all(_hashable(k) for k in key))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float)


def _power_bits(base: Any, exponent: Any) -> float:
    """About how many bits ``base ** exponent`` has, for whole numbers (0 when it cannot grow)."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0 or abs(base) <= 1:
        return 0.0
    return exponent * math.log2(abs(base))


def _holds_unknown(value: Any, depth: int = 0) -> bool:
    if isinstance(value, Unknown | Imported | Function):
        return isinstance(value, Unknown)
    if depth > MAX_DEPTH:
        return False
    if isinstance(value, dict):
        return any(_holds_unknown(k, depth + 1) or _holds_unknown(v, depth + 1) for k, v in value.items())
    if isinstance(value, list | tuple | set):
        return any(_holds_unknown(v, depth + 1) for v in value)
    return False


def _first_unknown(*values: Any) -> Any:
    """The first Unknown held by ``values`` (None if none)."""
    stack = list(reversed(values))
    while stack:
        value = stack.pop()
        if isinstance(value, Unknown):
            return value
        if isinstance(value, dict):
            stack.extend(reversed([*value.keys(), *value.values()]))
        elif isinstance(value, list | tuple | set):
            stack.extend(reversed(list(value)))
    return None


def _root_name(node: ast.expr) -> str | None:
    while isinstance(node, ast.Attribute | ast.Subscript | ast.Starred):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _target_names(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Tuple | ast.List):
        return [n for item in node.elts for n in _target_names(item)]
    root = _root_name(node)
    return [root] if root else []


def _assigned_names(body: list[ast.stmt]) -> set[str]:
    """Every name ``body`` may bind or mutate: assignment targets (their roots), ``del``, imports, defs, receivers."""
    names: set[str] = set()
    for statement in body:
        for node in ast.walk(statement):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    names.update(_target_names(target))
            elif isinstance(node, ast.AnnAssign | ast.AugAssign | ast.For | ast.comprehension | ast.NamedExpr):
                if not isinstance(node, ast.comprehension):
                    names.update(_target_names(node.target))
            elif isinstance(node, ast.Delete):
                for target in node.targets:
                    names.update(_target_names(target))
            elif isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                names.update(_target_names(node.optional_vars))
            elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATING:
                root = _root_name(node.func.value)
                if root:
                    names.add(root)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
    return names


def _short(node: ast.AST) -> str:
    try:
        return _clip(ast.unparse(node))
    except (ValueError, RecursionError, AttributeError):
        return type(node).__name__


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= 60 else text[:57] + "..."
