"""Finding the sharded optimizer inside wrappers, and gathering its state for a checkpoint."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from torch.optim import Optimizer

from optiplug.plugin import optimizer_chain
from optiplug_zero.torch_zero import zero_redundancy_optimizer

if TYPE_CHECKING:
    from torch.distributed.optim import ZeroRedundancyOptimizer


def sharded(optimizer: Optimizer) -> ZeroRedundancyOptimizer | None:
    """The ``ZeroRedundancyOptimizer`` that is ``optimizer`` or that it wraps (LARC, ...), or None."""
    if "torch.distributed.optim" not in sys.modules:
        return None  # no ZeroRedundancyOptimizer can exist yet (and importing torch's takes a second)
    zero_class = zero_redundancy_optimizer()
    for inner in optimizer_chain(optimizer):
        if isinstance(inner, zero_class):
            return inner
    return None


def consolidate(optimizer: Optimizer, to: int = 0) -> None:
    """Gather the sharded state on rank ``to``, so that its ``state_dict()`` holds every parameter's state.

    Call it on every rank (it communicates), then save ``state_dict()`` on rank ``to`` only:
    the other ranks hold no consolidated state, and their ``state_dict()`` raises. Steps
    taken after the call are not in the gathered state. An unsharded optimizer is left as
    it is (its ``state_dict()`` is complete already).
    """
    zero = sharded(optimizer)
    if zero is not None:
        zero.consolidate_state_dict(to=to)
