"""The base of optiplug's LARS optimizers: it walks each group's parts, a subclass updates one."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch.optim import Optimizer

from optiplug_larc.distributed import ReduceOver, global_norms, local_shards
from optiplug_larc.packing import LayoutCache, Packed, Part, Tensors, with_grads


class PackedOptimizer(Optimizer):
    """An optimizer whose update is written once per :class:`~optiplug_larc.packing.Part`.

    ``step`` hands every part of every group (params that have a gradient) to
    ``_step_part``; subclasses check each group's options in ``_check_group``.
    DTensor parameters (FSDP2) are handed over as their local shards; :meth:`_norms`
    gives the norms of the whole tensors and the state stays keyed by (and shaped
    like) the DTensor parameters.
    """

    def __init__(self, params: Iterable[Any], defaults: dict[str, Any]) -> None:
        self._check_group(defaults, "")
        super().__init__(params, defaults)
        self._layouts = LayoutCache()
        self._originals: dict[int, torch.Tensor] = {}
        self._over: list[ReduceOver] = []

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._layouts = LayoutCache()
        self._originals, self._over = {}, []

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group (defaults filled in) and check its options."""
        super().add_param_group(param_group)
        self._check_group(self.param_groups[-1], f"param_groups[{len(self.param_groups) - 1}]")

    def _check_group(self, group: dict[str, Any], path: str) -> None:
        """Raise a ConfigError at ``path`` (``""`` for the constructor's arguments) for a bad option."""
        raise NotImplementedError

    def _step_part(self, group: dict[str, Any], part: Part, members: Tensors, grads: Tensors) -> None:
        """Update ``members`` (one part's params, in unit order; ``grads`` theirs) with ``group``'s options."""
        raise NotImplementedError

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> Any:  # type: ignore[override]
        """One update of every parameter that has a gradient; returns the closure's loss."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for index, group in enumerate(self.param_groups):
            params, grads = with_grads(group["params"])
            if not params:
                continue
            originals = params
            params, grads, over = local_shards(params, grads, False)
            self._originals = {id(a): b for a, b in zip(params, originals, strict=True) if a is not b}
            try:
                for part in self._layouts.get(index, params).parts:
                    self._over = part.pick(over)
                    self._step_part(group, part, part.pick(params), part.pick(grads))
            finally:
                self._originals, self._over = {}, []
        return loss

    def _norms(self, *packed: Packed) -> list[torch.Tensor]:
        """The norm of every unit of each of ``packed`` (the current part's): of the whole tensors.

        For sharded (DTensor) parameters the squares are all-reduced, all in one call.
        """
        norms = [p.norms() for p in packed]
        if not any(self._over):
            return norms
        order = packed[0].part.order
        keys = [[(kind, position) for position in order] for kind in range(len(norms))]
        return global_norms(norms, [self._over] * len(norms), keys)

    def _state_buffers(
        self, members: list[torch.Tensor], key: str, part: Part | None = None
    ) -> tuple[list[torch.Tensor], list[int]]:
        """Each member's ``state[key]`` (made as zeros where missing), and the units that were missing.

        With ``part`` (the members' part) and plain tensors, the state dicts are looked up
        through :meth:`Part.states`.
        """
        if part is not None and not self._originals:
            states = part.states(self.state, members)
            found: list[Any] = [state.get(key) for state in states]
            missing = [unit for unit, buffer in enumerate(found) if buffer is None]
            for unit in missing:
                found[unit] = states[unit][key] = torch.zeros_like(members[unit], memory_format=torch.preserve_format)
            return found, missing
        buffers, fresh = [], []
        for unit, param in enumerate(members):
            original = self._originals.get(id(param), param)
            state = self.state[original]
            buffer = state.get(key)
            if buffer is None:
                buffer = state[key] = torch.zeros_like(original, memory_format=torch.preserve_format)
                fresh.append(unit)
            buffers.append(buffer if original is param else buffer.to_local())
        return buffers, fresh
