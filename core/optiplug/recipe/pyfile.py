"""MMCV / MMEngine ``.py`` config files, read as data: nothing in them is ever executed.

The file is parsed with :mod:`ast` and its module-level statements are evaluated by
:class:`~optiplug.recipe.pyeval.Evaluator` over the file's own namespace: literals,
displays, names, arithmetic (``[1.0] * 133``, ``a + b``, dict ``|``), comparisons,
constant ``if`` / ``else``, ``for`` over known values, comprehensions, subscripts,
f-strings, ``dict(**x)``, a fixed set of pure builtins on known values (``sum``,
``min``, ``max``, ``len``, ``range``, ``sorted``, ``zip``...), the methods ``update``,
``extend``, ``append`` (and a few more) of known values, ``copy.deepcopy(x)``.

**What cannot be evaluated does not fail the file.** A statement or expression the
reader does not evaluate (a call of an imported or undefined function, a ``def``, a
``while``, an ``if`` on an unknown condition...) gives an
:class:`~optiplug.recipe.pyvalues.Unknown` value, recording the file, the line and the
construct, to the names it assigns or mutates (a bare call of something not evaluated
may change any name: every name bound so far). Unknown values are kept in the result;
only *reading* one raises a ConfigError naming the key, the file, the line and the
construct. The dialects need no change: the dicts holding an Unknown are
:class:`~optiplug.recipe.pyvalues.ConfigDict`, whose item access raises, and the
Unknown itself raises on any use (truth, comparison, numbers, iteration...). Keys the
dialects never read (``model``, ``data.train.pipeline``...) may hold anything.

Files, as MMCV and MMEngine combine them:

* ``_base_ = 'base.py'`` or a list of them, relative to the file: the bases are read the
  same way (recursively), combined (a key set by two bases is an error, as in MMCV) and
  the file's own values merged into them key by key; a dict with ``_delete_=True``
  replaces the base's value instead of merging into it;
* ``{{_base_.x.y}}`` is substituted as MMCV does it: textually replaced by a placeholder
  string before parsing, and each value equal to the placeholder replaced by the bases'
  ``x.y`` after the file is evaluated;
* MMEngine's pure-Python configs: ``with read_base(): from .._base_.x import *`` (or
  named imports) reads that file and binds its names here; any other import binds a
  name that stands for the imported thing's name, as MMEngine's lazy import prints it
  (``from torch.optim import SGD`` then ``type=SGD`` gives ``'SGD'``). Names bound to an
  import, and names starting with ``__``, are not part of the result.

Security: nothing is imported, executed or called but the pure builtins on known data;
a file making more than 1,000,000 values, a sequence over 100,000 items, an integer
over 4096 bits, nesting too deep, base cycles, missing bases, devices and huge files are
ConfigErrors at once.

>>> load_pyfile("configs/simclr_lars.py")["optimizer"]
{'type': 'LARS', 'lr': 4.8, 'momentum': 0.9, 'weight_decay': 1e-06}
"""

from __future__ import annotations

import ast
import re
from pathlib import Path
from typing import Any

from optiplug.errors import ConfigError
from optiplug.recipe.files import read_text
from optiplug.recipe.pyeval import MAX_DEPTH, MAX_VALUES, Evaluator, Function, Imported
from optiplug.recipe.pyvalues import ConfigDict, Unknown

BASE_KEY = "_base_"
DELETE_KEY = "_delete_"
MAX_BASE_DEPTH = 32
BASE_VARIABLE = re.compile(r"\{\{\s*_base_\.([\w\.]+)\s*\}\}")
PLACEHOLDER = "_optiplug_base_{}_{}"
READ_BASE = {("mmengine.config", "read_base"), ("mmengine", "read_base")}


def load_pyfile(path: str | Path) -> dict[str, Any]:
    """The config a ``.py`` file describes, with its bases merged; nothing is executed.

    Values that could not be evaluated are :class:`~optiplug.recipe.pyvalues.Unknown`:
    reading one raises a ConfigError naming the key, the file, the line and the construct.
    """
    names = _Loader().load(Path(path).expanduser().absolute(), ())
    return publish(names, "")  # type: ignore[no-any-return]


def publish(value: Any, path: str) -> Any:
    """The result handed out: dicts holding an Unknown become ConfigDicts, Unknowns name their key."""
    if isinstance(value, Unknown):
        return value.at(path)
    if isinstance(value, Imported):
        return value.label
    if isinstance(value, dict):
        items = {k: publish(v, f"{path}.{k}" if path else str(k)) for k, v in value.items()}
        if not any(isinstance(v, Unknown | ConfigDict) for v in items.values()):
            return items
        out = ConfigDict(items)
        out.path = path
        return out
    if isinstance(value, list | tuple):
        items_ = [publish(v, f"{path}[{i}]") for i, v in enumerate(value)]
        return items_ if isinstance(value, list) else tuple(items_)
    return value


class _Loader:
    """Reads one config file and its bases."""

    def load(self, path: Path, chain: tuple[Path, ...], keep_imported: bool = False) -> dict[str, Any]:
        """The names ``path`` leaves, its bases merged in (Imported names kept when ``keep_imported``)."""
        real = _resolve(path, chain)
        if real in chain:
            cycle = " -> ".join(p.name for p in (*chain, real))
            raise ConfigError(f"{path}: _base_ files include each other ({cycle})")
        if len(chain) >= MAX_BASE_DEPTH:
            raise ConfigError(f"{path}: _base_ files nested more than {MAX_BASE_DEPTH} deep")
        module, placeholders = _parse(path)
        body = [s for s in module.body if not _assigns_base(s)]
        merged = self._bases(module, path, (*chain, real))
        evaluator = Evaluator(path)
        evaluator.base_hook = lambda node: self._read_base(node, evaluator, path, (*chain, real))
        if merged is not None:
            evaluator.names[BASE_KEY] = merged  # MMEngine runs the file with the bases' values as _base_
        evaluator.run(body)
        names = _settle(evaluator, path)
        own = {
            k: v for k, v in names.items() if not k.startswith("__") and (keep_imported or not isinstance(v, Imported))
        }
        base = own.pop(BASE_KEY, None)
        if merged is None:
            return _without_delete(own)
        if isinstance(base, Unknown):  # the file may have changed the bases' values in ways not evaluated
            base = {key: base for key in merged}
        elif not isinstance(base, dict):
            base = merged
        if placeholders:
            own = _substitute(own, placeholders, base, path)
        return merge(own, base, str(path))

    def _bases(self, module: ast.Module, path: Path, chain: tuple[Path, ...]) -> dict[str, Any] | None:
        """The file's ``_base_`` files read and combined (None without ``_base_``), before the file runs."""
        statement = next((s for s in module.body if _assigns_base(s)), None)
        if statement is None:
            return None
        assert isinstance(statement, ast.Assign)
        bases = Evaluator(path).expr(statement.value)
        if isinstance(bases, Unknown):
            raise ConfigError(f"{path}, line {bases.line}: _base_ must be known to read the file: {bases.construct}")
        merged: dict[str, Any] = {}
        for base in _base_paths(bases, path):
            values = self.load(base, chain)
            duplicates = sorted(merged.keys() & values.keys())
            if duplicates:
                raise ConfigError(
                    f"{path}: the _base_ files both set {', '.join(duplicates)} "
                    "(MMCV refuses duplicate keys among bases)"
                )
            merged.update(values)
        return merged

    def _read_base(self, node: ast.With, evaluator: Evaluator, path: Path, chain: tuple[Path, ...]) -> bool:
        """``with read_base(): from .x import *``: that file's names bound here (False: not read_base)."""
        if len(node.items) != 1 or not isinstance(node.items[0].context_expr, ast.Call):
            return False
        func = evaluator.expr(node.items[0].context_expr.func)
        if not (isinstance(func, Imported) and (func.module, func.name) in READ_BASE):
            return False
        for statement in node.body:
            if not isinstance(statement, ast.ImportFrom):
                raise ConfigError(f"{path}, line {statement.lineno}: only imports may stand under read_base()")
            names = self.load(_module_file(statement, path), chain, keep_imported=True)
            for alias in statement.names:
                if alias.name == "*":
                    for name, value in names.items():
                        if not name.startswith("_"):
                            evaluator.bind(name, value)
                elif alias.name in names:
                    evaluator.bind(alias.asname or alias.name, names[alias.name])
                else:
                    evaluator.bind(
                        alias.asname or alias.name,
                        evaluator.unknown(statement, f"{alias.name}, which {statement.module} does not set"),
                    )
        return True


def _assigns_base(statement: ast.stmt) -> bool:
    """``_base_ = ...`` (MMEngine reads it before the file and removes it from the file)."""
    return (
        isinstance(statement, ast.Assign)
        and len(statement.targets) == 1
        and isinstance(statement.targets[0], ast.Name)
        and statement.targets[0].id == BASE_KEY
    )


def _module_file(statement: ast.ImportFrom, path: Path) -> Path:
    """The file a ``read_base()`` import names, as MMEngine finds it (a package's configs by the file's folders)."""
    module = statement.module or ""
    if statement.level > 0:
        folder = path.parent
        for _ in range(statement.level - 1):
            folder = folder.parent
        return folder.joinpath(*module.split(".")).with_suffix(".py")
    package, *rest = module.split(".")
    for folder in path.parents:
        if folder.name == package and rest:
            return folder.joinpath(*rest).with_suffix(".py")
    raise ConfigError(
        f"{path}, line {statement.lineno}: read_base() imports {module}, a package config optiplug cannot find "
        "without importing the package; give it as a relative import (from ..x import *)"
    )


def _settle(evaluator: Evaluator, path: Path) -> dict[str, Any]:
    """The file's names as an unshared tree: changed containers and local functions become Unknown."""
    counter = [0]

    def settle(value: Any, depth: int, inside: frozenset[int]) -> Any:
        counter[0] += 1
        if counter[0] > MAX_VALUES:
            raise ConfigError(f"{path}: more than {MAX_VALUES:,} values with the names copied into each other")
        if depth > MAX_DEPTH:
            raise ConfigError(f"{path}: nested more than {MAX_DEPTH} levels deep")
        if isinstance(value, Function):
            return Unknown(str(path), value.line, f"{value.name}, defined by a def or class statement")
        if isinstance(value, dict | list | set) and id(value) in evaluator.poisoned:
            return evaluator.poisoned[id(value)][1]
        if isinstance(value, dict | list | tuple):
            if id(value) in inside:
                raise ConfigError(f"{path}: a value contains itself")
            within = inside | {id(value)}
            if isinstance(value, dict):
                return {k: settle(v, depth + 1, within) for k, v in value.items()}
            items = [settle(v, depth + 1, within) for v in value]
            return items if isinstance(value, list) else tuple(items)
        if isinstance(value, set | range):
            return value
        return value

    return {name: settle(value, 0, frozenset()) for name, value in evaluator.names.items()}


def _resolve(path: Path, chain: tuple[Path, ...]) -> Path:
    where = f" (a _base_ of {chain[-1]})" if chain else ""
    try:
        return path.resolve(strict=True)
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}{where}") from None
    except (RuntimeError, OSError) as exc:
        raise ConfigError(f"cannot read {path}{where}: {exc} (a symlink loop?)") from None


def _parse(path: Path) -> tuple[ast.Module, dict[str, str]]:
    """The file's syntax tree, ``{{_base_.x}}`` replaced by placeholder strings first (as MMCV does)."""
    source = read_text(path)
    placeholders: dict[str, str] = {}
    for i, variable in enumerate(sorted(set(BASE_VARIABLE.findall(source)))):
        placeholder = PLACEHOLDER.format(variable.replace(".", "_"), i)
        placeholders[placeholder] = variable
        source = re.sub(r"\{\{\s*_base_\." + re.escape(variable) + r"\s*\}\}", f"'{placeholder}'", source)
    try:
        return ast.parse(source, filename=str(path)), placeholders
    except SyntaxError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: invalid Python syntax: {exc.msg}") from None
    except (RecursionError, MemoryError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot parse: {type(exc).__name__}") from None


def _substitute(value: Any, placeholders: dict[str, str], bases: dict[str, Any], path: Path) -> Any:
    """MMCV's ``_substitute_base_vars``: placeholder strings among values replaced by the bases' values."""
    if isinstance(value, str) and value in placeholders:
        found: Any = bases
        for key in placeholders[value].split("."):
            if not isinstance(found, dict) or key not in found:
                return Unknown(
                    str(path), "?", f"{{{{_base_.{placeholders[value]}}}}}, which the _base_ files do not set"
                )
            found = found[key]
        return found
    if isinstance(value, dict):
        return {k: _substitute(v, placeholders, bases, path) for k, v in value.items()}
    if isinstance(value, list | tuple):
        items = [_substitute(v, placeholders, bases, path) for v in value]
        return items if isinstance(value, list) else tuple(items)
    return value


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
        delete = value.get(DELETE_KEY, False)
        if isinstance(delete, Unknown):
            out[key] = delete  # whether it replaces or merges is not known
            continue
        if key not in out or bool(delete):
            out[key] = _without_delete(value)
        elif isinstance(out[key], Unknown):
            out[key] = out[key]  # merged into a base value that is not known: not known either
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
