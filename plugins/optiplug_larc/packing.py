"""Batched math over one param group's tensors: few kernel launches and no host sync.

LARC and LARS do the same few operations on every tensor of a group (two norms, a
per-tensor factor, a multiply-add). Done tensor by tensor, that is several kernel
launches per tensor; on many small tensors the launches cost more than the math.

A :class:`Layout` splits a group's tensors into :class:`Part` s, one per device, dtype
and kind (plain dense tensors, or others such as tensor subclasses). Inside a part of
plain tensors, small tensors of equal shape form a :class:`Block`: they are stacked
into one ``(k, *shape)`` tensor (a buffer reused from step to step), so each operation
is one kernel for the whole block. The remaining tensors ("singles") go through
``torch._foreach_*`` kernels; only for non-plain tensors is there a Python loop.

A :class:`Packed` holds one part's tensors in that form. Per-tensor factors are given
as one vector per part (its "units": block rows first, block by block, then the
singles), computed on the device, so no value ever has to travel to the host.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, TypeVar, cast

import torch

SMALL_NUMEL = 4096
"""Tensors with at most this many elements are stacked with their equal-shape peers."""

_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)

Tensors = list[torch.Tensor]
T = TypeVar("T")


def _each(name: str, foreach: bool, tensors: list[torch.Tensor], *args: Any, **kwargs: Any) -> Any:
    """``torch._foreach_<name>`` over ``tensors``, or the per-tensor method in a loop.

    List arguments are taken item by item, other arguments are shared.
    """
    if foreach:
        return getattr(torch, f"_foreach_{name}")(tensors, *args, **kwargs)
    method = getattr(torch.Tensor, name)
    return [method(t, *(a[i] if isinstance(a, list) else a for a in args), **kwargs) for i, t in enumerate(tensors)]


class Block:
    """``k`` small tensors of one shape: rows ``start:stop`` of their part's units.

    The block's tensors are stacked into buffers (one per ``name``: param, grad,
    momentum, ...) that live as long as the layout. ``first`` is the position of the
    block's first member in the group's list.
    """

    def __init__(self, start: int, stop: int, first: torch.Tensor, position: int) -> None:
        self.start, self.stop, self.first = start, stop, position
        self.shape, self.device, self.dtype = first.shape, first.device, first.dtype
        self.row_numel = first.numel()
        self._buffers: dict[str, torch.Tensor] = {}

    def fits(self, tensor: torch.Tensor) -> bool:
        """Whether ``tensor`` still has the block's shape, dtype and device."""
        return tensor.shape == self.shape and tensor.dtype == self.dtype and tensor.device == self.device

    def stack(self, tensors: Sequence[torch.Tensor], name: str) -> torch.Tensor:
        """``tensors`` (this block's members, in order) copied into the ``name`` buffer."""
        buffer = self._buffers.get(name)
        if buffer is None:
            size = (self.stop - self.start, *self.shape)
            buffer = self._buffers[name] = torch.empty(size, device=self.device, dtype=self.dtype)
        return torch.stack(tuple(tensors), out=buffer)

    def rows(self, name: str) -> list[torch.Tensor]:
        """The ``name`` buffer's rows, as views."""
        return list(self._buffers[name].unbind(0))

    def factors(self, vector: torch.Tensor) -> torch.Tensor:
        """The block's slice of a per-unit vector, shaped to broadcast over the stacked rows."""
        return vector[self.start : self.stop].view(-1, *(1,) * len(self.shape))


class Part:
    """The tensors of one group that share device, dtype and kind, in unit order.

    ``order`` lists their positions in the group's tensor list: the members of each
    block (block by block), then the singles.
    """

    def __init__(self, order: list[int], blocks: list[Block], foreach: bool, like: Sequence[torch.Tensor]) -> None:
        self.order = order
        self.blocks = blocks
        self.size = len(order)
        self.foreach = foreach
        self.device = like[0].device
        self.ndims = [t.dim() for t in like]
        self.rows_in_blocks = blocks[-1].stop if blocks else 0
        self._memo: dict[Any, Any] = {}
        self._getter = None if order == list(range(len(order))) else itemgetter(*order, order[0])

    def pick(self, tensors: list[T]) -> list[T]:
        """The part's tensors (or anything listed per tensor) out of the group's list, in unit order."""
        if self._getter is None:
            return tensors
        return list(self._getter(tensors)[:-1])  # the extra index keeps itemgetter's result a tuple

    def pack(self, members: list[torch.Tensor], name: str) -> Packed:
        """``members`` (in unit order) packed: blocks stacked into the ``name`` buffers."""
        blocks = [block.stack(members[block.start : block.stop], name) for block in self.blocks]
        return Packed(self, blocks, members[self.rows_in_blocks :])

    def unpack_into(self, members: list[torch.Tensor], name: str) -> None:
        """Copy the blocks' ``name`` buffers back into ``members`` (singles were changed in place)."""
        if self.blocks:
            rows = self.memo(("rows", name), lambda: [row for b in self.blocks for row in b.rows(name)])
            torch._foreach_copy_(members[: self.rows_in_blocks], rows)

    def states(self, state: Any, members: list[Any]) -> list[dict[str, Any]]:
        """``[state[p] for p in members]``: each member's own state dict, made where missing.

        Looking up a tensor key costs a Python ``__hash__`` per tensor; the list is kept
        while the optimizer's ``state`` mapping is the same object with the same size
        and the members are the same objects (``load_state_dict`` makes a new mapping,
        a new parameter changes the size).
        """
        cached = self._memo.get("states")
        if (
            cached is not None
            and cached[0] is state
            and cached[1] == len(state)
            and len(cached[2]) == len(members)
            and all(map(operator.is_, cached[2], members))
        ):
            return cached[3]  # type: ignore[no-any-return]
        dicts = list(map(state.__getitem__, members))
        self._memo["states"] = (state, len(state), list(members), dicts)
        return dicts

    def memo(self, key: Any, make: Callable[[], Any]) -> Any:
        """A value that depends only on the layout (a per-unit mask, ...), made once."""
        if key not in self._memo:
            self._memo[key] = make()
        return self._memo[key]


class Factors:
    """A per-unit vector split for a :class:`Packed`: one view per block, one 0-d tensor per single."""

    def __init__(self, part: Part, vector: torch.Tensor) -> None:
        self.blocks = [block.factors(vector) for block in part.blocks]
        self.singles = list(vector[part.rows_in_blocks :].unbind(0)) if part.size > part.rows_in_blocks else []


Scalar = float | torch.Tensor


class Packed:
    """One part's tensors: a stacked tensor per block, and the singles as they are.

    Block tensors are buffers owned by the layout; singles are usually the caller's
    own tensors, so in-place methods change them (that is what LARC wants for grads,
    and what an optimizer wants for params and state).
    """

    def __init__(self, part: Part, blocks: list[torch.Tensor], singles: list[torch.Tensor]) -> None:
        self.part, self.blocks, self.singles = part, blocks, singles

    def norms(self) -> torch.Tensor:
        """The 2-norm of every unit, as one vector."""
        pieces = [
            torch.linalg.vector_norm(b.view(b.shape[0], block.row_numel), dim=1)
            for b, block in zip(self.blocks, self.part.blocks, strict=True)
        ]
        if self.singles:
            pieces.append(torch.stack(_each("norm", self.part.foreach, self.singles)))
        return pieces[0] if len(pieces) == 1 else torch.cat(pieces)

    def mul_(self, factor: Factors | Scalar) -> Packed:
        """Multiply every unit by its factor (or all by one scalar), in place."""
        if isinstance(factor, Factors):
            for b, f in zip(self.blocks, factor.blocks, strict=True):
                b.mul_(f)
            if self.singles:
                _each("mul_", self.part.foreach, self.singles, factor.singles)
        else:
            for b in self.blocks:
                b.mul_(factor)
            if self.singles:
                _each("mul_", self.part.foreach, self.singles, factor)
        return self

    def add_(self, other: Packed, alpha: float = 1.0) -> Packed:
        """``self += alpha * other``, in place."""
        for b, o in zip(self.blocks, other.blocks, strict=True):
            b.add_(o, alpha=alpha)
        if self.singles:
            _each("add_", self.part.foreach, self.singles, other.singles, alpha=alpha)
        return self

    def addcmul_(self, other: Packed, factor: Factors) -> Packed:
        """``self += other * factor`` (a factor per unit), in place."""
        for b, o, f in zip(self.blocks, other.blocks, factor.blocks, strict=True):
            b.addcmul_(o, f)
        if self.singles:
            _each("addcmul_", self.part.foreach, self.singles, other.singles, factor.singles)
        return self

    def plus(self, other: Packed, alpha: float) -> Packed:
        """``self + alpha * other`` in new singles; the blocks are reused in place.

        Use only the result afterwards: ``self``'s blocks now hold the sum.
        """
        for b, o in zip(self.blocks, other.blocks, strict=True):
            b.add_(o, alpha=alpha)
        singles = _each("add", self.part.foreach, self.singles, other.singles, alpha=alpha) if self.singles else []
        return Packed(self.part, self.blocks, list(singles))

    def copy_units_(self, other: Packed, units: Sequence[int]) -> None:
        """Copy the given units (positions in unit order) from ``other``."""
        for unit in units:
            if unit >= self.part.rows_in_blocks:
                single = unit - self.part.rows_in_blocks
                self.singles[single].copy_(other.singles[single])
                continue
            for b, o, block in zip(self.blocks, other.blocks, self.part.blocks, strict=True):
                if block.start <= unit < block.stop:
                    b[unit - block.start].copy_(o[unit - block.start])


class Layout:
    """How one group's tensors are split into parts; rebuilt when the tensors change."""

    def __init__(self, tensors: Sequence[torch.Tensor], small_numel: int = SMALL_NUMEL) -> None:
        self.pointers = pointers(tensors)
        kinds: dict[tuple[torch.device, torch.dtype, bool], list[int]] = {}
        for i, t in enumerate(tensors):
            kinds.setdefault((t.device, t.dtype, type(t) in _PLAIN_TYPES), []).append(i)
        self.parts = [_part(tensors, index, plain, small_numel) for (_d, _t, plain), index in kinds.items()]
        self._blocks = [block for part in self.parts for block in part.blocks]

    def fits(self, tensors: Sequence[torch.Tensor]) -> bool:
        """Whether the layout still describes ``tensors``.

        A tensor whose ``.data`` was replaced (``.to()``, ``.half()``, a new shape) has a
        new storage; the first member of each block is also checked for shape, dtype and
        device, which catches a block reshaped over its own storage.
        """
        return self.pointers == pointers(tensors) and all(b.fits(tensors[b.first]) for b in self._blocks)


def pointers(tensors: Sequence[torch.Tensor]) -> list[Any]:
    """Each tensor's storage address (its identity, shape, dtype and device if it has none)."""
    try:
        return list(map(torch.Tensor.data_ptr, tensors))
    except RuntimeError:  # tensor subclasses without storage
        return [(id(t), t.shape, t.dtype, t.device) for t in tensors]


def with_grads(params: Sequence[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """The params that have a gradient, and those gradients (each ``.grad`` read once)."""
    grads = [p.grad for p in params]
    if not all(map(operator.is_not, grads, repeat(None))):
        params = [p for p, g in zip(params, grads, strict=True) if g is not None]
        grads = [g for g in grads if g is not None]
    return list(params), cast(list[torch.Tensor], grads)


def _part(tensors: Sequence[torch.Tensor], index: list[int], plain: bool, small_numel: int) -> Part:
    shapes: dict[torch.Size, list[int]] = {}
    for i in index:
        if plain and tensors[i].numel() <= small_numel:
            shapes.setdefault(tensors[i].shape, []).append(i)
    stacked = {shape: members for shape, members in shapes.items() if len(members) > 1}
    order: list[int] = []
    blocks = []
    for members in stacked.values():
        blocks.append(Block(len(order), len(order) + len(members), tensors[members[0]], members[0]))
        order.extend(members)
    in_blocks = set(order)
    order.extend(i for i in index if i not in in_blocks)
    return Part(order, blocks, plain, [tensors[i] for i in order])


class LayoutCache:
    """One layout per param group (by index), rebuilt when that group's tensors change."""

    def __init__(self) -> None:
        self._layouts: dict[int, Layout] = {}

    def get(self, index: int, tensors: Sequence[torch.Tensor]) -> Layout:
        """The layout of group ``index`` for ``tensors`` (the params that have grads)."""
        layout = self._layouts.get(index)
        if layout is None or not layout.fits(tensors):
            layout = self._layouts[index] = Layout(tensors)
        return layout

    def clear(self) -> None:
        """Forget every layout and its buffers."""
        self._layouts.clear()
