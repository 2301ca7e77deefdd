"""What ``build`` returns: the optimizer, the scheduler, the groups, and ``step(loss)``."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import attrs
import torch
from torch.optim import Optimizer

from optiplug.engine.freezing import NO_FREEZES, Freezes
from optiplug.engine.grouping import GroupPlan
from optiplug.engine.loss_scaling import grad_scaler
from optiplug.engine.torch_scheduler import OptiplugScheduler, option_number
from optiplug.engine.wrapping import optimizer_chain
from optiplug.errors import OptiplugWarning, StateError
from optiplug.plugin_system.records import Clock
from optiplug.recipe.model import Recipe

SUMMARY_KEYS = ("lr", "weight_decay", "momentum", "betas", "lars_exclude")


@attrs.frozen
class GroupSummary:
    """One param group as a reader wants it: why it exists, how big it is, its options."""

    index: int
    rules: tuple[str, ...]
    tensors: int
    elements: int
    options: Mapping[str, Any]
    names: tuple[str, ...]

    @classmethod
    def of(cls, index: int, plan: GroupPlan, group: Mapping[str, Any]) -> GroupSummary:
        """The summary of group ``index`` from its plan and its torch param group."""
        options = {k: option_number(group[k]) for k in SUMMARY_KEYS if k in group}
        return cls(
            index, tuple(plan.rules) or ("(no rule)",), len(plan.params), plan.elements, options, tuple(plan.names)
        )

    def __str__(self) -> str:
        options = ", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.options.items())
        size = f"{self.tensors} tensors, {self.elements:,} elements"
        return f"group {self.index}: {size}, {options} <- {'; '.join(self.rules)}"


class Built:
    """A built recipe: ``optimizer``, ``scheduler``, ``groups`` and the training ``step``.

    ``step(loss)`` is called once per micro-batch: it scales the loss for accumulation,
    backpropagates, and on every accumulation boundary unscales (with a GradScaler),
    clips, steps the optimizer, zeroes the gradients and steps the scheduler. An update
    whose gradients are not finite is skipped (optimizer and schedule), with a warning.

    Set ``sync_free = True`` to keep the step free of host synchronisation (on a GPU):
    the finiteness check, the skip and the count of skipped updates then stay on the
    device. A non-finite update still leaves parameters and optimizer state unchanged
    (torch's fused optimizers skip inside their kernel, as with a GradScaler; any other
    optimizer is stepped and then restored from a copy of its parameters and state), but
    the schedule advances, ``step`` returns True on every boundary and no warning is
    given: read ``skipped_updates`` (one host read) when you want the count. The first
    update, which creates the optimizer state, is still checked on the host.
    """

    FUSED_SKIP = (torch.optim.SGD, torch.optim.Adam, torch.optim.AdamW, torch.optim.Adagrad)
    """Optimizers that skip a step themselves when given ``found_inf`` (with ``fused=True``)."""

    def __init__(
        self,
        recipe: Recipe,
        optimizer: Optimizer,
        scheduler: OptiplugScheduler,
        groups: list[GroupSummary],
        clock: Clock,
        *,
        batches_per_epoch: int | None = None,
        total_batches: int | None = None,
        freezes: Freezes = NO_FREEZES,
    ):
        self.recipe = recipe
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.groups = groups
        self.clock = clock
        self.micro_steps = 0
        self._skipped = 0
        self._skipped_on_device: torch.Tensor | None = None
        self.sync_free = False
        self._warm = False
        self.freezes = freezes
        """The recipe's ``freeze``: parameters whose gradients each update drops while they are frozen."""
        self._loss_scaler: torch.amp.GradScaler | None = None
        accumulation = recipe.accumulation
        self.accumulate = accumulation.steps
        self.per_iteration = accumulation.schedule_clock == "iterations"
        total = clock.total_steps
        ticks = 1 if self.per_iteration else self.accumulate  # batches per step of the schedules' clock
        self.batches_per_epoch = batches_per_epoch or clock.steps_per_epoch * ticks
        """Batches (``step`` calls) per epoch: the ``steps_per_epoch`` given, ``len(loader)``."""
        self.total_micro_steps = total_batches or (None if total is None else int(total * ticks))
        """Batches (``step`` calls) in the run."""

    def __repr__(self) -> str:
        lines = [f"Built({type(self.optimizer).__name__}, {len(self.groups)} groups)"]
        lines += [f"  {g}" for g in self.groups]
        return "\n".join(lines)

    @property
    def skipped_updates(self) -> int:
        """Updates skipped because their gradients were not finite (a host read in ``sync_free`` mode)."""
        on_device = 0 if self._skipped_on_device is None else int(self._skipped_on_device.item())
        return self._skipped + on_device

    @skipped_updates.setter
    def skipped_updates(self, value: int) -> None:
        self._skipped, self._skipped_on_device = int(value), None

    def explain(self, model: Any) -> Any:
        """Why each parameter of ``model`` (the model this was built for) has its options, and a lint of the rules.

        Returns an :class:`optiplug.engine.explain.Explanation`: ``print()`` it for every
        parameter's matching rules, the one that won each option, its group's options at
        update 0 and at the end, then the findings (``.findings``).
        """
        from optiplug.engine.explain import explain

        return explain(self, model)

    def loss_factor(self) -> int:
        """What the current micro-batch's loss is divided by (the remainder at the end of the run)."""
        n, total = self.accumulate, self.total_micro_steps
        if n == 1 or total is None:
            return n
        remainder = total % n
        return n if remainder == 0 or self.micro_steps < total - remainder else remainder

    def is_boundary(self) -> bool:
        """Whether the current micro-batch ends an accumulation window."""
        done = self.micro_steps + 1
        return done % self.accumulate == 0 or done == self.total_micro_steps

    def step(self, loss: torch.Tensor, scaler: torch.amp.GradScaler | None = None) -> bool:
        """Backpropagate one micro-batch; update on accumulation boundaries. Returns whether it updated.

        The recipe's ``loss_scale`` scales the loss and unscales the gradients with the
        scaler this Built owns (:attr:`loss_scaler`); a ``scaler`` given here is used instead.
        """
        _refuse_eval_mode(self.optimizer)
        scaler = self.loss_scaler if scaler is None else scaler
        scaled = loss / self.loss_factor() if self.accumulate > 1 else loss
        (scaler.scale(scaled) if scaler is not None else scaled).backward()
        boundary = self.is_boundary()
        self.micro_steps += 1
        updated = self._update(scaler) if boundary else False
        if self.per_iteration:
            self.scheduler.set_step(self.micro_steps)
        elif updated:
            self.scheduler.step()
        return updated

    def report(self, metric: Any) -> bool:
        """Report a validation metric to the run's metric-driven schedules (``reduce_on_plateau``).

        ``metric`` is a number, a one-element tensor, or a mapping of names to numbers
        (each schedule reads its ``monitor`` key). Call it where the metric is known,
        typically after each validation; the decision is taken after the updates done so
        far, and a reduction applies from the next update. Returns whether a value changed.
        See :meth:`OptiplugScheduler.report`.
        """
        return self.scheduler.report(metric)

    def _params(self) -> list[torch.Tensor]:
        return [p for g in self.optimizer.param_groups for p in g["params"] if p.grad is not None]

    @property
    def loss_scaler(self) -> torch.amp.GradScaler | None:
        """The GradScaler of the recipe's ``loss_scale`` (None without one), made on the parameters' device."""
        config = self.recipe.loss_scale
        if self._loss_scaler is None and config is not None and config.enabled:
            params = self._trained_params()
            device = params[0].device.type if params else "cpu"
            self._loss_scaler = grad_scaler(config, device)
        return self._loss_scaler

    def _update(self, scaler: torch.amp.GradScaler | None) -> bool:
        if self.freezes:
            self.freezes.drop_grads(self.scheduler.last_epoch)
        if scaler is not None:
            scaler.unscale_(self.optimizer)
        elif self.sync_free and self._warm:
            return self._update_on_device()
        finite = self._clip_and_check()
        if scaler is not None:
            before, scale = self.scheduler._optimizer_steps, scaler.get_scale()
            scaler.step(self.optimizer)
            scaler.update()
            # A fused optimizer is stepped even on inf/NaN (it skips inside the kernel);
            # the scaler's backoff is what tells a skipped update then.
            stepped = self.scheduler._optimizer_steps != before and scaler.get_scale() >= scale
            # GradScaler skips steps routinely while it calibrates its scale: counted, not warned.
            self.skipped_updates += not stepped
        elif finite:
            self.optimizer.step()
            stepped = self._warm = True
        else:
            stepped = False
            self._skip()
        self.optimizer.zero_grad(set_to_none=True)
        return stepped

    def _skip(self) -> None:
        self.skipped_updates += 1
        warnings.warn(
            f"skipped update {self.scheduler.last_epoch}: gradients are not finite "
            f"({self.skipped_updates} skipped so far); parameters, momenta and schedule are unchanged",
            OptiplugWarning,
            stacklevel=4,
        )

    def _update_on_device(self) -> bool:
        total = self._clipped_norm()
        if total is None:
            self.optimizer.step()
        else:
            bad = torch.isfinite(total).logical_not_()
            if self._skipped_on_device is None:
                self._skipped_on_device = torch.zeros((), dtype=torch.int64, device=bad.device)
            self._skipped_on_device.add_(bad)
            self._masked_step(bad)
        self.optimizer.zero_grad(set_to_none=True)
        return True

    def _masked_step(self, bad: torch.Tensor) -> None:
        """Step the optimizer; where ``bad`` (a 0-d bool on the device) holds, nothing changes."""
        optimizer = self.optimizer
        if isinstance(optimizer, self.FUSED_SKIP) and optimizer.defaults.get("fused"):
            optimizer.__dict__["found_inf"] = bad.to(torch.float32)  # read by torch's fused step
            try:
                optimizer.step()
            finally:
                del optimizer.__dict__["found_inf"]
            return
        params = self._params()
        states = [optimizer.state.get(p, {}) for p in params]
        tensors = params + [t for state in states for t in state.values() if isinstance(t, torch.Tensor)]
        saved = [t.detach().clone() for t in tensors]
        optimizer.step()
        for new, old in zip(tensors, saved, strict=True):
            torch.where(bad.to(new.device), old, new.detach(), out=new.detach())

    def _clip_and_check(self) -> bool:
        total = self._clipped_norm()
        return True if total is None else bool(torch.isfinite(total))

    def _clipped_norm(self) -> torch.Tensor | None:
        """Clip the gradients as the recipe asks; their total norm (None when no parameter has one)."""
        params = self._params()
        if not params:
            return None
        clip = self.recipe.clip
        if clip is not None and clip.clip_value is not None:
            torch.nn.utils.clip_grad_value_(params, clip.clip_value)
        if clip is not None and clip.max_norm is not None:
            total = torch.nn.utils.clip_grad_norm_(params, clip.max_norm, clip.norm_type, foreach=None)
        else:
            grads = [p.grad for p in params if p.grad is not None]
            dense = [g for g in grads if not g.is_sparse]
            norms = list(torch._foreach_norm(dense)) if dense else []  # type: ignore[misc]
            # Sparse gradients (Embedding(sparse=True)) have no multi-tensor norm kernel.
            norms += [g.coalesce().values().norm() for g in grads if g.is_sparse]
            total = torch.linalg.vector_norm(torch.stack([n.to(torch.float32) for n in norms]))
        return total

    def window_open(self) -> bool:
        """Whether micro-batches of an unfinished accumulation window have gradients waiting."""
        return self.accumulate > 1 and self.micro_steps % self.accumulate != 0

    def train(self, model: torch.nn.Module | None = None) -> None:
        """Train mode: ``model.train()`` (when given) and the optimizer's own train mode, if it has modes.

        A schedule-free optimizer (plugin ``optiplug_schedulefree``) holds two points: in
        train mode the parameters are the one gradients are taken at, in eval mode the
        average to evaluate and save. ``train`` / ``eval`` switch it with the model (found
        through wrappers such as LARC); for an optimizer without modes they switch the
        model only.
        """
        if model is not None:
            model.train()
        _switch_mode(self.optimizer, "train")

    def eval(self, model: torch.nn.Module | None = None) -> None:
        """Eval mode: ``model.eval()`` (when given) and the optimizer's eval mode if it has one (see :meth:`train`)."""
        if model is not None:
            model.eval()
        _switch_mode(self.optimizer, "eval")

    @property
    def optimizer_mode(self) -> str | None:
        """``"train"`` or ``"eval"`` for an optimizer with modes (schedule-free), None for any other."""
        return _mode_of(self.optimizer)

    def _trained_params(self) -> list[torch.Tensor]:
        return [p for group in self.optimizer.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """Optimizer, scheduler and the micro-batch count, for checkpoints.

        Inside an accumulation window the gradients summed so far are part of the state:
        ``accumulated_grads`` holds a copy of each parameter's ``.grad`` (None where it has
        none), in the optimizer's parameter order, so a resumed run finishes the window with
        the same sum. On a window boundary there is nothing to carry (the key holds None).
        ``loss_scaler`` holds the state of the recipe's GradScaler (None without ``loss_scale``).

        An optimizer with modes (schedule-free) is put in eval mode first, and left there:
        the checkpoint, and the model's weights saved with it, are the evaluated average.
        Call :meth:`train` before the next training forward pass (``step`` refuses until then).
        """
        _switch_mode(self.optimizer, "eval")
        return {
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "micro_steps": self.micro_steps,
            "skipped_updates": self.skipped_updates,
            "accumulated_grads": self._grads() if self.window_open() else None,
            "loss_scaler": None if self.loss_scaler is None else self.loss_scaler.state_dict(),
        }

    def _grads(self) -> list[torch.Tensor | None]:
        return [None if p.grad is None else p.grad.detach().clone() for p in self._trained_params()]

    def load_state_dict(self, state: Mapping[str, Any], resume: str | None = None) -> None:
        """Resume from :meth:`state_dict`.

        A state from another model is refused with a :class:`StateError`. One from
        another recipe or run length is resumed under the policy ``resume`` (default: the
        recipe's ``run.resume``, ``strict``): ``strict`` refuses it, naming each change;
        ``rescale`` maps the saved progress onto this run's length, ``extend`` continues
        this recipe's schedules from the saved update, ``branch`` starts the cooldown there
        (docs/resume.md). The accumulated gradients are put back into ``.grad`` (a state
        saved on a window boundary clears them).
        """
        missing = {"optimizer", "scheduler", "micro_steps"} - set(state)
        if missing:
            raise StateError(f"not an optiplug Built state (missing {sorted(missing)})")
        grads = self._checked_grads(state.get("accumulated_grads"))
        before = self.scheduler.state_dict()
        self.scheduler.load_state_dict(state["scheduler"], resume)
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (ValueError, KeyError, TypeError, RuntimeError) as exc:
            self.scheduler.load_state_dict(before, "strict")
            raise StateError(f"the optimizer state does not fit this model's parameters: {exc}") from None
        moved = self.scheduler.last_epoch - int(state["scheduler"]["step"])  # rescale moves the count
        self.micro_steps = int(state["micro_steps"]) + moved * (1 if self.per_iteration else self.accumulate)
        self.skipped_updates = int(state.get("skipped_updates", 0))
        self.scheduler.set_step(self.scheduler.last_epoch)
        if state.get("loss_scaler") is not None and self.loss_scaler is not None:
            self.loss_scaler.load_state_dict(state["loss_scaler"])
        for param, grad in zip(self._trained_params(), grads, strict=True):
            param.grad = None if grad is None else grad.to(device=param.device, dtype=param.dtype).clone()

    def _checked_grads(self, grads: Any) -> list[torch.Tensor | None]:
        params = self._trained_params()
        if grads is None:
            return [None] * len(params)
        if len(grads) != len(params):
            raise StateError(f"the state holds gradients of {len(grads)} parameters, this optimizer has {len(params)}")
        for index, (param, grad) in enumerate(zip(params, grads, strict=True)):
            if grad is not None and tuple(grad.shape) != tuple(param.shape):
                raise StateError(
                    f"the accumulated gradient of parameter {index} has shape {tuple(grad.shape)}, "
                    f"the parameter {tuple(param.shape)}"
                )
        return list(grads)


def _with_modes(optimizer: Any) -> Any:
    """The optimizer, or the one it wraps (``.optimizer`` / ``.optim``), that has ``train()`` and ``eval()``."""
    for inner in optimizer_chain(optimizer):
        if callable(getattr(inner, "train", None)) and callable(getattr(inner, "eval", None)):
            return inner
    return None


def _switch_mode(optimizer: Optimizer, mode: str) -> None:
    inner = _with_modes(optimizer)
    if inner is not None and _mode_of(optimizer) != mode:
        getattr(inner, mode)()


def _mode_of(optimizer: Optimizer) -> str | None:
    """The mode of an optimizer with modes: its ``train_mode`` (attribute, or of its first group, as schedulefree)."""
    inner = _with_modes(optimizer)
    if inner is None:
        return None
    flag = getattr(inner, "train_mode", None)
    if flag is None and inner.param_groups:
        flag = inner.param_groups[0].get("train_mode")
    return None if flag is None else ("train" if flag else "eval")


def _refuse_eval_mode(optimizer: Optimizer) -> None:
    if _mode_of(optimizer) == "eval":
        raise StateError(
            "the optimizer is in eval mode (built.eval() or built.state_dict() put it there): call "
            "built.train(model) before the forward pass of the next update"
        )
