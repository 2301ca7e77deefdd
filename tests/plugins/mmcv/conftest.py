"""An independent reference for the MMCV tests: MMCV 1.x's runner and updater hooks, simulated.

Written from MMCV 1.x's lr_updater.py and momentum_updater.py as MMCV's code runs them: scalar
Python floats, the hooks' state (regular values, warmup length) kept between calls,
``before_train_epoch`` / ``before_train_iter`` called in the runner's order. Nothing
here uses optiplug's schedule code.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import torch
from torch import nn

import optiplug

EXAMPLES = Path(__file__).resolve().parents[3] / "examples" / "mmcv"


def annealing_cos(start: float, end: float, factor: float, weight: float = 1.0) -> float:
    cos_out = math.cos(math.pi * factor) + 1
    return end + 0.5 * weight * (start - end) * cos_out


def annealing_linear(start: float, end: float, factor: float) -> float:
    return start + (end - start) * factor


ANNEAL = {"cos": annealing_cos, "linear": annealing_linear}


def progress(runner: SimpleNamespace, by_epoch: bool) -> tuple[int, int]:
    return (runner.epoch, runner.max_epochs) if by_epoch else (runner.iter, runner.max_iters)


def target(base: float, absolute: float | None, ratio: float | None) -> float:
    return base * ratio if ratio is not None else absolute  # type: ignore[return-value]


def step_policy(step: Any, gamma: float, floor: float | None) -> Callable[..., float]:
    def get(runner: SimpleNamespace, base: float, hook: SimpleNamespace) -> float:
        p = runner.epoch if hook.by_epoch else runner.iter
        if isinstance(step, int):
            k = p // step
        else:
            k = len(step)
            for i, s in enumerate(step):
                if p < s:
                    k = i
                    break
        value = base * (gamma**k)
        return max(value, floor) if floor is not None else value

    return get


def lr_policy(name: str, **o: Any) -> Callable[..., float]:
    """The get_lr of MMCV's ``<name>LrUpdaterHook``, as a function of (runner, base, hook)."""
    if name == "Step":
        return step_policy(o["step"], o.get("gamma", 0.1), o.get("min_lr"))

    def get(runner: SimpleNamespace, base: float, hook: SimpleNamespace) -> float:
        p, P = progress(runner, hook.by_epoch)
        if name == "Fixed":
            return base
        if name == "Exp":
            return base * o["gamma"] ** p
        if name == "Poly":
            min_lr = o.get("min_lr", 0.0)
            return (base - min_lr) * (1 - p / P) ** o.get("power", 1.0) + min_lr
        if name == "Inv":
            return base * (1 + o["gamma"] * p) ** (-o.get("power", 1.0))
        end = target(base, o.get("min_lr"), o.get("min_lr_ratio")) if name != "OneCycle" else None
        if name == "CosineAnnealing":
            return annealing_cos(base, end, p / P)
        if name == "LinearAnnealing":
            return annealing_linear(base, end, p / P)
        if name == "FlatCosineAnnealing":
            start = round(P * o.get("start_percent", 0.75))
            return base if p - start < 0 else annealing_cos(base, end, (p - start) / (P - start))
        if name == "StepFixCosineAnnealing":
            if hook.warmup is not None:
                shift = hook.W // runner.loader_len if hook.by_epoch else hook.W
                p, P = p - shift, P - shift
            return annealing_cos(base, end, p / P)
        if name == "CosineRestart":
            return cosine_restart(p, base, end, o["periods"], o.get("restart_weights", [1]))
        if name == "Cyclic":
            return cyclic(runner, base, o, (10, 1e-4))
        if name == "OneCycle":
            return one_cycle_lr(runner, o)
        raise AssertionError(name)

    return get


def cosine_restart(p: int, base: float, end: float, periods: list[int], weights: list[float]) -> float:
    cumulative = [sum(periods[: i + 1]) for i in range(len(periods))]
    index = next(i for i, c in enumerate(cumulative) if p < c)
    start = 0 if index == 0 else cumulative[index - 1]
    alpha = min((p - start) / periods[index], 1)
    return annealing_cos(base, end, alpha, weights[index])


def ratios(value: Any) -> tuple[float, float]:
    if isinstance(value, int | float):
        return value, value / 1e5
    return (value[0], value[0] / 1e5) if len(value) == 1 else (value[0], value[1])


def cyclic(runner: SimpleNamespace, base: float, o: dict[str, Any], default: tuple[float, float]) -> float:
    per = runner.max_iters // o.get("cyclic_times", 1)
    up = int(o.get("step_ratio_up", 0.4) * per)
    r0, r1 = ratios(o.get("target_ratio", default))
    gamma = o.get("gamma", 1)
    anneal = ANNEAL[o.get("anneal_strategy", "cos")]
    c, scale = runner.iter % per, gamma ** (runner.iter // per)
    for start, end, a, b in ((0, up, 1, r0), (up, per, r0, r1)):
        if start <= c < end:
            if start == 0:
                b = 1 - scale + b * scale
            else:
                a = 1 - scale + a * scale
            return anneal(base * a, base * b, (c - start) / (end - start))
    raise AssertionError(c)


def phases_value(
    i: int, phases: list[tuple[float, float, float]], anneal: Callable[..., float], last_for_all: bool
) -> float:
    start = 0.0
    for index, (end, a, b) in enumerate(phases):
        if i <= end or (last_for_all and index == len(phases) - 1):
            return anneal(a, b, (i - start) / (end - start))
        start = end
    raise AssertionError(i)


def one_cycle_lr(runner: SimpleNamespace, o: dict[str, Any]) -> float:
    total = o.get("total_steps") or runner.max_iters
    pct, div, final = o.get("pct_start", 0.3), o.get("div_factor", 25), o.get("final_div_factor", 1e4)
    base = o["max_lr"] / div
    if o.get("three_phase"):
        table = [(float(pct * total) - 1, 1, div), (float(2 * pct * total) - 2, div, 1), (total - 1, 1, 1 / final)]
    else:
        table = [(float(pct * total) - 1, 1, div), (total - 1, div, 1 / final)]
    phases = [(end, base * a, base * b) for end, a, b in table]
    return phases_value(runner.iter, phases, ANNEAL[o.get("anneal_strategy", "cos")], last_for_all=False)


def momentum_policy(name: str, **o: Any) -> Callable[..., float]:
    """The get_momentum of MMCV's ``<name>MomentumUpdaterHook``."""
    if name == "Step":
        return step_policy(o["step"], o.get("gamma", 0.5), o.get("min_momentum"))

    def get(runner: SimpleNamespace, base: float, hook: SimpleNamespace) -> float:
        p, P = progress(runner, hook.by_epoch)
        if name in ("CosineAnnealing", "LinearAnnealing"):
            end = target(base, o.get("min_momentum"), o.get("min_momentum_ratio"))
            return ANNEAL["cos" if name == "CosineAnnealing" else "linear"](base, end, p / P)
        if name == "Cyclic":
            return cyclic(runner, base, o, (0.85 / 0.95, 1))
        if name == "OneCycle":
            T, pct = runner.max_iters, o.get("pct_start", 0.3)
            low, high = o.get("base_momentum", 0.85), o.get("max_momentum", 0.95)
            if o.get("three_phase"):
                phases = [(float(pct * T) - 1, high, low), (float(2 * pct * T) - 2, low, high), (T - 1, high, high)]
            else:
                phases = [(float(pct * T) - 1, high, low), (T - 1, low, high)]
            return phases_value(runner.iter, phases, ANNEAL[o.get("anneal_strategy", "cos")], last_for_all=True)
        raise AssertionError(name)

    return get


def warm(hook: SimpleNamespace, regular: list[float], i: int) -> list[float]:
    """get_warmup_lr / get_warmup_momentum: the lr is multiplied by the warmup factor, the momentum divided."""
    ratio, W = hook.warmup_ratio, hook.W
    if hook.warmup == "constant":
        k = ratio
    elif hook.warmup == "linear":
        k = 1 - (1 - i / W) * (1 - ratio) if not hook.ratio_free else 1 - (1 - i / W)
    else:
        k = ratio ** (1 - i / W)
    return [r / k for r in regular] if hook.divide else [r * k for r in regular]


def simulate(
    get: Callable[..., float],
    bases: list[float],
    *,
    L: int,
    E: int | None = None,
    T: int | None = None,
    **hook_args: Any,
) -> list[list[float]]:
    """The value of every group before each iteration of an EpochBasedRunner (or IterBasedRunner with T)."""
    hook = SimpleNamespace(
        by_epoch=hook_args.get("by_epoch", True),
        warmup=hook_args.get("warmup"),
        warmup_ratio=hook_args.get("warmup_ratio", 0.9 if hook_args.get("divide") else 0.1),
        divide=hook_args.get("divide", False),
        ratio_free=hook_args.get("ratio_free", False),
        W=None if hook_args.get("warmup_by_epoch") else hook_args.get("warmup_iters", 0),
        warmup_epochs=hook_args.get("warmup_iters", 0),
        regular=None,
    )
    max_iters = T if T is not None else E * L
    max_epochs = E if E is not None else max_iters // L
    values = list(bases)
    trace = []
    for epoch in range(max_epochs):
        runner = SimpleNamespace(epoch=epoch, iter=epoch * L, max_epochs=max_epochs, max_iters=max_iters, loader_len=L)
        if hook.W is None:
            hook.W = hook.warmup_epochs * L
        if hook.by_epoch:
            hook.regular = [get(runner, b, hook) for b in bases]
            values = list(hook.regular)
        for j in range(L):
            i = epoch * L + j
            runner.iter = i
            if not hook.by_epoch:
                hook.regular = [get(runner, b, hook) for b in bases]
                values = hook.regular if hook.warmup is None or i >= hook.W else warm(hook, hook.regular, i)
            elif hook.warmup is not None and i <= hook.W:
                values = hook.regular if i == hook.W else warm(hook, hook.regular, i)
            trace.append(list(values))
    return trace


def record(
    built: optiplug.Built, model: nn.Module, iterations: int, option: str = "lr", *, train: bool = True
) -> list[list[float]]:
    """Each group's ``option`` before each of ``iterations`` calls of Built.step (beta1 for 'betas').

    ``train=False`` moves the schedule without stepping the optimizer (a warmed-up beta1
    above 1 is MMCV's arithmetic but breaks Adam's update).
    """
    x = torch.ones(1, model.in_features)
    trace = []
    for i in range(iterations):
        groups = built.optimizer.param_groups
        trace.append([g["betas"][0] if option == "betas" else g[option] for g in groups])
        if train:
            built.step(model(x).sum())
        else:
            built.scheduler.set_step(i + 1)
    return trace


@pytest.fixture
def mmcv() -> SimpleNamespace:
    """The reference implementation, as a namespace."""
    return SimpleNamespace(
        lr_policy=lr_policy,
        momentum_policy=momentum_policy,
        simulate=simulate,
        record=record,
        annealing_cos=annealing_cos,
        examples=EXAMPLES,
    )


@pytest.fixture
def linear_model() -> nn.Linear:
    """Two parameters (weight, bias) whose gradients stay constant: any lr keeps them finite."""
    torch.manual_seed(0)
    return nn.Linear(3, 1)
