"""The ``zero`` wrapper: a built optimizer inside torch's ``ZeroRedundancyOptimizer``.

``ZeroRedundancyOptimizer(groups, optimizer_class)`` keeps every param group (all the
parameters, all the options) as its own ``param_groups`` and calls
``optimizer_class(local_groups)`` for the rank's shard. Here that call hands the shard to
the optimizer optiplug already built: its groups keep their options (and a LARC wrapper
its settings) and now hold only the rank's parameters. Before each step ZeRO copies every
option of its ``param_groups`` into the shard's groups (``_sync_param_groups``), so the
values the scheduler writes reach the shard on every rank, every group included, even one
whose parameters all live on other ranks; after the step it copies them back.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import attrs
import torch.distributed as dist
from torch.optim import Optimizer

from optiplug import ConfigError, OptiplugWarning
from optiplug.plugin import help_field
from optiplug_zero.consolidation import sharded
from optiplug_zero.torch_zero import zero_redundancy_optimizer

PATH = "zero"


@attrs.frozen
class ZeroConfig:
    """Options of ``{name: zero}``."""

    parameters_as_bucket_view: bool = help_field(
        "Pack each rank's parameters into contiguous buckets (fewer, larger broadcasts after each step).",
        default=False,
    )


class ShardAdopter:
    """``optimizer_class`` for ZeroRedundancyOptimizer: the built optimizer takes the rank's shard.

    Its param groups keep every option and receive, group by group, the parameters
    ZeRO assigned to this rank (possibly none).
    """

    def __init__(self, optimizer: Optimizer) -> None:
        self.optimizer = optimizer

    def __call__(self, local_groups: Sequence[dict[str, Any]], **_defaults: Any) -> Optimizer:
        """The built optimizer, its groups now holding ``local_groups``' parameters."""
        groups = self.optimizer.param_groups
        if len(local_groups) != len(groups):
            raise ValueError(f"ZeRO made {len(local_groups)} local param groups for an optimizer with {len(groups)}")
        for group, local in zip(groups, local_groups, strict=True):
            group["params"] = list(local["params"])
        return self.optimizer


def wrap_zero(optimizer: Optimizer, config: ZeroConfig | None) -> Optimizer:
    """The ``WrapperSpec.wrap`` of ``zero``: ``optimizer`` sharded over the default process group.

    Without an initialized process group there is nothing to shard across: the optimizer
    is returned as it is, with a warning (one process holding all the state gives the
    same numbers).
    """
    config = config or ZeroConfig()
    if not (dist.is_available() and dist.is_initialized()):
        warnings.warn(
            "zero: torch.distributed is not initialized, so the optimizer state is not sharded "
            "(call torch.distributed.init_process_group before build(); one process holds all the state)",
            OptiplugWarning,
            stacklevel=3,
        )
        return optimizer
    if sharded(optimizer) is not None:
        raise ConfigError("the optimizer is sharded already: give the zero wrapper once", PATH)
    if any(optimizer.state.values()):
        raise ConfigError("zero shards a fresh optimizer: wrap it before its first step", PATH)
    groups = [{**group, "params": list(group["params"])} for group in optimizer.param_groups]
    try:
        return zero_redundancy_optimizer()(
            groups,
            optimizer_class=ShardAdopter(optimizer),  # type: ignore[arg-type]
            parameters_as_bucket_view=config.parameters_as_bucket_view,
        )
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"ZeroRedundancyOptimizer refused the optimizer: {exc}", PATH) from exc
