"""The shapes of one cycle and the CLR envelopes of its peak, as vectorized functions.

A *profile* maps the progress through a cycle, ``u`` in [0, 1], to a multiplier in
[0, 1] (adamwr's ``policy_fn`` with ``u = t_cur / restart_period``). An *envelope*
scales the peak by the cycle index and by the update index (CLR's triangular2 and
exp_range). A schedule's multiplier is ``envelope(cycle, step) * profile(u)``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import attrs
import torch

Profile = Callable[[torch.Tensor], torch.Tensor]


def cosine(u: torch.Tensor) -> torch.Tensor:
    """``(1 + cos(pi u)) / 2``: 1 at the start of the cycle, 0 at its end (SGDR)."""
    return 0.5 * (1.0 + torch.cos(math.pi * u))


def arccosine(u: torch.Tensor) -> torch.Tensor:
    """``arccos(2u - 1) / pi``: 1 to 0 like the cosine, with steeper ends (adamwr's arccosine)."""
    return torch.arccos((2.0 * u - 1.0).clamp(-1.0, 1.0)) / math.pi


@attrs.frozen
class Triangular:
    """CLR's triangle: rises from 0 to 1 over the first ``rising`` fraction, then falls to 0.

    >>> # rising 0.25: u = 0, 0.125, 0.25, 0.625, 1 -> 0, 0.5, 1, 0.5, 0
    """

    rising: float = 0.5

    def __call__(self, u: torch.Tensor) -> torch.Tensor:
        """The triangle at each ``u``."""
        up = u / self.rising if self.rising > 0 else torch.ones_like(u)
        down = (1.0 - u) / (1.0 - self.rising) if self.rising < 1 else torch.ones_like(u)
        return torch.where(u < self.rising, up, down)


@attrs.frozen
class Envelope:
    """The peak of cycle ``c`` at update ``n``: ``per_cycle ** c * per_step ** n``.

    ``per_cycle=0.5`` is CLR's triangular2 (and adamwr's ``ReduceMaxLROnRestart``);
    ``per_step=gamma`` is CLR's exp_range (gamma ** n, n counting updates).
    """

    per_cycle: float = 1.0
    per_step: float = 1.0

    def __call__(self, cycle: torch.Tensor, steps: torch.Tensor) -> torch.Tensor:
        """The peak factor at each (cycle, update) pair."""
        factor = torch.ones_like(steps)
        if self.per_cycle != 1.0:
            factor = factor * torch.pow(torch.tensor(self.per_cycle, dtype=torch.float64), cycle)
        if self.per_step != 1.0:
            factor = factor * torch.pow(torch.tensor(self.per_step, dtype=torch.float64), steps)
        return factor

    def __mul__(self, other: Envelope) -> Envelope:
        return Envelope(self.per_cycle * other.per_cycle, self.per_step * other.per_step)


@attrs.frozen
class Shape:
    """A cycle's profile together with the envelope of its peak."""

    profile: Profile
    envelope: Envelope = Envelope()


POLICIES = ("cosine", "arccosine", "triangular", "triangular2", "exp_range")


def policy_shape(policy: str, triangular_step: float = 0.5, gamma: float = 1.0) -> Shape:
    """The shape of one of adamwr's / CLR's policies by name (see :data:`POLICIES`)."""
    if policy == "cosine":
        return Shape(cosine)
    if policy == "arccosine":
        return Shape(arccosine)
    if policy == "triangular":
        return Shape(Triangular(triangular_step))
    if policy == "triangular2":
        return Shape(Triangular(triangular_step), Envelope(per_cycle=0.5))
    if policy == "exp_range":
        return Shape(Triangular(triangular_step), Envelope(per_step=gamma))
    raise ValueError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
