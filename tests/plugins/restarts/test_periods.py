"""Closed-form period lookup against the periods listed one by one."""

from __future__ import annotations

import math

import pytest
import torch

from optiplug_restarts.periods import CeilPeriods, ConstantPeriods, GeometricPeriods


def listed(lengths, x):
    """Index, start and length of the period containing x, walking the list."""
    start = 0.0
    for i, length in enumerate(lengths):
        if x < start + length:
            return i, start, length
        start += length
    raise AssertionError("list too short")


def adamwr_lengths(period, t_mult, n=500):
    lengths = [math.ceil(period)]
    while len(lengths) < n:
        lengths.append(math.ceil(lengths[-1] * t_mult))
    return lengths


def exact_lengths(period, t_mult, n=200):
    return [period * t_mult**i for i in range(n)]


def check(periods, lengths, xs):
    index, start, length = periods.locate(torch.tensor(xs, dtype=torch.float64))
    for x, i, s, t in zip(xs, index.tolist(), start.tolist(), length.tolist(), strict=True):
        want = listed(lengths, x)
        assert int(i) == want[0], x
        assert s == pytest.approx(want[1], rel=1e-12, abs=1e-12)
        assert t == pytest.approx(want[2], rel=1e-12)


@pytest.mark.parametrize(("period", "t_mult"), [(5, 1.2), (1, 2), (2.5, 1.5), (7, 0.8), (3, 0.5), (4, 1.0), (1, 1.01)])
def test_ceil_periods_are_adamwr_lengths(period, t_mult):
    lengths = adamwr_lengths(period, t_mult)
    xs = [k / 7 for k in range(0, 7 * 400)]
    check(CeilPeriods(period, t_mult), lengths, xs)


def test_ceil_periods_from_the_spec():
    # 5, 1.2 -> 5, 6, 8, 10, 12: the first period starts at 0, the fifth at 29
    index, start, length = CeilPeriods(5, 1.2).locate(
        torch.tensor([0.0, 4.99, 5.0, 11.0, 19.0, 29.0], dtype=torch.float64)
    )
    assert index.tolist() == [0, 0, 1, 2, 3, 4]
    assert start.tolist() == [0, 0, 5, 11, 19, 29]
    assert length.tolist() == [5, 5, 6, 8, 10, 12]


@pytest.mark.parametrize(("period", "t_mult"), [(5, 1.2), (0.3, 2.0), (1.7, 1.37), (10, 0.9)])
def test_geometric_periods_are_exact(period, t_mult):
    lengths = exact_lengths(period, t_mult)
    periods = GeometricPeriods(period, t_mult)
    end = min(200.0, periods.limit() * 0.999)
    xs = [end * k / 997 for k in range(997)]
    check(periods, lengths, xs)


def test_geometric_boundaries_land_in_the_new_period():
    periods = GeometricPeriods(0.3, 1.7)
    starts = [sum(0.3 * 1.7**j for j in range(i)) for i in range(1, 15)]
    index, _, _ = periods.locate(torch.tensor(starts, dtype=torch.float64) + 1e-12)
    assert index.tolist() == list(range(1, 15))


def test_constant_periods():
    check(ConstantPeriods(2.5), [2.5] * 100, [k * 0.25 for k in range(800)])


def test_ceil_table_stays_small_for_a_long_run():
    periods = CeilPeriods(5, 1.2)
    periods.locate(torch.tensor([1e6], dtype=torch.float64))
    assert len(periods.starts) < 60
    settled = CeilPeriods(7, 0.8)
    settled.locate(torch.tensor([1e9], dtype=torch.float64))
    assert settled.settled and len(settled.starts) < 10
