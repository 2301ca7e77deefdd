"""The statements of a ``.py`` config, evaluated as data: nothing is ever run.

:class:`Statements` runs a file's module-level statements in order: assignments (to
names, items, unpacked targets), ``del``, ``if`` / ``for`` over known values, imports
(bound, never executed) and calls of methods of known values. Everything else (a
function or class definition whose definition runs code, ``while``, ``try``...) is not
run: the names it assigns or the values it could mutate become an
:class:`~optiplug.recipe.pyvalues.Unknown`, and every name when it calls what is not
modelled.
"""

from __future__ import annotations

import ast
from typing import Any

from optiplug.recipe.pyexpressions import METHODS, MUTATING, PURE_BUILTINS, Expressions
from optiplug.recipe.pyscope import CONSTRUCTS, Function, Imported, hashable, root_name, short
from optiplug.recipe.pyvalues import Unknown

HARMLESS_CALLS = frozenset({"print"})


class Statements(Expressions):
    """One file's namespace, filled statement by statement."""

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
        if isinstance(container, dict) and not isinstance(key, Unknown) and hashable(key):
            container[key] = value
            return
        if isinstance(container, list) and isinstance(key, int) and not isinstance(key, bool):
            if -len(container) <= key < len(container):
                container[key] = value
                return
        self.mutated(target, self.unknown(node, f"an assignment to {ast.unparse(target)}"))

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
            if isinstance(container, dict) and not isinstance(key, Unknown) and hashable(key) and key in container:
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
            self.poison_all(self.unknown(node, f"a call to {short(func)}() (it may change any name)"))
            return
        self.expr(value)

    def if_statement(self, node: ast.If) -> None:
        """The branch a known condition selects; both branches' names unknown otherwise."""
        test = self.truth(self.expr(node.test))
        if isinstance(test, Unknown):
            construct = f"an if on {short(node.test)}, which is not known ({test.construct})"
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
            construct = f"a loop over {short(node.iter)}"
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


def _target_names(node: ast.expr) -> list[str]:
    if isinstance(node, ast.Name):
        return [node.id]
    if isinstance(node, ast.Tuple | ast.List):
        return [n for item in node.elts for n in _target_names(item)]
    root = root_name(node)
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
                root = root_name(node.func.value)
                if root:
                    names.add(root)
            elif isinstance(node, ast.ExceptHandler) and node.name:
                names.add(node.name)
    return names
