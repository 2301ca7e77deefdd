"""MMEngine's parameter schedulers, chained as its runner steps them, as one optiplug schedule.

``param_scheduler=[...]`` is a list of schedulers that all write the same option of the
same param groups, each from the value the previous one left (MMEngine's "chainable
form"): several active at once multiply (and shift, for the ``eta_min`` ones). The
schedule ``mmengine`` replays that chain for one param group as MMEngine's code runs it,
with scalar Python floats and MMEngine's own formulas and operation order
(``mmengine/optim/scheduler/param_scheduler.py``):

* every scheduler is constructed in list order, and its constructor steps it once (step 0);
* after each iteration ``i`` the iteration-based schedulers step (``by_epoch=False``), then,
  at the end of an epoch, the epoch-based ones, each in list order;
* a scheduler changes the value only while ``begin <= its step count < end``; its own
  ``last_step`` counts from ``begin``.

The value of an iteration is therefore a pure function of the iteration index; it is
computed once for the whole run (only where some scheduler is active) and looked up.
``ReduceOnPlateau`` is the exception: it steps on the validation metrics
(``ParamSchedulerHook.after_val_epoch``, after the epoch's other schedulers), and
multiplies the value the chain holds then by ``factor``. Its decisions are taken when
the user reports a metric (``built.report(metrics)``), recorded with their iteration,
and the chain is replayed with each reduction at its iteration (:class:`PlateauChain`).
The schedule is relative: each group starts from its own value (MMEngine's
``initial_lr``), ``context.base``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import attrs
import torch

from optiplug.plugin import ConfigError, ScheduleContext, ScheduleSpec, StateError, help_field, is_number
from optiplug_torch.plateau import PlateauDecisions, reduced

PLATEAU = "ReduceOnPlateau"

INF = 1_000_000_000
"""MMEngine's ``INF`` (the default ``end``)."""

COMMON = {"begin": 0, "end": None, "by_epoch": True, "convert_to_iter_based": False, "verbose": False}
OPTIONS: dict[str, dict[str, Any]] = {
    "Constant": {"factor": 1.0 / 3},
    "CosineAnnealing": {"T_max": None, "eta_min": None, "eta_min_ratio": None},
    "CosineRestart": {"periods": ..., "restart_weights": (1,), "eta_min": None, "eta_min_ratio": None},
    "Exponential": {"gamma": ...},
    "Linear": {"start_factor": 1.0 / 3, "end_factor": 1.0},
    "MultiStep": {"milestones": ..., "gamma": 0.1},
    "OneCycle": {
        "eta_max": 0.0,
        "total_steps": None,
        "pct_start": 0.3,
        "anneal_strategy": "cos",
        "div_factor": 25.0,
        "final_div_factor": 1e4,
        "three_phase": False,
    },
    "Poly": {"eta_min": 0.0, "power": 1.0},
    "Step": {"step_size": ..., "gamma": 0.1},
    "CosineAnnealingWeightDecay": {"T_max": None, "eta_min": None, "eta_min_ratio": None},
    "QuadraticWarmup": {},
    "ReduceOnPlateau": {
        "monitor": "loss",
        "rule": "less",
        "factor": 0.1,
        "patience": 10,
        "threshold": 1e-4,
        "threshold_rule": "rel",
        "cooldown": 0,
        "min_value": 0.0,
        "eps": 1e-8,
    },
}
"""Each scheduler kind's own arguments and MMEngine's defaults (``...``: required)."""
EPOCH_LISTS = {"MultiStep": "milestones", "CosineRestart": "periods"}
"""List arguments counted in epochs, multiplied by the epoch length by ``convert_to_iter_based``."""
EPOCH_COUNTS = {"CosineAnnealing": "T_max", "CosineAnnealingWeightDecay": "T_max", "OneCycle": "total_steps"}


@attrs.frozen
class Scheduler:
    """One MMEngine scheduler, checked: its kind, where it is active, and its own arguments."""

    kind: str
    begin: int
    end: int | None
    by_epoch: bool
    convert_to_iter_based: bool
    options: Mapping[str, Any]

    def in_iterations(self, epoch_length: int, total: int) -> Scheduler:
        """The missing ``end`` set to the run's (as MMEngine's runner does), then ``convert_to_iter_based``.

        MMEngine's ``build_iter_from_epoch`` multiplies begin, end and the epoch counts by
        the epoch length ``L``; ``total`` is the run's length in iterations.
        """
        if self.end is None:
            end = -(-total // epoch_length) if self.by_epoch else total
            return attrs.evolve(self, end=max(end, self.begin + 1)).in_iterations(epoch_length, total)
        if not self.convert_to_iter_based:
            return self
        options = dict(self.options)
        if self.kind in EPOCH_LISTS:
            key = EPOCH_LISTS[self.kind]
            options[key] = [value * epoch_length for value in options[key]]
        if self.kind in EPOCH_COUNTS and options[EPOCH_COUNTS[self.kind]] is not None:
            key = EPOCH_COUNTS[self.kind]
            options[key] = options[key] * epoch_length
        end = self.end if self.end == INF else int(self.end * epoch_length)
        return Scheduler(self.kind, int(self.begin * epoch_length), end, False, False, options)


def parse_scheduler(value: Any, path: str) -> Scheduler:
    """A scheduler mapping (``kind`` / ``type`` plus its arguments) checked as MMEngine's constructor checks it."""
    if isinstance(value, Scheduler):
        return value
    if not isinstance(value, Mapping):
        raise ConfigError(f"expected a dict such as dict(kind='CosineAnnealing', eta_min=0), got {value!r}", path)
    kind = value.get("kind")
    if kind not in OPTIONS:
        raise ConfigError(f"unknown scheduler kind {kind!r}; known: {', '.join(OPTIONS)}", f"{path}.kind")
    own = OPTIONS[kind]
    for key in value:
        if key != "kind" and key not in own and key not in COMMON:
            accepted = ", ".join([*own, *COMMON])
            raise ConfigError(f"{kind} takes no argument {key!r}; accepted: {accepted}", f"{path}.{key}")
    options = {key: value.get(key, default) for key, default in own.items()}
    for key, default in own.items():
        if default is ... and key not in value:
            raise ConfigError(f"{kind} needs {key}", path)
    common = {key: value.get(key, default) for key, default in COMMON.items()}
    begin = _whole(common["begin"], f"{path}.begin", minimum=0)
    end = None if common["end"] is None else _whole(common["end"], f"{path}.end", minimum=0)
    if end is not None and end <= begin:
        raise ConfigError(f"end should be larger than begin, got begin={begin}, end={end}", f"{path}.end")
    by_epoch, convert = common["by_epoch"], common["convert_to_iter_based"]
    for key, flag in (("by_epoch", by_epoch), ("convert_to_iter_based", convert)):
        if not isinstance(flag, bool):
            raise ConfigError(f"expected True or False, got {flag!r}", f"{path}.{key}")
    if kind == PLATEAU and (not by_epoch or convert):
        raise ConfigError(
            "MMEngine's ReduceOnPlateau schedulers only step by epoch (by_epoch=True, not converted to iterations; "
            "MMEngine asserts it): they step on the validation metrics",
            f"{path}.by_epoch" if not by_epoch else f"{path}.convert_to_iter_based",
        )
    if convert and not by_epoch:
        raise ConfigError(
            "only an epoch-based scheduler (by_epoch=True) can be converted to iterations (MMEngine asserts it)",
            f"{path}.convert_to_iter_based",
        )
    _check_options(kind, options, path)
    return Scheduler(kind, begin, end, by_epoch, convert, options)


def _whole(value: Any, path: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value) or value < minimum:
        raise ConfigError(f"expected a whole number >= {minimum}, got {value!r}", path)
    return int(value)


def _number(value: Any, path: str, low: float | None = None, high: float | None = None) -> float:
    if not is_number(value) or isinstance(value, str):
        raise ConfigError(f"expected a number, got {value!r}", path)
    number = float(value)
    if (low is not None and number < low) or (high is not None and number > high):
        raise ConfigError(f"must be in [{low}, {high}], got {value!r}", path)
    return number


def _check_options(kind: str, o: dict[str, Any], path: str) -> None:
    def at(key: str) -> str:
        return f"{path}.{key}"

    if kind == "Constant":
        _number(o["factor"], at("factor"), 0.0, 1.0)
    if kind == PLATEAU:
        _check_plateau(o, at)
    elif kind in ("Linear",):
        _number(o["start_factor"], at("start_factor"), 0.0, 1.0)
        _number(o["end_factor"], at("end_factor"), 0.0, 1.0)
        if o["start_factor"] == 0:
            raise ConfigError("a start_factor of 0 makes MMEngine divide by zero at the next step", at("start_factor"))
    elif kind in ("Exponential", "MultiStep", "Step"):
        _number(o["gamma"], at("gamma"), 0.0)
    elif kind == "Poly":
        _number(o["power"], at("power"), 0.0)
        _number(o["eta_min"], at("eta_min"), 0.0)
    if kind in ("CosineAnnealing", "CosineAnnealingWeightDecay"):
        if o["eta_min"] is None and o["eta_min_ratio"] is None:
            o["eta_min"] = 0.0
        if o["T_max"] is not None:
            o["T_max"] = _whole(o["T_max"], at("T_max"), 1)
    if kind in ("CosineAnnealing", "CosineRestart", "CosineAnnealingWeightDecay"):
        if (o["eta_min"] is None) == (o["eta_min_ratio"] is None):
            raise ConfigError("give exactly one of eta_min and eta_min_ratio", path)
        for key in ("eta_min", "eta_min_ratio"):
            if o[key] is not None:
                _number(o[key], at(key), 0.0)
    if kind == "Step":
        o["step_size"] = _whole(o["step_size"], at("step_size"), 1)
    if kind == "MultiStep":
        if not isinstance(o["milestones"], list | tuple):
            raise ConfigError(f"expected a list of steps, got {o['milestones']!r}", at("milestones"))
        o["milestones"] = [_whole(m, f"{at('milestones')}[{i}]", 0) for i, m in enumerate(o["milestones"])]
    if kind == "CosineRestart":
        periods, weights = o["periods"], o["restart_weights"]
        if not isinstance(periods, list | tuple) or not periods:
            raise ConfigError(f"expected a non-empty list of periods, got {periods!r}", at("periods"))
        o["periods"] = [_whole(p, f"{at('periods')}[{i}]", 1) for i, p in enumerate(periods)]
        if not isinstance(weights, list | tuple) or len(weights) != len(periods):
            raise ConfigError(
                f"periods and restart_weights should have the same length, got {len(periods)} periods and "
                f"restart_weights={weights!r}",
                at("restart_weights"),
            )
        o["restart_weights"] = [_number(w, f"{at('restart_weights')}[{i}]", 0.0) for i, w in enumerate(weights)]
    if kind == "OneCycle":
        if o["total_steps"] is not None:
            o["total_steps"] = _whole(o["total_steps"], at("total_steps"), 1)
        if not isinstance(o["pct_start"], float) or not 0 <= o["pct_start"] <= 1:
            raise ConfigError(f"expected a float between 0 and 1, got {o['pct_start']!r}", at("pct_start"))
        if o["anneal_strategy"] not in ("cos", "linear"):
            raise ConfigError(f"must be 'cos' or 'linear', got {o['anneal_strategy']!r}", at("anneal_strategy"))
        _number(o["eta_max"], at("eta_max"), 0.0)
        if o["eta_max"] == 0:
            raise ConfigError("OneCycle needs eta_max, the peak lr (MMEngine's default 0 gives lr 0)", at("eta_max"))
        _number(o["div_factor"], at("div_factor"), 0.0)
        _number(o["final_div_factor"], at("final_div_factor"), 0.0)


def _check_plateau(o: dict[str, Any], at: Callable[[str], str]) -> None:
    """ReduceOnPlateau's arguments, checked as MMEngine's constructor checks them."""
    if not isinstance(o["monitor"], str):
        raise ConfigError(f"expected the name of a metric, got {o['monitor']!r}", at("monitor"))
    if o["rule"] not in ("less", "greater"):
        raise ConfigError(f"must be 'less' or 'greater', got {o['rule']!r} (MMEngine: unknown mode)", at("rule"))
    if o["threshold_rule"] not in ("rel", "abs"):
        raise ConfigError(f"must be 'rel' or 'abs', got {o['threshold_rule']!r}", at("threshold_rule"))
    factor = _number(o["factor"], at("factor"), 0.0)
    if factor >= 1.0:
        raise ConfigError(f"factor should be < 1.0 (MMEngine raises), got {o['factor']!r}", at("factor"))
    o["patience"] = _whole(o["patience"], at("patience"), 0)
    o["cooldown"] = _whole(o["cooldown"], at("cooldown"), 0)
    _number(o["threshold"], at("threshold"))
    _number(o["eps"], at("eps"), 0.0)
    if isinstance(o["min_value"], list | tuple):
        raise ConfigError(
            "a min_value per MMEngine param group cannot be kept: optiplug's param groups are not MMEngine's "
            "(parameters with equal options share one); give one number",
            at("min_value"),
        )
    _number(o["min_value"], at("min_value"), 0.0)


def _cos_ratio(step: int, period: float) -> float:
    return (1 + math.cos(math.pi * step / period)) / (1 + math.cos(math.pi * (step - 1) / period))


class _Running:
    """One scheduler's state while the chain is replayed (MMEngine's attributes)."""

    def __init__(self, scheduler: Scheduler, group: dict[str, float]) -> None:
        self.s = scheduler
        self.o = scheduler.options
        if scheduler.end is None:
            raise ConfigError("the scheduler's end is not set (the run's length is unknown)", "end")
        self.end: int = scheduler.end
        self.last_step = -1
        if scheduler.kind == "OneCycle":
            o = self.o
            self.total_steps = o["total_steps"] or (self.end - scheduler.begin)
            pct, total = o["pct_start"], self.total_steps
            if o["three_phase"]:
                self.phases = [
                    (float(pct * total) - 1, "initial", "max"),
                    (float(2 * pct * total) - 2, "max", "initial"),
                    (total - 1, "initial", "min"),
                ]
            else:
                self.phases = [(float(pct * total) - 1, "initial", "max"), (total - 1, "max", "min")]
            group["initial"] = o["eta_max"] / o["div_factor"]
            group["max"] = o["eta_max"]
            group["min"] = group["initial"] / o["final_div_factor"]
        self.base = group["initial"]
        if scheduler.kind in ("Constant", "Linear", "Poly"):
            self.total_iters = self.end - scheduler.begin - 1
        if scheduler.kind == "QuadraticWarmup":
            self.total_iters = self.end - scheduler.begin
        if scheduler.kind in ("CosineAnnealing", "CosineAnnealingWeightDecay"):
            self.T_max = self.o["T_max"] or (self.end - scheduler.begin)
        if scheduler.kind == "CosineRestart":
            periods = self.o["periods"]
            self.cumulative = [sum(periods[0 : i + 1]) for i in range(len(periods))]

    def eta_min(self) -> float:
        ratio = self.o["eta_min_ratio"]
        return self.o["eta_min"] if ratio is None else self.base * ratio

    def value(self, v: float, group: dict[str, float], path: str) -> float:
        kind, o, t = self.s.kind, self.o, self.last_step
        if kind == "Constant":
            if t == 0:
                return v * o["factor"]
            return v * (1.0 / o["factor"]) if t == self.total_iters else v
        if kind == "Linear":
            if t == 0:
                return v * o["start_factor"]
            delta = o["end_factor"] - o["start_factor"]
            return v * (1.0 + delta / (self.total_iters * o["start_factor"] + (t - 1) * delta))
        if kind == "Exponential":
            return v if t == 0 else v * o["gamma"]
        if kind == "QuadraticWarmup":  # mmdet's (YOLOX): the sum of (2k + 1) / T**2 reaches 1 at T
            step = self.base * (2 * t + 1) / self.total_iters**2
            return step if t == 0 else v + step
        if kind == "Step":
            return v if t == 0 or t % o["step_size"] != 0 else v * o["gamma"]
        if kind == "MultiStep":
            count = o["milestones"].count(t)
            return v * o["gamma"] ** count if count else v
        if kind == "Poly":
            if t == 0:
                return v
            return (v - o["eta_min"]) * (1 - 1 / (self.total_iters - t + 1)) ** o["power"] + o["eta_min"]
        if kind in ("CosineAnnealing", "CosineAnnealingWeightDecay"):
            if kind == "CosineAnnealingWeightDecay" and self.base == 0 and t != 0:
                return 0.0
            if t == 0:
                return v
            eta_min = self.eta_min()
            if (t - 1 - self.T_max) % (2 * self.T_max) == 0:
                return v + (self.base - eta_min) * (1 - math.cos(math.pi / self.T_max)) / 2
            return _cos_ratio(t, self.T_max) * (v - eta_min) + eta_min
        if kind == "CosineRestart":
            index = next((i for i, c in enumerate(self.cumulative) if t < c), None)
            if index is None:
                return v
            restart = 0 if index == 0 else self.cumulative[index - 1]
            step = t - restart
            eta_min = self.eta_min()
            if step == 0:
                return self.base * o["restart_weights"][index]
            return _cos_ratio(step, o["periods"][index]) * (v - eta_min) + eta_min
        return self._one_cycle(group, path)

    def _one_cycle(self, group: dict[str, float], path: str) -> float:
        t = self.last_step
        if t > self.total_steps:
            raise ConfigError(
                f"OneCycle is stepped {t + 1} times but its total_steps is {self.total_steps} (MMEngine raises); "
                "make end - begin at most total_steps + 1",
                path,
            )
        anneal: Callable[[float, float, float], float] = (
            _annealing_cos if self.o["anneal_strategy"] == "cos" else _annealing_linear
        )
        start = 0.0
        for index, (end_step, start_key, end_key) in enumerate(self.phases):
            if t <= end_step or index == len(self.phases) - 1:
                return anneal(group[start_key], group[end_key], (t - start) / (end_step - start))
            start = end_step
        raise AssertionError("unreachable")


def _annealing_cos(start: float, end: float, pct: float) -> float:
    return end + (start - end) / 2.0 * (math.cos(math.pi * pct) + 1)


def _annealing_linear(start: float, end: float, pct: float) -> float:
    return (end - start) * pct + start


def replay(
    schedulers: list[Scheduler],
    base: float,
    epoch_length: int,
    length: int,
    path: str = "",
    reductions: tuple[tuple[int, int], ...] = (),
) -> list[float]:
    """The value of each of ``length`` iterations for a group whose value is ``base``, as MMEngine's runner sets it.

    ``reductions`` are ``(iteration, index)`` pairs: the ReduceOnPlateau scheduler at
    ``index`` reduced the value after that many iterations (after the schedulers that
    step then), in the order they were taken.
    """
    group = {"initial": base}
    running: list[_Running] = []
    v = base
    for index, scheduler in enumerate(schedulers):
        run = _Running(scheduler, group)
        running.append(run)
        if scheduler.begin <= 0 < run.end and scheduler.kind != PLATEAU:  # MMEngine's plateau does not step at first
            run.last_step += 1
            v = run.value(v, group, f"{path}[{index}]")

    def reduce_at(g: int, v: float) -> float:
        for at, index in reductions:
            if at == g:
                o = schedulers[index].options
                v = reduced(v, float(o["factor"]), float(o["min_value"]), float(o["eps"]))
        return v

    v = reduce_at(0, v)
    per_iter = [(i, r) for i, r in enumerate(running) if not r.s.by_epoch]
    per_epoch = [(i, r) for i, r in enumerate(running) if r.s.by_epoch and r.s.kind != PLATEAU]
    changes: set[int] = {at for at, _ in reductions if 0 < at < length}
    for _, r in per_iter:
        changes.update(range(max(1, r.s.begin), min(r.end, length)))
    for _, r in per_epoch:
        first = max(1, r.s.begin)
        last = min(r.end, (length - 1) // epoch_length + 1)
        changes.update(e * epoch_length for e in range(first, last))
    values: list[float] = []
    for g in sorted(changes):
        values.extend([v] * (g - len(values)))
        for index, r in per_iter:
            if r.s.begin <= g < r.end:
                r.last_step += 1
                v = r.value(v, group, f"{path}[{index}]")
        if g % epoch_length == 0:
            epoch = g // epoch_length
            for index, r in per_epoch:
                if r.s.begin <= epoch < r.end:
                    r.last_step += 1
                    v = r.value(v, group, f"{path}[{index}]")
        v = reduce_at(g, v)
    values.extend([v] * (length - len(values)))
    return values


def _schedulers(value: Any) -> list[Scheduler]:
    if not isinstance(value, list | tuple) or not value:
        raise ConfigError(f"expected a non-empty list of schedulers, got {value!r}", "schedulers")
    return [parse_scheduler(item, f"schedulers[{index}]") for index, item in enumerate(value)]


@attrs.frozen
class MMEngineSchedule:
    """``name: mmengine``: a chain of MMEngine parameter schedulers for one option.

    Each entry is ``kind`` (``Constant``, ``CosineAnnealing``, ``CosineRestart``,
    ``Exponential``, ``Linear``, ``MultiStep``, ``OneCycle``, ``Poly``, ``Step``,
    mmpretrain's ``CosineAnnealingWeightDecay``, mmdet's ``QuadraticWarmup``, and
    ``ReduceOnPlateau``, driven by reported metrics) with MMEngine's arguments (``begin``,
    ``end``, ``by_epoch``, ``convert_to_iter_based`` and the scheduler's own).
    """

    schedulers: list[dict[str, Any]] = help_field(
        "MMEngine schedulers in the config's order, each {kind, begin, end, by_epoch, convert_to_iter_based, "
        "...its own arguments}; they chain as MMEngine's runner steps them.",
        validator=lambda _instance, _attribute, value: _schedulers(value),
    )
    iter_based_loop: bool = help_field(
        "Whether the run is an IterBasedTrainLoop: no epoch ends during training, so a ReduceOnPlateau's "
        "begin and end (counted in epochs ended) see epoch 0 throughout.",
        default=False,
    )


@attrs.frozen
class ChainSchedule:
    """The replayed chain for one group: a table of the run's values, looked up by iteration."""

    table: torch.Tensor
    relative: bool = True

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The value at each iteration (past the run: its last value)."""
        index = steps.floor().clamp(0, self.table.numel() - 1).to(torch.long)
        return self.table[index]


class ChainDecisions:
    """The decisions of a chain's ReduceOnPlateau schedulers, in chain order, and every reduction taken.

    MMEngine's plateau decides only while ``begin <= epochs ended < end`` (its
    ``_global_step`` counts the training epochs ended; an IterBasedTrainLoop ends none).
    """

    def __init__(self, plateaus: list[tuple[int, Scheduler]], epoch_length: int, iter_based: bool, path: str) -> None:
        self.epoch_length = epoch_length
        self.iter_based = iter_based
        self.path = path
        self.plateaus: list[tuple[int, Scheduler, PlateauDecisions]] = []
        for index, scheduler in plateaus:
            o = scheduler.options
            decisions = PlateauDecisions(
                mode="min" if o["rule"] == "less" else "max",
                threshold=float(o["threshold"]),
                threshold_mode=str(o["threshold_rule"]),
                patience=int(o["patience"]),
                cooldown=int(o["cooldown"]),
                monitor=str(o["monitor"]),
                name=f"ReduceOnPlateau at {path}[{index}]",
            )
            self.plateaus.append((index, scheduler, decisions))
        self.reductions: list[tuple[int, int]] = []

    def describe(self) -> str:
        """The plateau schedulers, for messages."""
        return ", ".join(d.name for _, _, d in self.plateaus)

    def report(self, metric: float | Mapping[str, Any], update: int) -> bool:
        """MMEngine's ``after_val_epoch`` after ``update`` iterations: each plateau in chain order."""
        epochs_ended = 0 if self.iter_based else update // self.epoch_length
        changed = False
        for index, scheduler, decisions in self.plateaus:
            end = INF if scheduler.end is None else scheduler.end
            if scheduler.begin <= epochs_ended < end and decisions.report(metric, update):
                self.reductions.append((int(update), index))
                changed = True
        return changed

    def state_dict(self) -> dict[str, Any]:
        """Each plateau's decisions and the chain's reductions."""
        return {
            "plateaus": [d.state_dict() for _, _, d in self.plateaus],
            "reductions": [list(r) for r in self.reductions],
        }

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Put back :meth:`state_dict`."""
        plateaus = state.get("plateaus") if isinstance(state, Mapping) else None
        if not isinstance(plateaus, list) or len(plateaus) != len(self.plateaus) or "reductions" not in state:
            raise StateError(f"not the state of the MMEngine chain at {self.path} ({self.describe()}): {state!r}")
        reductions = [(int(at), int(index)) for at, index in state["reductions"]]
        known = {index for index, _, _ in self.plateaus}
        if any(index not in known for _, index in reductions):
            raise StateError(f"the state's reductions name schedulers that are no ReduceOnPlateau here: {reductions}")
        for (_, _, decisions), data in zip(self.plateaus, plateaus, strict=True):
            decisions.load_state_dict(data)
        self.reductions = reductions

    def rebase(self, step: int) -> None:
        """Resumed at update ``step``, earlier than saved (a rescaled run): later reductions move to it."""
        self.reductions = [(min(at, int(step)), index) for at, index in self.reductions]
        for _, _, decisions in self.plateaus:
            decisions.rebase(step)


class PlateauChain:
    """A chain holding ReduceOnPlateau schedulers: replayed again, with the reductions, whenever one is taken."""

    relative = True

    def __init__(
        self, schedulers: list[Scheduler], base: float, epoch_length: int, length: int, iter_based: bool, path: str
    ) -> None:
        self.schedulers, self.base, self.epoch_length, self.length = schedulers, base, epoch_length, length
        plateaus = [(i, s) for i, s in enumerate(schedulers) if s.kind == PLATEAU]
        self.metric_state = ChainDecisions(plateaus, epoch_length, iter_based, path)
        self._applied: tuple[tuple[int, int], ...] | None = None
        self._table = torch.empty(0, dtype=torch.float64)

    def values(self, steps: torch.Tensor) -> torch.Tensor:
        """The value at each iteration, with the reductions taken so far (past the run: its last value)."""
        reductions = tuple(self.metric_state.reductions)
        if reductions != self._applied:
            table = replay(self.schedulers, self.base, self.epoch_length, self.length, "schedulers", reductions)
            self._table, self._applied = torch.tensor(table, dtype=torch.float64), reductions
        index = steps.floor().clamp(0, self._table.numel() - 1).to(torch.long)
        return self._table[index]


def _build(config: MMEngineSchedule, context: ScheduleContext) -> ChainSchedule | PlateauChain:
    clock = context.clock
    if clock.total_steps is None:
        raise ConfigError(
            "MMEngine's schedulers need the length of the run: train_cfg=dict(max_epochs=...) with "
            "build(steps_per_epoch=...), or train_cfg=dict(type='IterBasedTrainLoop', max_iters=...)",
            context.path,
        )
    length = math.ceil(clock.total_steps)
    schedulers = [s.in_iterations(clock.steps_per_epoch, length) for s in _schedulers(config.schedulers)]
    if any(s.kind == PLATEAU for s in schedulers):
        return PlateauChain(
            schedulers, context.base, clock.steps_per_epoch, length, config.iter_based_loop, context.path
        )
    table = replay(schedulers, context.base, clock.steps_per_epoch, length, "schedulers")
    return ChainSchedule(torch.tensor(table, dtype=torch.float64))


def schedule_specs() -> list[ScheduleSpec]:
    """The ``mmengine`` schedule (relative)."""
    return [
        ScheduleSpec(
            "mmengine",
            MMEngineSchedule,
            _build,
            "MMEngine param_scheduler: its schedulers chained as MMEngine's runner steps them",
            relative=True,
        )
    ]
