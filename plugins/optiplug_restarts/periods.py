"""Which restart period a position falls in, without replaying the run.

Period i has length ``T_i`` and starts at ``S_i = T_0 + ... + T_(i-1)`` (positions and
lengths in one unit: epochs or fractions of the run). :meth:`locate` returns, for a
tensor of positions, each one's period index, start and length:

* :class:`ConstantPeriods` (``t_mult = 1``): ``i = floor(x / T)``.
* :class:`GeometricPeriods` (exact ``T_i = T_0 * t_mult ** i``): the geometric sum
  inverted, ``i = floor(log(1 + x (m - 1) / T_0) / log m)``, then checked against the
  neighbouring starts so that floating-point rounding cannot misplace a boundary.
* :class:`CeilPeriods` (adamwr: ``T_0 = ceil(T)``, ``T_(i+1) = ceil(T_i * m)``, whole
  epochs): the starts, one per period, kept in a table that is extended as far as the
  positions asked for (a few dozen entries for a long run: periods grow at least
  geometrically, or settle on a fixed length, which then repeats in closed form), and
  looked up with one ``bucketize``.

Each is O(1) (or one binary search over the periods) per position, vectorized.
"""

from __future__ import annotations

import math
from typing import Protocol

import torch

Located = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class Periods(Protocol):
    """A sequence of restart periods."""

    def locate(self, x: torch.Tensor) -> Located:
        """Index, start and length of the period each position ``x >= 0`` falls in."""
        ...

    def first(self) -> float:
        """The length of period 0."""
        ...


class ConstantPeriods:
    """Periods of one length."""

    def __init__(self, length: float) -> None:
        self.length = float(length)

    def first(self) -> float:
        """The period length."""
        return self.length

    def locate(self, x: torch.Tensor) -> Located:
        """``i = floor(x / T)``, ``S_i = i * T``."""
        index = torch.floor(x / self.length).clamp(min=0.0)
        return index, index * self.length, torch.full_like(x, self.length)


class GeometricPeriods:
    """Exact periods ``T_0 * m ** i``; with m < 1 they shrink, and end at ``limit()``."""

    def __init__(self, first: float, ratio: float) -> None:
        self.length0 = float(first)
        self.ratio = float(ratio)

    def first(self) -> float:
        """``T_0``."""
        return self.length0

    def limit(self) -> float:
        """Where the periods run out: ``T_0 / (1 - m)`` for m < 1, else infinity."""
        return self.length0 / (1.0 - self.ratio) if self.ratio < 1 else math.inf

    def start(self, index: torch.Tensor) -> torch.Tensor:
        """``S_i = T_0 (m ** i - 1) / (m - 1)``."""
        return (
            self.length0 * (torch.pow(torch.tensor(self.ratio, dtype=torch.float64), index) - 1.0) / (self.ratio - 1.0)
        )

    def locate(self, x: torch.Tensor) -> Located:
        """The inverted geometric sum, corrected by one against the neighbouring starts."""
        m = self.ratio
        argument = (x * (m - 1.0) / self.length0).clamp(min=-1.0 + 1e-16)
        guess = torch.floor(torch.log1p(argument) / math.log(m)).clamp(0.0, 1e6)
        index = guess + (x >= self.start(guess + 1)).double() - (x < self.start(guess)).double()
        index = index.clamp(min=0.0)
        length = self.length0 * torch.pow(torch.tensor(m, dtype=torch.float64), index)
        return index, self.start(index), length


class CeilPeriods:
    """adamwr's periods: whole epochs, ``T_0 = ceil(T)``, ``T_(i+1) = ceil(T_i * m)`` (Python floats)."""

    def __init__(self, first: float, ratio: float) -> None:
        self.ratio = float(ratio)
        self.lengths = [math.ceil(first)]
        self.starts = [0]
        self.settled = False
        self._table = (torch.zeros(1, dtype=torch.float64), torch.tensor([float(self.lengths[0])], dtype=torch.float64))

    def first(self) -> float:
        """``ceil(T)``."""
        return float(self.lengths[0])

    def _extend(self, until: float) -> None:
        grown = False
        while not self.settled and self.starts[-1] + self.lengths[-1] <= until:
            following = math.ceil(self.lengths[-1] * self.ratio)
            if following == self.lengths[-1]:
                self.settled = True  # a fixed point: this length repeats forever
                break
            self.starts.append(self.starts[-1] + self.lengths[-1])
            self.lengths.append(following)
            grown = True
        if grown:
            self._table = (
                torch.tensor(self.starts, dtype=torch.float64),
                torch.tensor(self.lengths, dtype=torch.float64),
            )

    def locate(self, x: torch.Tensor) -> Located:
        """The table's period for positions inside it; the settled length repeats beyond."""
        if x.numel():
            self._extend(float(x.max()))
        starts, lengths = self._table
        index = (torch.bucketize(x, starts, right=True) - 1).clamp(min=0)
        start, length = starts[index], lengths[index]
        index = index.double()
        if self.settled:
            last = len(self.starts) - 1
            beyond = torch.floor((x - starts[last]) / lengths[last]).clamp(min=0.0)
            index = index + beyond
            start = start + beyond * lengths[last]
        return index, start, length
