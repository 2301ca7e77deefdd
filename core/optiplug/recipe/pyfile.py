"""MMCV-style ``.py`` config files, read as data: nothing in them is ever executed.

The file is parsed with :mod:`ast` and only these module-level statements are
evaluated (MMCV itself executes its config files; optiplug never does):

* assignments ``name = value`` (also ``a = b = value`` and ``name: type = value``), and
  docstrings;
* values: literals (strings, numbers, True/False/None), lists, tuples, dict displays
  (``{**other, 'k': v}``), ``dict(k=v, **other)``, names assigned earlier in the same
  file, ``+ - * / // % **`` and unary ``+ -`` on numbers, ``+`` joining two strings,
  lists or tuples;
* ``_base_ = 'base.py'`` or a list of them, relative to the file: the bases are read
  the same way (recursively) and merged key by key under the file's own values; a dict
  with ``_delete_=True`` replaces the base's value instead of merging into it.

Anything else (an import, a call other than ``dict``, an attribute access, a subscript,
a lambda, a comprehension, an f-string, a comparison, a function or class definition, a
loop...) is a ConfigError naming the file and the line. Names starting with ``__`` are
dropped from the result, as MMCV does.

>>> load_pyfile("configs/simclr_lars.py")["optimizer"]
{'type': 'LARS', 'lr': 4.8, 'momentum': 0.9, 'weight_decay': 1e-06}
"""

from __future__ import annotations

import ast
import copy
import math
import operator
from collections.abc import Callable
from pathlib import Path
from typing import Any

from optiplug.errors import ConfigError
from optiplug.recipe.files import read_text

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
MAX_BASE_DEPTH = 32
MAX_INT_BITS = 4096
MAX_SEQUENCE = 100_000
MAX_VALUES = 1_000_000
DATA_ONLY = (
    "configs are data and are read without running them: only assignments of literals, lists, tuples, "
    "dict(...), arithmetic on numbers and names assigned earlier are allowed"
)
BINARY: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
UNARY: dict[type[ast.unaryop], Callable[[Any], Any]] = {ast.UAdd: operator.pos, ast.USub: operator.neg}
CONSTANTS = (str, int, float, bool, type(None))
REFUSED: dict[type[ast.AST], str] = {
    ast.Import: "an import",
    ast.ImportFrom: "an import",
    ast.Call: "a call",
    ast.Attribute: "an attribute access",
    ast.Subscript: "a subscript",
    ast.Lambda: "a lambda",
    ast.ListComp: "a comprehension",
    ast.SetComp: "a comprehension",
    ast.DictComp: "a comprehension",
    ast.GeneratorExp: "a generator expression",
    ast.JoinedStr: "an f-string",
    ast.Compare: "a comparison",
    ast.BoolOp: "a boolean operation",
    ast.IfExp: "a conditional expression",
    ast.NamedExpr: "an assignment expression",
    ast.Set: "a set (MMCV's {{_base_.name}} substitution is not supported either: repeat the value)",
    ast.FunctionDef: "a function definition",
    ast.AsyncFunctionDef: "a function definition",
    ast.ClassDef: "a class definition",
    ast.For: "a loop",
    ast.While: "a loop",
    ast.If: "an if statement",
    ast.With: "a with statement",
    ast.Try: "a try statement",
    ast.Delete: "a del statement",
    ast.AugAssign: "an augmented assignment",
    ast.Global: "a global statement",
    ast.Expr: "an expression statement",
}


def load_pyfile(path: str | Path) -> dict[str, Any]:
    """The config a ``.py`` file describes, with its ``_base_`` files merged; nothing is executed."""
    return _load(Path(path).expanduser().absolute(), ())


def _load(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    real = _resolve(path, chain)
    if real in chain:
        cycle = " -> ".join(p.name for p in (*chain, real))
        raise ConfigError(f"{path}: _base_ files include each other ({cycle})")
    if len(chain) >= MAX_BASE_DEPTH:
        raise ConfigError(f"{path}: _base_ files nested more than {MAX_BASE_DEPTH} deep")
    names = _Reader(path).read(_parse(path))
    bases = names.pop(BASE_KEY, None)
    own = {k: v for k, v in names.items() if not k.startswith("__")}
    if bases is None:
        return _without_delete(own)
    merged: dict[str, Any] = {}
    for base in _base_paths(bases, path):
        values = _load(base, (*chain, real))
        duplicates = sorted(merged.keys() & values.keys())
        if duplicates:
            raise ConfigError(
                f"{path}: the _base_ files both set {', '.join(duplicates)} (MMCV refuses duplicate keys among bases)"
            )
        merged.update(values)
    return merge(own, merged, str(path))


def _resolve(path: Path, chain: tuple[Path, ...]) -> Path:
    where = f" (a _base_ of {chain[-1]})" if chain else ""
    try:
        return path.resolve(strict=True)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}{where}") from None
    except (RuntimeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}{where}: {exc} (a symlink loop?)") from None


def _parse(path: Path) -> ast.Module:
    source = read_text(path)
    try:
        return ast.parse(source, filename=str(path))
    except SyntaxError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: invalid Python syntax: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot parse: {type(exc).__name__}") from None


def _base_paths(bases: Any, path: Path) -> list[Path]:
    items = [bases] if isinstance(bases, str) else bases
    if not isinstance(items, list | tuple) or not all(isinstance(b, str) for b in items):
        raise ConfigError(f"{path}: _base_ must be a file name or a list of them, got {bases!r}")
    for item in items:
        if "::" in item or "{{" in item:
            raise ConfigError(
                f"{path}: _base_ {item!r}: package and template paths are not supported; give a file path"
            )
    return [(path.parent / item).absolute() for item in items]


def merge(child: dict[str, Any], base: dict[str, Any], source: str = "", path: str = "") -> dict[str, Any]:
    """``child`` merged into a copy of ``base`` (MMCV's ``_merge_a_into_b``).

    A dict merges key by key into the base's dict, unless it holds ``_delete_=True``;
    anything else replaces the base's value. A dict over a base value that is not a dict
    is an error (MMCV asks for ``_delete_=True`` there too).
    """
    out = dict(base)
    for key, value in child.items():
        where = f"{path}.{key}" if path else str(key)
        if not isinstance(value, dict):
            out[key] = _without_delete(value)
            continue
        replace = bool(value.get(DELETE_KEY, False))
        if key not in out or replace:
            out[key] = _without_delete(value)
        elif isinstance(out[key], dict):
            own = {k: v for k, v in value.items() if k != DELETE_KEY}
            out[key] = merge(own, out[key], source, where)
        else:
            raise ConfigError(
                f"{source}: a dict here but {out[key]!r} in the _base_ file; "
                f"add _delete_=True to the dict to replace the base's value",
                where,
            )
    return out


def _without_delete(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_delete(v) for k, v in value.items() if k != DELETE_KEY}
    if isinstance(value, list):
        return [_without_delete(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_without_delete(v) for v in value)
    return value


def _power_bits(base: Any, exponent: Any) -> float:
    """About how many bits ``base ** exponent`` has, for whole numbers (0 when it cannot grow)."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0 or abs(base) <= 1:
        return 0.0
    return exponent * math.log2(abs(base))


def _count(value: Any) -> int:
    """How many values ``value`` holds, itself included (lists, tuples and dicts walked)."""
    if isinstance(value, dict):
        return 1 + sum(_count(k) + _count(v) for k, v in value.items())
    if isinstance(value, list | tuple):
        return 1 + sum(_count(v) for v in value)
    return 1


def _is_docstring(statement: ast.stmt) -> bool:
    return (
        isinstance(statement, ast.Expr)
        and isinstance(statement.value, ast.Constant)
        and isinstance(statement.value.value, str)
    )


class _Reader:
    """Evaluates the allowed subset of one file's module-level statements."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.names: dict[str, Any] = {}
        self.sizes: dict[str, int] = {}
        self.copied = 0

    def read(self, module: ast.Module) -> dict[str, Any]:
        """Every name the file assigns, in order, with its value."""
        for statement in module.body:
            if _is_docstring(statement):
                continue
            try:
                self._statement(statement)
            except RecursionError:
                raise self.error(statement, "nested too deeply to be a config") from None
        return self.names

    def _statement(self, node: ast.stmt) -> None:
        if isinstance(node, ast.Assign):
            targets = [self._target(t) for t in node.targets]
            value = self.value(node.value, targets[0])
            for target in targets:
                self._assign(node, target, copy.deepcopy(value))
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target = self._target(node.target)
            self._assign(node, target, self.value(node.value, target))
        else:
            raise self.refuse(node.value if isinstance(node, ast.Expr) else node)

    def _assign(self, node: ast.stmt, target: str, value: Any) -> None:
        self.names[target] = value
        self.sizes[target] = _count(value)
        self._charge(node, self.sizes[target])

    def _charge(self, node: ast.AST, values: int) -> None:
        """Count the values made, names copied included: a few lines can otherwise double a list 40 times."""
        self.copied += values
        if self.copied > MAX_VALUES:
            raise self.error(
                node, f"the file makes more than {MAX_VALUES:,} values (names copied into each other); too big"
            )

    def _target(self, node: ast.expr) -> str:
        if not isinstance(node, ast.Name):
            raise self.error(node, "only plain names can be assigned (not unpacking, attributes or subscripts)")
        return node.id

    def error(self, node: ast.AST, message: str, path: str = "") -> ConfigError:
        """A ConfigError naming the file and the node's line."""
        return ConfigError(f"{self.path}, line {getattr(node, 'lineno', '?')}: {message}", path)

    def refuse(self, node: ast.AST, path: str = "") -> ConfigError:
        """The error for a construct that is not plain data."""
        what = REFUSED.get(type(node), f"{type(node).__name__}")
        if isinstance(node, ast.Call):
            what = f"a call to {ast.unparse(node.func)}()"
        return self.error(node, f"{what} is not allowed ({DATA_ONLY})", path)

    def value(self, node: ast.expr, path: str) -> Any:
        """The plain value of an allowed expression; ``path`` names it in errors."""
        if isinstance(node, ast.Constant):
            if not isinstance(node.value, CONSTANTS):
                raise self.error(node, f"{type(node.value).__name__} literals are not allowed", path)
            return node.value
        if isinstance(node, ast.Name):
            if node.id not in self.names:
                raise self.error(node, f"{node.id!r} is not a name assigned earlier in this file ({DATA_ONLY})", path)
            self._charge(node, self.sizes[node.id])
            return copy.deepcopy(self.names[node.id])
        if isinstance(node, ast.List | ast.Tuple):
            items = self._items(node.elts, path)
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            return self._dict_display(node, path)
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "dict"
            and "dict" not in self.names
        ):
            return self._dict_call(node, path)
        if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY:
            return self._arithmetic(node, UNARY[type(node.op)], [self.value(node.operand, path)], path)
        if isinstance(node, ast.BinOp) and type(node.op) in BINARY:
            operands = [self.value(node.left, path), self.value(node.right, path)]
            return self._arithmetic(node, BINARY[type(node.op)], operands, path)
        raise self.refuse(node, path)

    def _items(self, nodes: list[ast.expr], path: str) -> list[Any]:
        items: list[Any] = []
        for i, item in enumerate(nodes):
            if isinstance(item, ast.Starred):
                unpacked = self.value(item.value, f"{path}[{i}]")
                if not isinstance(unpacked, list | tuple):
                    raise self.error(item, f"only a list or tuple can be unpacked with *, got {unpacked!r}", path)
                items.extend(unpacked)
            else:
                items.append(self.value(item, f"{path}[{i}]"))
        return items

    def _dict_display(self, node: ast.Dict, path: str) -> dict[Any, Any]:
        out: dict[Any, Any] = {}
        for key_node, value_node in zip(node.keys, node.values, strict=True):
            if key_node is None:
                out.update(self._mapping(value_node, path))
                continue
            key = self.value(key_node, path)
            if not isinstance(key, CONSTANTS):
                raise self.error(
                    key_node, f"a dict key must be a string, a number, True/False or None, got {key!r}", path
                )
            out[key] = self.value(value_node, f"{path}.{key}")
        return out

    def _dict_call(self, node: ast.Call, path: str) -> dict[str, Any]:
        if node.args:
            raise self.error(node, "dict() takes keyword arguments only here: dict(key=value, **other)", path)
        out: dict[str, Any] = {}
        for keyword in node.keywords:
            if keyword.arg is None:
                out.update(self._mapping(keyword.value, path))
            else:
                out[keyword.arg] = self.value(keyword.value, f"{path}.{keyword.arg}")
        return out

    def _mapping(self, node: ast.expr, path: str) -> dict[Any, Any]:
        value = self.value(node, path)
        if not isinstance(value, dict):
            raise self.error(node, f"only a dict can be unpacked with **, got {value!r}", path)
        return value

    def _arithmetic(self, node: ast.expr, op: Callable[..., Any], operands: list[Any], path: str) -> Any:
        if not self._allowed(op, operands):
            shown = ", ".join(repr(o) for o in operands)
            raise self.error(
                node,
                f"arithmetic is allowed on numbers only (and + on two strings, lists or tuples), got {shown}",
                path,
            )
        if op is operator.pow and _power_bits(*operands) > MAX_INT_BITS:
            raise self.error(node, f"the number would have more than {MAX_INT_BITS} bits", path)
        try:
            result = op(*operands)
        except (ArithmeticError, ValueError) as exc:
            raise self.error(node, f"{type(exc).__name__}: {exc}", path) from None
        if isinstance(result, int) and result.bit_length() > MAX_INT_BITS:
            raise self.error(node, f"the number would have more than {MAX_INT_BITS} bits", path)
        if isinstance(result, complex):
            raise self.error(node, "the result is a complex number", path)
        return result

    @staticmethod
    def _allowed(op: Callable[..., Any], operands: list[Any]) -> bool:
        if all(isinstance(o, int | float) and not isinstance(o, bool) for o in operands):
            return True
        joined = op is operator.add and len(operands) == 2 and type(operands[0]) is type(operands[1])
        return (
            joined
            and isinstance(operands[0], str | list | tuple)
            and len(operands[0]) + len(operands[1]) <= MAX_SEQUENCE
        )
