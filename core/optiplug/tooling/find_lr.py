"""The learning-rate range test: train briefly while the lr grows, and read the bounds off the loss.

The method of Smith, "Cyclical Learning Rates for Training Neural Networks" (WACV 2017,
section 3.3): run a few hundred updates while the lr grows from a tiny to a large value,
and note where the loss starts to fall and where it stops falling; those two lrs are the
bounds of a cyclic policy. We follow the exponential variant of Smith's 2018 report ("A
disciplined approach to neural network hyper-parameters", arXiv:1803.09820) as fastai
implements it: the lr grows geometrically (``mode="exp"``; ``"linear"`` is the 2017
paper's), the loss is smoothed by a bias-corrected exponential moving average (weight
0.98), and the test stops once the smoothed loss exceeds 4x the best seen (divergence),
or turns non-finite.

The suggestions are read from a running median of the losses (5% of the sweep each
side): it has no lag, unlike the causal average that stops the test (which trails by
tens of updates and would put the suggestion past the divergence), and a spike does not
move it:

- ``max_lr``: the lr at the lowest loss, the largest lr at which the loss still falls
  (the 2017 paper's "when the accuracy slows, becomes ragged, or starts to fall");
- ``min_lr``: the lr at which the loss falls fastest (per unit of log lr in the
  exponential sweep; the paper's "when the accuracy starts to increase"), at most
  ``max_lr / 4`` (the paper's rule of thumb: ``base_lr`` 1/3 or 1/4 of ``max_lr``).

Every param group's lr moves by the same factor, so their ratios stay what the recipe
makes them (a head at 10x stays at 10x): the lrs reported are in the recipe's units,
the value of ``optimizer.lr`` / the lr schedule that a group with no multiplier gets.
Other options (momentum, weight decay) stay at their values at update 0. The model's
parameters and buffers, and the optimizer's state and options, are restored afterwards.

>>> result = find_lr(built, model, loader, nn.CrossEntropyLoss())
>>> result.max_lr, result.min_lr
>>> print(result.recipe("one_cycle"))
"""

from __future__ import annotations

import copy
import math
import statistics
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import attrs
import torch
from torch import nn

from optiplug.engine.build import build
from optiplug.engine.built_result import Built
from optiplug.errors import ConfigError

if TYPE_CHECKING:
    from matplotlib.figure import Figure

SMOOTHING = 0.98
MEDIAN_SPAN = 0.05  # of the sweep, each side
DIVERGE = 4.0
START_FALL = 0.1
MIN_RATIO = 4.0
RECIPES = ("triangular", "one_cycle", "warmup_cosine")


@attrs.frozen
class LRFinderResult:
    """What the range test measured, and the bounds it suggests (in the recipe's lr units)."""

    lrs: tuple[float, ...]
    losses: tuple[float, ...]
    smoothed: tuple[float, ...]
    median: tuple[float, ...]
    ratios: tuple[float, ...]
    diverged: bool
    min_lr: float
    max_lr: float
    mode: str

    def recipe(self, kind: str = "one_cycle", total_epochs: int = 30) -> str:
        """A canonical-recipe ``schedules`` snippet (YAML) with the suggested bounds: one of :data:`RECIPES`."""
        low, high = _g(self.min_lr), _g(self.max_lr)
        if kind == "triangular":
            body = (
                "  # CLR (Smith 2017): a cycle of 2-10 epochs between the bounds\n"
                f"  lr: {{name: triangular, cycle_epochs: {max(2, total_epochs // 4)}, "
                f"min_value: {low}, max_value: {high}}}\n"
            )
        elif kind == "one_cycle":
            body = (
                "  # one cycle (Smith 2018): up from max/25 over 30% of the run, then down to max/25/1e4\n"
                "  lr:\n    name: composite\n    schedulers:\n"
                f"      - {{name: linear, start_value: {_g(self.max_lr / 25)}, end_value: {high}}}\n"
                f"      - {{name: cosine, start_value: {high}, end_value: {_g(self.max_lr / 25 / 1e4)}}}\n"
                "    lengths: [0.3, 0.7]\n    interval_scaling: [rescaled, rescaled]\n"
            )
        elif kind == "warmup_cosine":
            body = (
                "  # a linear warmup from the lower bound over 5% of the run, then a cosine to 0\n"
                "  lr:\n    name: composite\n    schedulers:\n"
                f"      - {{name: linear, start_value: {low}, end_value: {high}}}\n"
                f"      - {{name: cosine, start_value: {high}, end_value: 0.0}}\n"
                "    lengths: [0.05, 0.95]\n    interval_scaling: [rescaled, rescaled]\n"
            )
        else:
            raise ConfigError(f"unknown recipe kind {kind!r}; known: {', '.join(RECIPES)}")
        return "schedules:\n" + body

    def summary(self) -> str:
        """One line: the sweep, where it stopped, the suggested bounds and the group ratios."""
        stop = "stopped at divergence" if self.diverged else "reached the end of the sweep"
        if not self.diverged and self.max_lr >= self.lrs[-1] / 2:
            stop += " with the loss still falling (raise end_lr for a bound)"
        ratios = ", ".join(_g(r) for r in self.ratios)
        return (
            f"{len(self.lrs)} updates, lr {_g(self.lrs[0])} -> {_g(self.lrs[-1])} ({self.mode}), {stop}; "
            f"suggested min_lr {_g(self.min_lr)}, max_lr {_g(self.max_lr)}; group lr ratios kept: {ratios}"
        )

    def figure(self, title: str = "LR range test") -> Figure:
        """Loss (raw and smoothed) against the lr on a log axis, the suggested bounds marked."""
        from matplotlib.figure import Figure

        figure = Figure(figsize=(8, 4.5), layout="constrained")
        ax = figure.subplots()
        ax.plot(self.lrs, self.losses, color="tab:gray", alpha=0.45, linewidth=0.9, label="loss per update")
        ax.plot(
            self.lrs,
            self.smoothed,
            color="tab:blue",
            linewidth=1.0,
            linestyle="--",
            label=f"EMA {SMOOTHING} (stop test)",
        )
        ax.plot(
            self.lrs[: len(self.median)], self.median, color="tab:blue", linewidth=2.0, label="running median (bounds)"
        )
        for value, name, colour in ((self.min_lr, "min_lr", "tab:green"), (self.max_lr, "max_lr", "tab:red")):
            ax.axvline(value, color=colour, linestyle="--", linewidth=1.4, label=f"suggested {name} {_g(value)}")
        if self.mode == "exp":
            ax.set_xscale("log")
        finite = [v for v in self.median if math.isfinite(v)]
        if finite:
            low, high = min(finite), max(finite[0], min(max(finite), DIVERGE * min(finite)))
            low = min(low, min(v for v in self.losses if math.isfinite(v)))
            ax.set_ylim(low - 0.05 * (high - low), high + 0.1 * (high - low))
        ax.set_xlabel("learning rate (recipe units: groups keep their ratios)")
        ax.set_ylabel("training loss")
        ax.grid(True, alpha=0.3, which="both")
        ax.legend(fontsize=8)
        ax.set_title(title, fontsize=11)
        return figure


def _g(value: float) -> str:
    return f"{value:.3g}"


LossFn = Callable[..., torch.Tensor]


def find_lr(
    built_or_config: Any,
    model: nn.Module,
    batches: Iterable[Any],
    loss_fn: LossFn,
    *,
    start_lr: float = 1e-7,
    end_lr: float = 10.0,
    num_steps: int = 100,
    mode: Literal["exp", "linear"] = "exp",
    smoothing: float = SMOOTHING,
    diverge: float = DIVERGE,
    **build_kwargs: Any,
) -> LRFinderResult:
    """Run the LR range test on ``model`` with the optimizer ``built_or_config`` makes.

    ``built_or_config`` is a :class:`Built` for ``model``, or any config ``optiplug.build``
    takes (then ``build_kwargs`` go to it). ``batches`` is iterated, again when exhausted,
    for ``num_steps`` updates: a batch ``(inputs, targets)`` gives the loss
    ``loss_fn(model(inputs), targets)``, any other batch ``loss_fn(model(batch))``. The lr
    (in the recipe's units) grows from ``start_lr`` to ``end_lr``, geometrically
    (``mode="exp"``) or linearly. The model and the optimizer are restored afterwards.
    """
    _check(start_lr, end_lr, num_steps, mode, smoothing, diverge)
    built = built_or_config if isinstance(built_or_config, Built) else build(built_or_config, model, **build_kwargs)
    optimizer = built.optimizer
    ratios = lr_ratios(built)
    saved_model = copy.deepcopy(model.state_dict())
    saved_optimizer = copy.deepcopy(optimizer.state_dict())
    saved_groups = [{k: v for k, v in g.items() if k != "params"} for g in optimizer.param_groups]
    saved_grads = [p.grad for g in optimizer.param_groups for p in g["params"]]
    was_training = model.training
    try:
        lrs, losses = _sweep(
            built, model, batches, loss_fn, ratios, _lr_values(start_lr, end_lr, num_steps, mode), smoothing, diverge
        )
    finally:
        model.load_state_dict(saved_model)
        optimizer.load_state_dict(saved_optimizer)
        for group, options in zip(optimizer.param_groups, saved_groups, strict=True):
            group.update(options)
        params = [p for g in optimizer.param_groups for p in g["params"]]
        for param, grad in zip(params, saved_grads, strict=True):
            param.grad = grad
        model.train(was_training)
    return analyse(lrs, losses, ratios, mode, smoothing, diverge)


def _check(start_lr: float, end_lr: float, num_steps: int, mode: str, smoothing: float, diverge: float) -> None:
    if not 0 < start_lr < end_lr:
        raise ConfigError(f"find_lr needs 0 < start_lr < end_lr, got start_lr={start_lr}, end_lr={end_lr}")
    if num_steps < 2:
        raise ConfigError(f"find_lr needs num_steps >= 2, got {num_steps}")
    if mode not in ("exp", "linear"):
        raise ConfigError(f"find_lr mode must be 'exp' or 'linear', got {mode!r}")
    if not 0 <= smoothing < 1:
        raise ConfigError(f"find_lr smoothing must be in [0, 1), got {smoothing}")
    if diverge <= 1:
        raise ConfigError(f"find_lr diverge must be > 1 (a multiple of the best loss), got {diverge}")


def lr_ratios(built: Built) -> tuple[float, ...]:
    """Each group's lr as a multiple of the recipe's lr: its ``lr_mult`` where a schedule drives the lr."""
    groups = built.optimizer.param_groups
    bound = {b.group: b.scale for b in built.scheduler.bindings if b.option == "lr" and not b.into_betas}
    base = built.recipe.optimizer.kwargs.get("lr")
    base = float(base) if isinstance(base, int | float) and base > 0 else float(groups[0]["lr"]) or 1.0
    return tuple(bound[i] if i in bound else float(g["lr"]) / base for i, g in enumerate(groups))


def _lr_values(start: float, end: float, steps: int, mode: str) -> list[float]:
    if mode == "exp":
        return [start * (end / start) ** (k / (steps - 1)) for k in range(steps)]
    return [start + (end - start) * k / (steps - 1) for k in range(steps)]


def _cycled(batches: Iterable[Any]) -> Iterator[Any]:
    while True:
        empty = True
        for batch in batches:
            empty = False
            yield batch
        if empty:
            raise ConfigError("find_lr got no batches")


def _loss(model: nn.Module, batch: Any, loss_fn: LossFn) -> torch.Tensor:
    if isinstance(batch, tuple | list) and len(batch) == 2:
        inputs, targets = batch
        return loss_fn(model(inputs), targets)
    return loss_fn(model(batch))


def _sweep(
    built: Built,
    model: nn.Module,
    batches: Iterable[Any],
    loss_fn: LossFn,
    ratios: tuple[float, ...],
    schedule: list[float],
    smoothing: float,
    diverge: float,
) -> tuple[list[float], list[float]]:
    optimizer = built.optimizer
    model.train()
    optimizer.zero_grad(set_to_none=True)
    lrs: list[float] = []
    losses: list[float] = []
    average, best = 0.0, math.inf
    for k, (lr, batch) in enumerate(zip(schedule, _cycled(batches), strict=False)):
        for group, ratio in zip(optimizer.param_groups, ratios, strict=True):
            group["lr"] = lr * ratio
        loss = _loss(model, batch, loss_fn)
        value = float(loss.detach())
        lrs.append(lr)
        losses.append(value)
        if not math.isfinite(value):
            break
        average = smoothing * average + (1 - smoothing) * value
        smoothed = average / (1 - smoothing ** (k + 1))
        if smoothed > diverge * best:
            break
        best = min(best, smoothed)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return lrs, losses


def smooth(losses: Iterable[float], smoothing: float = SMOOTHING) -> list[float]:
    """The bias-corrected exponential moving average of ``losses`` (fastai's; NaN once a loss is not finite)."""
    out, average = [], 0.0
    for k, value in enumerate(losses):
        if not math.isfinite(value):
            out.append(math.nan)
            average = math.nan
            continue
        average = smoothing * average + (1 - smoothing) * value
        out.append(average / (1 - smoothing ** (k + 1)))
    return out


def running_median(values: list[float], span: float = MEDIAN_SPAN) -> list[float]:
    """The median of each value's neighbourhood (``span`` of the points each side, at least 2): no lag, no spikes."""
    half = max(2, round(span * len(values)))
    return [statistics.median(values[max(0, i - half) : i + half + 1]) for i in range(len(values))]


def analyse(
    lrs: list[float],
    losses: list[float],
    ratios: tuple[float, ...],
    mode: str = "exp",
    smoothing: float = SMOOTHING,
    diverge: float = DIVERGE,
) -> LRFinderResult:
    """The suggestions (see the module docstring) from a sweep's lrs and losses."""
    smoothed = smooth(losses, smoothing)
    finite = [i for i, v in enumerate(smoothed) if math.isfinite(v)]
    if len(finite) < 2:
        raise ConfigError(f"the range test diverged at once (loss {losses[0]:.4g} at lr {lrs[0]:.3g}): lower start_lr")
    centred = running_median([losses[i] for i in finite])
    lowest = min(range(len(finite)), key=lambda i: centred[i])
    x = [math.log(lrs[i]) if mode == "exp" else lrs[i] for i in finite]
    slopes = [(centred[i + 1] - centred[i]) / (x[i + 1] - x[i]) for i in range(lowest)]
    steepest = min(range(len(slopes)), key=lambda i: slopes[i]) if slopes else 0
    max_lr = lrs[finite[lowest]]
    min_lr = min(lrs[finite[steepest]], max_lr / MIN_RATIO)
    best = min(smoothed[i] for i in finite)
    diverged = len(finite) < len(smoothed) or smoothed[finite[-1]] > diverge * best
    return LRFinderResult(
        tuple(lrs), tuple(losses), tuple(smoothed), tuple(centred), ratios, diverged, min_lr, max_lr, mode
    )


def save_figure(result: LRFinderResult, output: str | Path, title: str = "LR range test") -> Path:
    """Write :meth:`LRFinderResult.figure` to the PNG ``output``."""
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    result.figure(title).savefig(path, dpi=110, facecolor="white")
    return path
