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

The work is split by what is evaluated: :mod:`~optiplug.recipe.pyscope` holds the
namespace, the limits, :class:`Imported` and :class:`Function`;
:mod:`~optiplug.recipe.pyexpressions` the expressions, calls and comprehensions;
:mod:`~optiplug.recipe.pystatements` the statements. :class:`Evaluator` is the whole.
"""

from __future__ import annotations

from optiplug.recipe.pyscope import MAX_DEPTH, MAX_SEQUENCE, MAX_VALUES, Function, Imported
from optiplug.recipe.pystatements import Statements

__all__ = ["MAX_DEPTH", "MAX_SEQUENCE", "MAX_VALUES", "Evaluator", "Function", "Imported"]


class Evaluator(Statements):
    """One file's namespace, filled statement by statement."""
