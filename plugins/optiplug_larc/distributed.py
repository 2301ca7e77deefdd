"""Global norms of sharded tensors: all-reduced sums of squares.

Two kinds of sharding are seen: a plain tensor that holds one rank's piece of a
parameter (FSDP1's flat parameters, VISSL's ``distributed_norm``: the pieces are summed
over the default process group when asked for), and a DTensor (FSDP2's ``fully_shard``,
tensor parallel), whose norm is always the norm of the whole tensor: the squares of
the local shards are summed over the process groups of the mesh dimensions it is
sharded along. Either way, one all-reduce per process group and step carries every
norm, and the math in between runs on the local shards as plain tensors.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Any, cast

import torch
import torch.distributed as dist

ReduceOver = tuple[Any, ...]
"""The process groups a unit's squared norm is summed over (``()``: the tensor is whole here;
``(None,)``: the default group)."""

DEFAULT_GROUP: ReduceOver = (None,)


def distributed_ready() -> bool:
    """Whether there is a default process group to all-reduce over."""
    return dist.is_available() and dist.is_initialized()


def _dtensor_type() -> type | None:
    """The DTensor class, if anything imported it (a DTensor exists only then; importing costs seconds)."""
    module = sys.modules.get("torch.distributed.tensor")
    return getattr(module, "DTensor", None)


def local_shards(
    params: Sequence[torch.Tensor], grads: Sequence[torch.Tensor], distributed_norm: bool
) -> tuple[list[torch.Tensor], list[torch.Tensor], list[ReduceOver]]:
    """Params and grads as plain tensors, and what each squared norm is summed over.

    A DTensor becomes its local shard (which shares its storage); its squared norm is
    summed over the groups it is sharded along, giving the whole tensor's. Plain tensors
    are summed over the default group only with ``distributed_norm`` (and an initialized
    process group).
    """
    plain_over = DEFAULT_GROUP if distributed_norm and distributed_ready() else ()
    dtensor = _dtensor_type()
    if dtensor is None or not any(issubclass(kind, dtensor) for kind in set(map(type, params))):
        return list(params), list(grads), [plain_over] * len(params)
    local_params, local_grads, over = [], [], []
    for p, g in zip(params, grads, strict=True):
        if isinstance(p, dtensor):
            local_params.append(cast(Any, p).to_local())
            local_grads.append(cast(Any, g).to_local() if isinstance(g, dtensor) else g)
            over.append(sharded_over(p))
        else:
            local_params.append(p)
            local_grads.append(g)
            over.append(plain_over)
    return local_params, local_grads, over


def sharded_over(tensor: Any) -> ReduceOver:
    """The process groups of the mesh dimensions a DTensor is sharded along (``()`` if replicated)."""
    mesh = tensor.device_mesh
    return tuple(mesh.get_group(dim) for dim, placement in enumerate(tensor.placements) if placement.is_shard())


def global_norms(
    norms: list[torch.Tensor], over: list[list[ReduceOver]] | None = None, keys: list[list[Any]] | None = None
) -> list[torch.Tensor]:
    """Each vector of local norms turned into global norms: sqrt of the all-reduced squares.

    ``over[i][u]`` says what unit ``u`` of vector ``i`` is summed over (default: every unit
    over the default group). All vectors on one device travel in a single all-reduce per
    process group (sum). Every rank must call this with vectors of the same sizes.
    ``keys[i][u]`` names unit ``u`` the same way on every rank (the units are summed in
    the order of their keys): ranks whose shards have other shapes may order their units
    differently (small tensors of equal shape are stacked). Without ``keys`` the order
    must be the same everywhere. Without an initialized process group the local norms
    are returned unchanged.
    """
    if not distributed_ready() or not norms:
        return norms
    units = [list(o) for o in over] if over is not None else [[DEFAULT_GROUP] * n.numel() for n in norms]
    if not any(o for unit in units for o in unit):
        return norms
    by_device: dict[torch.device, list[int]] = {}
    for i, vector in enumerate(norms):
        by_device.setdefault(vector.device, []).append(i)
    out = list(norms)
    for index in by_device.values():
        squares = torch.cat([_widened(norms[i]).square() for i in index])
        unit_over = [o for i in index for o in units[i]]
        order = None if keys is None else _sorting([k for i in index for k in keys[i]])
        if order is not None:
            squares = squares[torch.tensor(order, device=squares.device)]
            _all_reduce(squares, [unit_over[u] for u in order])
            squares = squares[torch.tensor(_inverse(order), device=squares.device)]
        else:
            _all_reduce(squares, unit_over)
        pieces = squares.sqrt().split([norms[i].numel() for i in index])
        for i, piece in zip(index, pieces, strict=True):
            out[i] = piece.to(norms[i].dtype)
    return out


def _sorting(keys: list[Any]) -> list[int] | None:
    """The positions that sort ``keys`` (None if they are sorted already)."""
    order = sorted(range(len(keys)), key=keys.__getitem__)
    return None if order == list(range(len(keys))) else order


def _inverse(order: list[int]) -> list[int]:
    inverse = [0] * len(order)
    for position, unit in enumerate(order):
        inverse[unit] = position
    return inverse


def _all_reduce(squares: torch.Tensor, over: list[ReduceOver]) -> None:
    """Sum ``squares`` in place, each entry over its own process groups (one all-reduce per group)."""
    kinds = set(over)
    if len(kinds) == 1:
        for group in next(iter(kinds)):
            _sum(squares, group)
        return
    for kind in kinds - {()}:
        mask = torch.tensor([o == kind for o in over], device=squares.device)
        part = torch.where(mask, squares, 0.0)
        for group in kind:
            _sum(part, group)
        torch.where(mask, part, squares, out=squares)


def _sum(tensor: torch.Tensor, group: Any) -> None:
    if group is None:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    else:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM, group=group)


def _widened(vector: torch.Tensor) -> torch.Tensor:
    """At least float32, so that squares of half-precision norms do not overflow."""
    return vector.to(torch.promote_types(vector.dtype, torch.float32))
