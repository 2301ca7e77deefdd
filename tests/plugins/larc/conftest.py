"""Parameters and gradients shared by the LARC and LARS tests.

The shapes mix stacked blocks (equal small shapes), foreach singles (a big tensor, odd
shapes), 0-d tensors, a zero-initialised bias, a parameter without a gradient at the
first step and a zero gradient at the second.
"""

from __future__ import annotations

import pytest
import torch

SHAPES = [(8, 4), (8, 4), (8, 4), (16,), (16,), (), (), (70, 80), (3, 5, 7), (16,)]


class ParamCase:
    """Makes identical parameter sets and feeds them identical gradients."""

    zero_init = 3
    late_grad = 4

    def make(self, dtype: torch.dtype = torch.float64) -> list[torch.nn.Parameter]:
        torch.manual_seed(0)
        params = [torch.nn.Parameter(torch.randn(shape, dtype=dtype)) for shape in SHAPES]
        with torch.no_grad():
            params[self.zero_init].zero_()
        return params

    def set_grads(self, params: list[torch.nn.Parameter], step: int) -> None:
        generator = torch.Generator().manual_seed(100 + step)
        for i, p in enumerate(params):
            grad = torch.randn(p.shape, generator=generator, dtype=p.dtype) * (0.1 + i)
            if i == 1 and step == 1:
                grad.zero_()
            p.grad = None if i == self.late_grad and step == 0 else grad

    @staticmethod
    def assert_equal(ours: list[torch.Tensor], ref: list[torch.Tensor], dtype: torch.dtype) -> None:
        tolerance = {"rtol": 1e-12, "atol": 1e-14} if dtype == torch.float64 else {"rtol": 2e-6, "atol": 1e-7}
        for a, b in zip(ours, ref, strict=True):
            torch.testing.assert_close(a, b, **tolerance)


@pytest.fixture
def case() -> ParamCase:
    return ParamCase()
