"""The batched layout: which tensors are stacked, when it is rebuilt, and the per-tensor fallback."""

from __future__ import annotations

import pytest
import torch

from optiplug_larc.larc import LARC
from optiplug_larc.lars import LARS
from optiplug_larc.packing import SMALL_NUMEL, Layout, LayoutCache
from optiplug_larc.vissl_lars import VisslLARS


class Wrapped(torch.Tensor):
    """A tensor subclass: not a plain tensor, so it takes the per-tensor path."""


def test_equal_small_shapes_are_stacked_and_the_rest_are_singles():
    big = SMALL_NUMEL + 1
    tensors = [
        torch.ones(3, 4),
        torch.ones(big),
        torch.ones(3, 4),
        torch.ones(5),
        torch.ones(3, 4, dtype=torch.float64),
    ]
    parts = Layout(tensors).parts
    assert [(p.foreach, p.size) for p in parts] == [(True, 4), (True, 1)]
    float_part = parts[0]
    assert [(b.start, b.stop, tuple(b.shape)) for b in float_part.blocks] == [(0, 2, (3, 4))]
    assert float_part.order == [0, 2, 1, 3]  # block members first, then the singles
    assert float_part.pick(tensors)[:2] == [tensors[0], tensors[2]]


def test_tensor_subclasses_get_their_own_part_without_blocks():
    tensors = [torch.ones(3).as_subclass(Wrapped), torch.ones(3).as_subclass(Wrapped), torch.ones(3), torch.ones(3)]
    parts = Layout(tensors).parts
    assert [(p.foreach, len(p.blocks)) for p in parts] == [(False, 0), (True, 1)]


def test_the_layout_is_rebuilt_when_storage_or_block_shape_changes():
    tensors = [torch.ones(2, 3), torch.ones(2, 3), torch.ones(7)]
    cache = LayoutCache()
    first = cache.get(0, tensors)
    assert cache.get(0, tensors) is first
    tensors[2] = tensors[2].double()
    second = cache.get(0, tensors)
    assert second is not first
    tensors[0], tensors[1] = tensors[0].view(3, 2), tensors[1].view(3, 2)  # same storage, new shape
    assert cache.get(0, tensors) is not second


def reference_pair(make_optimizer, wrap):
    """The same two steps on plain and on wrapped (subclass) parameters."""
    results = []
    for convert in (lambda t: t, wrap):
        torch.manual_seed(0)
        params = [torch.nn.Parameter(convert(torch.randn(s))) for s in [(4, 3), (4, 3), (5,), ()]]
        optimizer = make_optimizer(params)
        for step in range(2):
            generator = torch.Generator().manual_seed(step)
            for p in params:
                p.grad = convert(torch.randn(p.shape, generator=generator))
            optimizer.step()
        results.append([p.detach().as_subclass(torch.Tensor) for p in params])
    return results


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda ps: LARC(torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01), clip=True),
        lambda ps: LARS(ps, lr=0.1, momentum=0.9, weight_decay=0.01, eta=0.02),
        lambda ps: VisslLARS(ps, lr=0.1, weight_decay=0.01, exclude_bias_and_norm=True),
    ],
)
def test_per_tensor_fallback_gives_the_batched_numbers(make_optimizer):
    plain, wrapped = reference_pair(make_optimizer, lambda t: t.as_subclass(Wrapped))
    for a, b in zip(plain, wrapped, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_larc_follows_a_dtype_change_of_the_parameters():
    params = [torch.nn.Parameter(torch.ones(3)) for _ in range(2)]
    larc = LARC(torch.optim.SGD(params, lr=0.1), clip=False)
    for p in params:
        p.grad = torch.full((3,), 2.0)
    larc.step()
    for p in params:
        p.data = p.data.double()
        p.grad = torch.full((3,), 2.0, dtype=torch.float64)
    larc.step()
    first = torch.tensor(1 - 0.1 * 2 * 0.02 * 3**0.5 / (2 * 3**0.5 + 1e-8), dtype=torch.float32).item()
    rate = 0.02 * first * 3**0.5 / (2 * 3**0.5 + 1e-8)  # computed on the float64 tensors now
    for p in params:
        assert p.dtype == torch.float64
        torch.testing.assert_close(p.detach(), torch.full((3,), first - 0.1 * rate * 2, dtype=torch.float64))


@pytest.mark.parametrize(
    "make_optimizer",
    [
        lambda ps: LARC(torch.optim.SGD(ps, lr=0.1, momentum=0.9, weight_decay=0.01)),
        lambda ps: LARS(ps, lr=0.1, momentum=0.9, weight_decay=0.01),
        lambda ps: VisslLARS(ps, lr=0.1, weight_decay=0.01),
    ],
)
def test_empty_tensors_are_harmless(make_optimizer):
    params = [torch.nn.Parameter(torch.ones(s)) for s in [(0,), (0,), (0, 3), (2,), (2,)]]
    optimizer = make_optimizer(params)
    for _ in range(2):
        for p in params:
            p.grad = torch.ones_like(p)
        optimizer.step()
    assert all(torch.isfinite(p).all() for p in params)
    assert (params[3] < 1).all()
