"""Global norms of sharded tensors: all-reduced sums of squares (VISSL's ``distributed_norm``)."""

from __future__ import annotations

import torch
import torch.distributed as dist


def distributed_ready() -> bool:
    """Whether there is a default process group to all-reduce over."""
    return dist.is_available() and dist.is_initialized()


def global_norms(norms: list[torch.Tensor]) -> list[torch.Tensor]:
    """Each vector of local norms turned into global norms: sqrt of the all-reduced squares.

    All vectors on one device travel in a single all-reduce (sum over the default
    process group). Every rank must call this with vectors of the same sizes.
    Without an initialized process group the local norms are returned unchanged.
    """
    if not distributed_ready() or not norms:
        return norms
    by_device: dict[torch.device, list[int]] = {}
    for i, vector in enumerate(norms):
        by_device.setdefault(vector.device, []).append(i)
    out = list(norms)
    for index in by_device.values():
        squares = torch.cat([_widened(norms[i]).square() for i in index])
        dist.all_reduce(squares, op=dist.ReduceOp.SUM)
        pieces = squares.sqrt().split([norms[i].numel() for i in index])
        for i, piece in zip(index, pieces, strict=True):
            out[i] = piece.to(norms[i].dtype)
    return out


def _widened(vector: torch.Tensor) -> torch.Tensor:
    """At least float32, so that squares of half-precision norms do not overflow."""
    return vector.to(torch.promote_types(vector.dtype, torch.float32))
