"""optiplug_zero: ZeRO stage 1, the optimizer state sharded across data-parallel ranks.

The wrapper ``zero`` puts the built optimizer (LARC-wrapped or not) inside
``torch.distributed.optim.ZeroRedundancyOptimizer``: every rank keeps every parameter
and every param group, but steps and holds state for only its shard of the parameters,
then broadcasts its updated shard. The schedules write into the outer optimizer's
``param_groups`` on every rank; ZeRO copies them into the rank's shard before each step.

::

    wrappers:
      - {name: zero}

A checkpoint needs the shards gathered first, on every rank::

    optiplug_zero.consolidate(built.optimizer, to=0)
    if torch.distributed.get_rank() == 0:
        torch.save(built.state_dict(), "checkpoint.pt")

See docs/plugins/zero.md.
"""

from __future__ import annotations

from optiplug import WrapperSpec, hookimpl
from optiplug_zero.consolidation import consolidate, sharded

__all__ = ["consolidate", "sharded"]


@hookimpl
def optiplug_wrappers() -> list[WrapperSpec]:
    """The ``zero`` wrapper."""
    from optiplug_zero.sharding import ZeroConfig, wrap_zero

    return [
        WrapperSpec(
            name="zero",
            config_class=ZeroConfig,
            wrap=wrap_zero,
            description="ZeRO-1: the optimizer state sharded across ranks (torch ZeroRedundancyOptimizer)",
        )
    ]
