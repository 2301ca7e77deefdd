"""LARS and LARC steps through torch's fused SGD kernel on the CPU: norms + one fused SGD pass per tensor.

Both methods are SGD on the gradient ``d = scale · (g + weight_decay · p)`` with a
per-tensor ``scale`` (LARS: ``lr · local`` with an SGD lr of 1; LARC: the trust ratio
``a`` where it adapts, else 1 and no decay). torch's fused SGD kernel
(``torch._fused_sgd_``) reads each array once and computes, per call,
``buf = momentum · buf + (1 - dampening) · (g + weight_decay · p)``, ``p -= lr · buf``.
Called per tensor with ``dampening' = 1 - scale · (1 - dampening)`` (``1 - scale``
for a buffer just made, which takes the whole undamped ``d``, as torch SGD's and
MMSelfSup's first step), or with ``lr' = lr · scale`` without momentum, it makes the
whole update one pass: no rescaled copy of the gradient, and ``p.grad`` is left as it
was. The per-tensor values come to the host (free on a CPU), and each large tensor's
two norms are taken right before its own update, while it is still in cache.

Small tensors stacked into blocks (see :mod:`optiplug_larc.packing`) get their norms
from the stacked copies and ``d`` in the stacked gradient buffer (two kernels for a
block); then one fused call updates all of them in place, with the buffer's rows as
their gradients (so the parameters and momentum buffers are never stacked or copied
back). Only contiguous float32 CPU tensors without nesterov take this path; everything
else (GPU, where the per-tensor host values would be host syncs, float64, tensor
subclasses, nesterov, a torch without a CPU ``_fused_sgd_``) keeps the multi-tensor path.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from optiplug_larc.packing import Part, Tensors

BlockCoefficients = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor | None]]
"""Per-row (scale, decay) vectors of the stacked rows from their param and grad norms (decay None: 0)."""

SingleCoefficients = Callable[[float, float], tuple[float, float]]
"""(scale, weight decay) of one tensor, ``d = scale · (g + weight_decay · p)``, from its norms as Python floats."""

_working: bool | None = None


def available() -> bool:
    """Whether this torch has a CPU ``_fused_sgd_`` that takes ``grad_scale`` (checked once, on tiny tensors)."""
    global _working
    if _working is None:
        _working = _probe()
    return _working


def _probe() -> bool:
    fused = getattr(torch, "_fused_sgd_", None)
    if fused is None:
        return False
    p, g, b = torch.ones(4), torch.full((4,), 2.0), torch.ones(4)
    try:
        fused([p], [g], [b], weight_decay=1.0, momentum=0.5, lr=1.0, dampening=0.5, nesterov=False,
              maximize=False, is_first_step=False)  # fmt: skip
    except (RuntimeError, TypeError, NotImplementedError):
        return False
    # d = 0.5 (2 + 1) = 1.5, buf = 0.5 + 1.5 = 2, p = 1 - 2 = -1, g untouched
    expected = (torch.full((4,), 2.0), torch.full((4,), -1.0), torch.full((4,), 2.0))
    return all(torch.equal(a, e) for a, e in zip((b, p, g), expected, strict=True))


def usable(part: Part, members: Tensors, grads: Tensors, nesterov: bool) -> bool:
    """Whether a part's tensors can take the fused path: plain, contiguous float32 CPU tensors, no nesterov.

    Stacked gradients need not be contiguous (their stacked copy is); the parameters
    and the other gradients are handed to the kernel as they are. Checked at every
    step: ``p.data = p.data.t()`` keeps the storage, and so the layout.
    """
    if nesterov or not part.foreach or part.device.type != "cpu" or members[0].dtype != torch.float32:
        return False
    singles = grads[part.rows_in_blocks :]
    return (
        all(map(torch.Tensor.is_contiguous, members))
        and all(map(torch.Tensor.is_contiguous, singles))
        and all(g.dtype == torch.float32 for g in singles)
        and available()
    )


def step(
    part: Part,
    members: Tensors,
    grads: Tensors,
    buffers: Tensors | None,
    fresh: Sequence[int],
    *,
    block_coefficients: BlockCoefficients,
    single_coefficients: SingleCoefficients,
    norms: bool,
    lr: float,
    momentum: float,
    dampening: float,
) -> None:
    """One SGD update of ``members`` on ``d`` (see the module), in place.

    Blocks take ``d = scale · g + decay · p`` from ``block_coefficients``, singles
    ``d = scale · (g + weight_decay · p)`` from ``single_coefficients``. ``buffers`` are
    the momentum buffers (None without momentum, else contiguous); ``fresh`` lists the
    units whose buffer was just made: they take ``buf = d``, as torch SGD's first step.
    With ``norms`` False every unit has the same coefficients (given zero norms), and
    no norm is taken.
    """
    fresh_units = set(fresh)
    if not norms:  # the stacked members' own gradients go to the kernel too
        scale, weight_decay = single_coefficients(0.0, 0.0)
        grads = [g if g.is_contiguous() and g.dtype == torch.float32 else g.float().contiguous() for g in grads]
        _update(members, grads, buffers, fresh_units, range(part.size), scale, weight_decay, lr, momentum, dampening)
        return
    if part.blocks:
        rows = _blocks(part, members, grads, block_coefficients)
        _update(members, rows, buffers, fresh_units, range(part.rows_in_blocks), 1.0, 0.0, lr, momentum, dampening)
    for unit in range(part.rows_in_blocks, part.size):
        param_norm, grad_norm = torch._foreach_norm([members[unit], grads[unit]])
        scale, weight_decay = single_coefficients(float(param_norm), float(grad_norm))
        _update(
            members, grads, buffers, fresh_units, range(unit, unit + 1), scale, weight_decay, lr, momentum, dampening
        )


def _update(
    members: Tensors,
    grads: Tensors,
    buffers: Tensors | None,
    fresh: set[int],
    units: range,
    scale: float,
    weight_decay: float,
    lr: float,
    momentum: float,
    dampening: float,
) -> None:
    """The fused SGD step of ``units`` on ``d = scale · (grads + weight_decay · p)`` (``grads`` in unit order)."""
    if buffers is None:
        torch._fused_sgd_(
            members[units.start : units.stop], grads[units.start : units.stop], [],
            weight_decay=weight_decay, momentum=0.0, lr=lr * scale, dampening=0.0, nesterov=False,
            maximize=False, is_first_step=False,
        )  # fmt: skip
        return
    split = [units] if not fresh else [[u for u in units if u not in fresh], [u for u in units if u in fresh]]
    for picked, kept in zip(split, (dampening, 0.0), strict=False):
        if not picked:
            continue
        if isinstance(picked, range):
            params, gradients, momenta = (t[picked.start : picked.stop] for t in (members, grads, buffers))
        else:
            params, gradients, momenta = ([t[u] for u in picked] for t in (members, grads, buffers))
        torch._fused_sgd_(
            params, gradients, momenta, weight_decay=weight_decay, momentum=momentum, lr=lr,
            dampening=1.0 - scale * (1.0 - kept), nesterov=False, maximize=False, is_first_step=False,
        )  # fmt: skip


def _blocks(part: Part, members: Tensors, grads: Tensors, coefficients: BlockCoefficients) -> Tensors:
    """``d`` of every stacked unit in the stacked gradient buffers; returns their rows (in unit order)."""
    params = part.pack(members, "param")
    gradients = part.pack(grads, "grad")
    scale, decay = coefficients(_row_norms(params.blocks, part), _row_norms(gradients.blocks, part))
    for index, block in enumerate(part.blocks):
        stacked = gradients.blocks[index].mul_(block.factors(scale))
        if decay is not None:
            stacked.addcmul_(params.blocks[index], block.factors(decay))
    return part.memo(("rows", "grad"), lambda: [row for b in part.blocks for row in b.rows("grad")])  # type: ignore[no-any-return]


def _row_norms(stacked: list[torch.Tensor], part: Part) -> torch.Tensor:
    pieces = [
        torch.linalg.vector_norm(b.view(b.shape[0], block.row_numel), dim=1)
        for b, block in zip(stacked, part.blocks, strict=True)
    ]
    return pieces[0] if len(pieces) == 1 else torch.cat(pieces)
