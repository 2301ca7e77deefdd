"""The expressions of a ``.py`` config, evaluated as data: nothing is ever run.

:class:`Expressions` computes what plain Python would for literals, displays, names,
arithmetic, comparisons, comprehensions, subscripts, f-strings, a fixed set of pure
builtins (:data:`PURE_BUILTINS`) and methods of known values (:data:`METHODS`). A call
of anything else is never run: its result is an :class:`~optiplug.recipe.pyvalues.Unknown`,
and what it was given (or, for a function of the file, every name) becomes Unknown.
"""

from __future__ import annotations

import ast
import copy
import math
import operator
import re
from collections.abc import Callable, Iterator
from typing import Any

from optiplug.errors import ConfigError
from optiplug.recipe.pyscope import (
    CONSTANTS,
    CONSTRUCTS,
    MAX_DEPTH,
    MAX_INT_BITS,
    MAX_SEQUENCE,
    MISSING,
    Function,
    Imported,
    Scope,
    clip,
    hashable,
    root_name,
    short,
)
from optiplug.recipe.pyvalues import Unknown, UnknownValueError

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
NAMESPACE_BUILTINS = frozenset(
    {"exec", "eval", "compile", "globals", "locals", "vars", "setattr", "delattr", "getattr", "__import__"}
)
"""Builtins that can reach the file's namespace: a call of one may change any name."""

MUTATING = frozenset({"update", "pop", "setdefault", "append", "extend", "insert", "remove", "reverse"})
ITERATES_ARGUMENT = frozenset({"update", "extend", "index", "count", "remove", "join"})
STORES_UNKNOWN = frozenset({"update", "append", "extend", "insert", "setdefault", "copy", "get", "pop"})
"""Methods that may take an Unknown as an argument: it is stored, not looked at (``get``/``pop``: a default)."""


class Expressions(Scope):
    """The value of an expression over the file's namespace: plain data, an :class:`Imported` name, or an Unknown."""

    def assign(self, target: ast.expr, value: Any, node: ast.stmt) -> None:
        """Assign ``value`` to an assignment target (a comprehension's too): the statements define it."""
        raise NotImplementedError

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
        root = root_name(target)
        if root is not None:
            self.bind(root, unknown)

    def lookup_node(self, node: ast.Name) -> Any:
        """The value of a name used in an expression (charged as copied), or an Unknown saying why not."""
        value = self.lookup(node.id)
        if value is MISSING:
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
            return exc.unknown if exc.unknown is not None else self.unknown(node, short(node))
        except (ArithmeticError, ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            if isinstance(exc, ConfigError):
                raise
            return self.unknown(node, f"{short(node)} ({type(exc).__name__}: {exc})")

    def data(self, node: ast.expr) -> Any:
        """``expr`` with imported names as the names they import (how they stand in config data)."""
        value = self.expr(node)
        return value.label if isinstance(value, Imported) else value

    def _Constant(self, node: ast.Constant) -> Any:
        if not isinstance(node.value, CONSTANTS):
            return self.unknown(node, f"the literal {short(node)}")
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
            if not hashable(key):
                return self.unknown(key_node, f"the dict key {short(key_node)}")
            out[key] = self.data(value_node)
        self.charge(node, len(out) + 1)
        return out

    def not_a_mapping(self, node: ast.expr, value: Any) -> Unknown:
        """The Unknown for ``**x`` where ``x`` is not a dict."""
        if isinstance(value, Unknown):
            return value
        return self.unknown(node, f"**{short(node)}, which is not a dict")

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
            return self.unknown(node, f"{clip(label)} (not evaluated on these operands)")
        if function is operator.pow and _power_bits(left, right) > MAX_INT_BITS:
            raise self.stop(node, f"the number would have more than {MAX_INT_BITS} bits")
        if function is operator.or_ and isinstance(left, dict) and isinstance(right, dict):
            self.charge(node, len(left) + len(right))
        result = function(left, right)
        if isinstance(result, int) and not isinstance(result, bool) and result.bit_length() > MAX_INT_BITS:
            raise self.stop(node, f"the number would have more than {MAX_INT_BITS} bits")
        if isinstance(result, complex):
            return self.unknown(node, f"{clip(label)} (a complex number)")
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
        return self.unknown(node, f"{short(node)} (not evaluated on this operand)")

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
                    return self.unknown(node, f"{short(node)} (an identity test)")
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
            return self.unknown(node, f"{short(node)} (a subscript of an import)")
        if isinstance(key, slice):
            if not isinstance(container, list | tuple | str):
                return self.unknown(node, f"{short(node)} (a slice of a {type(container).__name__})")
            result = container[key]
            self.charge(node, len(result))
            return result
        if not isinstance(container, dict | list | tuple | str):
            return self.unknown(node, f"{short(node)} (a subscript of a {type(container).__name__})")
        return container[key]

    def key(self, node: ast.expr) -> Any:
        """A subscript's key or slice."""
        if isinstance(node, ast.Slice):
            parts = [None if p is None else self.known(self.expr(p)) for p in (node.lower, node.upper, node.step)]
            for part in parts:
                if isinstance(part, Unknown):
                    return part
                if part is not None and not (isinstance(part, int) and not isinstance(part, bool)):
                    return self.unknown(node, f"the slice {short(node)}")
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
        return self.unknown(node, f"the attribute {short(node)}")

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
                return self.unknown(value, f"the f-string {short(node)} (formats a {type(item).__name__})")
            spec = ""
            if value.format_spec is not None:
                spec = self.expr(value.format_spec)
                if isinstance(spec, Unknown):
                    return spec
                if not isinstance(spec, str) or _wide(spec):
                    return self.unknown(value, f"the f-string {short(node)} (a width or precision over 999)")
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
            if not hashable(key):
                return self.unknown(node, f"the dict key {short(node.key)}")
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
        return self.unknown(node, f"iterating over {short(node)}")

    # -- calls -----------------------------------------------------------------------------

    def _Call(self, node: ast.Call) -> Any:
        func = node.func
        if isinstance(func, ast.Attribute):
            receiver = self._method_receiver(func)
            if receiver is not None:
                return self.method_call(node, func, receiver)
        callee = self.known(self.expr(func))
        if isinstance(func, ast.Name) and self.lookup(func.id) is MISSING and func.id in PURE_BUILTINS:
            return self.builtin_call(node, func.id)
        if isinstance(callee, Imported) and (callee.module, callee.name) in COPY_FUNCTIONS:
            args, kwargs = self.arguments(node)
            if isinstance(args, Unknown):
                return args
            if len(args) != 1 or kwargs:
                return self.unknown(node, f"a call to {short(func)}() with these arguments")
            self.charge(node, self.size(node, args[0]))
            return copy.deepcopy(args[0]) if callee.name == "deepcopy" else copy.copy(args[0])
        unknown = self.unknown(node, f"a call to {short(func)}()")
        if isinstance(callee, Function) or (isinstance(func, ast.Name) and func.id in NAMESPACE_BUILTINS):
            # a function of the file, exec, globals...: may change any name
            self.poison_all(self.unknown(node, f"a call to {short(func)}() (it may change any name)"))
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
                self.mutated(func.value, self.unknown(node, f"{short(func)}() with {reason.construct}"))
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
                return self.unknown(node, f"{short(node)} (formats what is not a plain value, or too wide)")
            self.check_length(node, len(receiver) + sum(len(str(v)) for v in values))
        if isinstance(receiver, str) and func.attr == "join" and args:
            parts = self.known(args[0])
            if not isinstance(parts, list | tuple) or not all(isinstance(p, str) for p in parts):
                return self.unknown(node, f"{short(func)}() of {short(node.args[0]) if node.args else 'this'}")
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
                    return self.unknown(keyword.value, f"**{short(keyword.value)} with keys that are not strings"), {}
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
                return self.unknown(node, f"{short(node)} (not a mapping)")
            return self.call_pure(node, dict, args, kwargs)
        if _holds_unknown(args) or _holds_unknown(kwargs):
            if name in ("list", "tuple", "len", "enumerate", "zip", "reversed") and not kwargs:
                pass  # containers of unknowns stay containers; len and zip do not look at the items
            else:
                return _first_unknown(*args, *kwargs.values())
        if name == "range":
            return self.call_pure(node, range, args, kwargs)
        if name in ("str", "int", "float") and args and not isinstance(args[0], CONSTANTS):
            return self.unknown(node, f"{short(node)} (of a {type(args[0]).__name__})")
        if name in ("int",) and args and isinstance(args[0], str) and len(args[0]) > 1000:
            return self.unknown(node, f"{short(node)} (a long number)")
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
        return self.unknown(node, f"{short(node)} here")


def _wide(template: str) -> bool:
    """A format that could make a huge string: a width or precision over 999 (or a long spec)."""
    specs = re.findall(r"\{[^{}]*\}", template) if "{" in template else [template]
    return any(len(spec) > 24 or any(len(n) > 3 for n in re.findall(r"\d+", spec)) for spec in specs)


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
