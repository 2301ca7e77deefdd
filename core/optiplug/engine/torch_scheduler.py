"""The torch adapter: an ``LRScheduler`` that writes every scheduled option into the groups.

Schedules are pure functions of the update index; this adapter only holds that index
(``last_epoch``, the number of updates done). Before update k every group holds the
values of step k. Values are computed a block of updates at a time (vectorized) and
read from the block, so ``step()`` costs a few dictionary writes.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from torch import Tensor
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from optiplug.engine import resume as resuming
from optiplug.engine.binding import Binding
from optiplug.engine.schedules import metric_number, metric_state_of
from optiplug.engine.tolerance import STRICT, Tolerance
from optiplug.engine.value_table import BOUNDS, OutOfBounds, ValueTable
from optiplug.errors import OptiplugWarning, StateError, user_stacklevel
from optiplug.plugin_system.records import Clock, MetricState


def fingerprint(data: Any) -> str:
    """A short stable hash of plain data (the resolved recipe), to recognise a state's recipe."""
    text = json.dumps(data, sort_keys=True, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def option_number(value: Any) -> Any:
    """A group option as Python numbers: a 0-dim tensor (``run.compile``) read, a pair of them (betas) read each."""
    if isinstance(value, Tensor) and value.dim() == 0:
        return value.item()
    if isinstance(value, tuple) and any(isinstance(v, Tensor) for v in value):
        return tuple(option_number(v) for v in value)
    return value


class OptiplugScheduler(LRScheduler):
    """Drives every scheduled option of every group; ``step()`` once per optimizer update.

    It is a real ``torch.optim.lr_scheduler.LRScheduler`` (Lightning and Hugging Face
    accept it). ``step()`` advances only if the optimizer stepped since the last call,
    so a step that ``torch.amp.GradScaler`` skipped (inf/NaN) does not move the schedule.
    ``state_dict()`` holds the update count and the recipe's fingerprint, with the record
    ``load_state_dict(state, resume=...)`` resumes by under another recipe or run length
    (:mod:`optiplug.engine.resume`).
    """

    def __init__(
        self,
        optimizer: Optimizer,
        bindings: Sequence[Binding],
        clock: Clock,
        recipe_fingerprint: str = "",
        *,
        skip_unstepped: bool = True,
        bind_added: Callable[[int, dict[str, Any]], list[Binding]] | None = None,
        tolerance: Tolerance = STRICT,
        record: resuming.RunRecord | None = None,
    ) -> None:
        # LRScheduler.__init__ is not called: it would step once and patch optimizer.step.
        self.optimizer = optimizer
        self.bindings = list(bindings)
        self.clock = clock
        self.recipe_fingerprint = recipe_fingerprint
        self.skip_unstepped = skip_unstepped
        self.bind_added = bind_added
        self.tolerance = tolerance
        self.record = record
        self.own_bindings = list(bindings)
        self.branch_at: int | None = None
        self._bound_groups = len(optimizer.param_groups)
        self._tensor_numbers: dict[int, tuple[Tensor, int, Any]] = {}
        self.base_lrs = [self._number(group["lr"]) for group in optimizer.param_groups]
        self.last_epoch = 0
        self._optimizer_steps = 0
        self._seen_steps = 0
        self.check_run(self.bindings)
        self._metric_states: list[tuple[MetricState, list[ValueTable]]] = []
        self._warned_no_metric = False
        self._collect_metric_states(self.bindings)
        self._hook = optimizer.register_step_post_hook(self._count_step)
        self._write(0)

    def check_run(self, bindings: Sequence[Binding]) -> None:
        """Check every value ``bindings`` will write over the whole run (open-ended runs: as they come).

        Values outside their option's range are refused unless the dialect tolerates it.
        """
        total = self.clock.total_steps
        if total is None:
            return
        checks: dict[int, tuple[ValueTable, float, str | None]] = {}
        for b in bindings:
            table, scale, option = checks.get(id(b.table), (b.table, 0.0, None))
            name = "beta1" if b.into_betas else b.option
            if b.scale > 0 and name in BOUNDS:
                option = name
            checks[id(b.table)] = table, max(scale, abs(b.scale)), option
        for table, scale, option in checks.values():
            try:
                table.check_run(int(total), scale, option)
            except OutOfBounds as exc:
                self.tolerance.refuse("option_bounds", exc)  # the dialect's framework takes it: finite is enough
                table.check_run(int(total), scale, None)

    def _count_step(self, *_args: Any) -> None:
        self._optimizer_steps += 1

    @property
    def total_steps(self) -> float | None:
        """The run's length in updates (None if open-ended)."""
        return self.clock.total_steps

    def step(self, metrics: Any = None, epoch: int | None = None) -> None:  # type: ignore[override]
        """Advance one update (if the optimizer stepped) and write the new values.

        ``step(metric)`` (what Lightning calls for a scheduler configured with ``monitor``,
        and torch's ``ReduceLROnPlateau`` signature) reports the metric instead
        (:meth:`report`) and does not advance. A recipe without a metric-driven schedule
        refuses it: the argument is then taken for an epoch, which this scheduler has none of.
        """
        if metrics is not None and epoch is None and self._metric_states:
            self.report(metrics)
            return
        if epoch is not None or metrics is not None:
            raise TypeError(
                "OptiplugScheduler.step() takes no epoch; use load_state_dict or set_step to move "
                "(a metric is taken only by a recipe with a metric-driven schedule such as reduce_on_plateau)"
            )
        if self.skip_unstepped and self._optimizer_steps == self._seen_steps:
            return
        self._seen_steps = self._optimizer_steps
        self.last_epoch += 1
        self._write(self.last_epoch)

    def set_step(self, step: int) -> None:
        """Jump to update ``step`` (for resuming by hand)."""
        self.last_epoch = int(step)
        self._seen_steps = self._optimizer_steps
        self._write(self.last_epoch)

    def _write(self, step: int) -> None:
        total = self.clock.total_steps
        if total is not None and step > total:
            step = int(total)
        groups = self.optimizer.param_groups
        if len(groups) != self._bound_groups:
            self.bind_added_groups()
        lrs: dict[int, float] = {}
        for b in self.bindings:
            value = b.table[step] * b.scale
            group = groups[b.group]
            if b.into_betas:
                betas = tuple(group["betas"])
                if isinstance(betas[0], Tensor):
                    betas[0].fill_(value)  # run.compile: a 0-dim tensor, written in place
                else:
                    group["betas"] = (value, *betas[1:])
            elif isinstance(group[b.option], Tensor):
                group[b.option].fill_(value)
            else:
                group[b.option] = value
            if b.option == "lr":
                lrs[b.group] = float(value)
        self._last_lr = [lrs[i] if i in lrs else self._number(group["lr"]) for i, group in enumerate(groups)]

    def _number(self, value: Any) -> Any:
        """A group's option as a Python number: a 0-dim tensor (``run.compile``) is read once per value written.

        The read is remembered with the tensor's version counter, so an option nobody writes
        costs no host read (no device synchronisation) at each update.
        """
        if not isinstance(value, Tensor):
            return value
        cached = self._tensor_numbers.get(id(value))
        if cached is not None and cached[0] is value and cached[1] == value._version:
            return cached[2]
        number = value.item()
        self._tensor_numbers[id(value)] = (value, value._version, number)
        return number

    def report(self, metric: Any) -> bool:
        """Report a metric (a number, a one-element tensor, or a mapping of names to numbers) to the run.

        Every metric-driven schedule (``reduce_on_plateau``) takes it after the updates
        done so far (``last_epoch``); when one of them reduces its value, the groups get
        the new values at once, for the next update. Returns whether any value changed. A
        recipe without a metric-driven schedule ignores it, with one warning.
        """
        if not isinstance(metric, Mapping):
            metric = metric_number(metric)
        if not self._metric_states:
            if not self._warned_no_metric:
                self._warned_no_metric = True
                warnings.warn(
                    "a metric was reported, but no schedule of this recipe reads metrics (only a metric-driven "
                    "schedule such as reduce_on_plateau does); it is ignored",
                    OptiplugWarning,
                    stacklevel=2,
                )
            return False
        changed = False
        for state, tables in self._metric_states:
            if state.report(metric, self.last_epoch):
                changed = True
                for table in tables:
                    table.invalidate()
        if changed:
            self._write(self.last_epoch)
        return changed

    def _collect_metric_states(self, bindings: Sequence[Binding]) -> None:
        """Remember the decisions of each metric-driven schedule among ``bindings`` (once each), and its tables."""
        for b in bindings:
            state = metric_state_of(b.table.schedule)
            if state is None:
                continue
            for known, tables in self._metric_states:
                if known is state:
                    if all(t is not b.table for t in tables):
                        tables.append(b.table)
                    break
            else:
                # a group added later (add_param_group) gets the decisions its schedule took so far
                twin = next((k for k, _ in self._metric_states if k.describe() == state.describe()), None)
                if twin is not None and type(twin) is type(state):
                    state.load_state_dict(twin.state_dict())
                self._metric_states.append((state, [b.table]))

    def _metric_state_dict(self) -> dict[str, Any]:
        """The decisions of the metric-driven schedules (nothing for a recipe without any)."""
        if not self._metric_states:
            return {}
        return {"metric_states": [state.state_dict() for state, _ in self._metric_states]}

    def _load_metric_states(self, state_dict: Mapping[str, Any], step: int | None = None) -> None:
        """Put back the saved decisions; resumed at an earlier ``step`` (rescaled), later decisions move to it."""
        if not self._metric_states:
            return
        saved = state_dict.get("metric_states")
        names = ", ".join(state.describe() for state, _ in self._metric_states)
        if not isinstance(saved, list) or len(saved) != len(self._metric_states):
            held = "none" if not isinstance(saved, list) else str(len(saved))
            raise StateError(
                f"this recipe's metric-driven schedules ({names}) need their decisions; the state holds {held} "
                f"of {len(self._metric_states)}"
            )
        saved_step = state_dict.get("step")
        for (state, tables), data in zip(self._metric_states, saved, strict=True):
            state.load_state_dict(data)
            rebase = getattr(state, "rebase", None)
            if step is not None and isinstance(saved_step, int) and step < saved_step and rebase is not None:
                rebase(step)
            for table in tables:
                table.invalidate()

    def bind_added_groups(self) -> None:
        """Schedule groups added with ``add_param_group`` since the build (done at every step too)."""
        groups = self.optimizer.param_groups
        for index in range(self._bound_groups, len(groups)):
            if self.bind_added is not None:
                added = self.bind_added(index, groups[index])
                self.check_run(added)
                self.bindings.extend(added)
                self._collect_metric_states(added)
            self.base_lrs.append(self._number(groups[index].get("initial_lr", groups[index]["lr"])))
        self._bound_groups = len(groups)

    def get_lr(self) -> list[float]:  # type: ignore[override]
        """The lrs the groups hold now, as Python numbers."""
        return [self._number(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        """The update count, the clock, the recipe's fingerprint, and the record of the run (plain data)."""
        record = self.record
        return {
            "step": self.last_epoch,
            "fingerprint": self.recipe_fingerprint,
            "steps_per_epoch": self.clock.steps_per_epoch,
            "total_steps": self.clock.total_steps,
            "recipe": None if record is None else record.recipe,
            "run": None if record is None else record.figures,
            "values": resuming.values_now(self),
            "branch_at": self.branch_at,
            **self._metric_state_dict(),
        }

    def load_state_dict(self, state_dict: dict[str, Any], resume: str | None = None) -> None:
        """Resume at the saved update, under the policy ``resume`` (default: the recipe's ``run.resume``).

        ``strict`` refuses a state from another recipe or run length, naming each change;
        ``rescale``, ``extend`` and ``branch`` continue under this one
        (:mod:`optiplug.engine.resume`). A refused state changes nothing.
        """
        plan = self.plan_resume(state_dict, resume)
        self._load_metric_states(state_dict, plan.step)
        self.apply_resume(plan)

    def plan_resume(self, state_dict: Mapping[str, Any], resume: str | None = None) -> resuming.Plan:
        """How ``state_dict`` would resume under ``resume``, checked; nothing is changed yet."""
        if resume is None:
            policy = resuming.checked_policy(self.record.policy if self.record else "strict", "run.resume")
            return resuming.plan(self, state_dict, policy, "run.resume")
        path = "load_state_dict(resume=...)"
        return resuming.plan(self, state_dict, resuming.checked_policy(resume, path), path)

    def apply_resume(self, plan: resuming.Plan) -> None:
        """Move to the planned update, with the planned bindings (a branch), and give its warnings."""
        if plan.branch_at is not None or self.branch_at is not None:
            if plan.branch_at is not None:
                self.check_run(plan.bindings)
            self.bindings = [*plan.bindings, *self.bindings[len(self.own_bindings) :]]
        self.branch_at = plan.branch_at
        for message in plan.warnings:
            warnings.warn(message, OptiplugWarning, stacklevel=user_stacklevel())
        self.set_step(plan.step)
