"""LARC: layer-wise adaptive rate control around any optimizer (apex semantics).

Before the inner optimizer steps, every gradient is replaced by

    a = trust_coefficient * ‖p‖ / (‖g‖ + weight_decay * ‖p‖ + eps)
    a = min(a / lr, 1)                       (clip mode only)
    g ← (g + weight_decay * p) * a

and the inner step runs with every group's ``weight_decay`` set to 0 (restored after).
A parameter whose weight norm or gradient norm is 0 gets neither the scaling nor the
weight decay in that step (apex's rule). Norms are computed with multi-tensor kernels
and every decision is made on the device: one step costs no host synchronisation.

Around a plain ``torch.optim.SGD(fused=True)`` on the CPU (float32), LARC steps the
parameters itself through torch's fused SGD kernel with the trust ratio folded in, one
pass per tensor, and leaves ``p.grad`` as it was (see :mod:`optiplug_larc.fused`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim import optimizer as torch_optimizer

from optiplug import ConfigError
from optiplug_larc import fused
from optiplug_larc.distributed import ReduceOver, global_norms, local_shards
from optiplug_larc.packing import Factors, LayoutCache, Packed, Part, with_grads

_HOOK_DICTS = (
    "_optimizer_step_pre_hooks",
    "_optimizer_step_post_hooks",
    "_optimizer_state_dict_pre_hooks",
    "_optimizer_state_dict_post_hooks",
    "_optimizer_load_state_dict_pre_hooks",
    "_optimizer_load_state_dict_post_hooks",
)


def trust_ratios(
    param_norms: torch.Tensor,
    grad_norms: torch.Tensor,
    *,
    trust_coefficient: float,
    eps: float,
    weight_decay: float | torch.Tensor,
    lr: float | torch.Tensor,
    clip: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-tensor gradient scale (a vector) and where it applies, apex's formula and zero-norm rule.

    Returns ``(scale, adapt)``: ``adapt`` is False where either norm is 0; there the
    scale is 1 and no weight decay may be added, so the gradient is left as it is.
    """
    denominator = torch.mul(param_norms, weight_decay).add_(grad_norms).add_(eps)
    ratio = torch.mul(param_norms, trust_coefficient).div_(denominator)
    if clip:
        ratio = ratio.div_(lr).clamp_(max=1.0)
    adapt = torch.logical_and(param_norms, grad_norms)
    return torch.where(adapt, ratio, 1.0), adapt


def _check_options(trust_coefficient: float, eps: float) -> None:
    if not (isinstance(trust_coefficient, int | float) and math.isfinite(trust_coefficient) and trust_coefficient > 0):
        raise ConfigError(f"must be a finite number > 0, got {trust_coefficient!r}", "trust_coefficient")
    if not (isinstance(eps, int | float) and math.isfinite(eps) and eps >= 0):
        raise ConfigError(f"must be a finite number >= 0, got {eps!r}", "eps")


class _GroupWork:
    """One part of one group between the norm pass and the update pass."""

    def __init__(
        self,
        group: dict[str, Any],
        part: Part,
        params: Packed,
        grads: Packed,
        targets: list[torch.Tensor],
        over: list[ReduceOver],
        index: int,
    ):
        self.group, self.part, self.params, self.grads, self.targets = group, part, params, grads, targets
        self.over, self.index = over, index
        self.param_norms = params.norms()
        self.grad_norms = grads.norms()


class LARC(Optimizer):
    """Wraps any optimizer with layer-wise adaptive rate control (apex ``LARC``).

    ``param_groups``, ``state`` and ``defaults`` are the inner optimizer's own objects;
    ``state_dict``, ``load_state_dict``, ``zero_grad`` and ``add_param_group`` are
    delegated, so schedulers and checkpoints see the inner optimizer's groups and a
    state saved without LARC loads with it. ``step`` fires the usual step hooks.

    Example::

        optimizer = LARC(torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9,
                                         weight_decay=1e-4), trust_coefficient=0.001, clip=False)

    With ``distributed_norm=True`` each norm is the square root of the sum of squares
    over all ranks of the default process group (for parameters sharded across ranks,
    e.g. FSDP); every rank must step with the same set of parameters having gradients.
    DTensor parameters (FSDP2's ``fully_shard``) always get the norms of the whole
    tensors: their local shards' squares are summed over the mesh's process groups.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        trust_coefficient: float = 0.02,
        clip: bool = True,
        eps: float = 1e-8,
        distributed_norm: bool = False,
    ) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"LARC wraps a torch.optim.Optimizer, got {type(optimizer).__name__}")
        _check_options(trust_coefficient, eps)
        self.optimizer = optimizer
        self.trust_coefficient = float(trust_coefficient)
        self.clip = bool(clip)
        self.eps = float(eps)
        self.distributed_norm = bool(distributed_norm)
        self._init_machinery()

    def _init_machinery(self) -> None:
        # What Optimizer.__init__ would set up, without taking any param groups of our own.
        for name in _HOOK_DICTS:
            setattr(self, name, OrderedDict())
        self._layouts = LayoutCache()
        self._patch_step_function()

    @property  # type: ignore[override]
    def param_groups(self) -> list[dict[str, Any]]:
        """The inner optimizer's param groups (the same list)."""
        return self.optimizer.param_groups

    @param_groups.setter
    def param_groups(self, value: list[dict[str, Any]]) -> None:
        self.optimizer.param_groups = value

    @property  # type: ignore[override]
    def state(self) -> Any:
        """The inner optimizer's per-parameter state."""
        return self.optimizer.state

    @state.setter
    def state(self, value: Any) -> None:
        self.optimizer.state = value

    @property  # type: ignore[override]
    def defaults(self) -> dict[str, Any]:
        """The inner optimizer's defaults."""
        return self.optimizer.defaults

    @defaults.setter
    def defaults(self, value: dict[str, Any]) -> None:
        self.optimizer.defaults = value

    def __getstate__(self) -> dict[str, Any]:
        return {
            "optimizer": self.optimizer,
            "trust_coefficient": self.trust_coefficient,
            "clip": self.clip,
            "eps": self.eps,
            "distributed_norm": self.distributed_norm,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_machinery()

    def __repr__(self) -> str:
        options = f"trust_coefficient={self.trust_coefficient}, clip={self.clip}, eps={self.eps}"
        if self.distributed_norm:
            options += ", distributed_norm=True"
        return f"LARC({options}) wrapping {self.optimizer!r}"

    def state_dict(self) -> dict[str, Any]:
        """The inner optimizer's state dict (LARC keeps no state of its own)."""
        for pre_hook in self._optimizer_state_dict_pre_hooks.values():
            pre_hook(self)
        state = self.optimizer.state_dict()
        for post_hook in self._optimizer_state_dict_post_hooks.values():
            result = post_hook(self, state)
            state = state if result is None else result
        return state

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """Load into the inner optimizer; ``param_groups`` keeps pointing at its groups."""
        for pre_hook in self._optimizer_load_state_dict_pre_hooks.values():
            result = pre_hook(self, state_dict)
            state_dict = state_dict if result is None else result
        self.optimizer.load_state_dict(state_dict)
        self._layouts.clear()
        for post_hook in self._optimizer_load_state_dict_post_hooks.values():
            post_hook(self)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """The inner optimizer's ``zero_grad``."""
        self.optimizer.zero_grad(set_to_none=set_to_none)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to the inner optimizer."""
        self.optimizer.add_param_group(param_group)

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> Any:  # type: ignore[override]
        """Rescale every gradient, then step the inner optimizer with weight decay 0.

        A ``closure`` is evaluated (with grad enabled) before the gradients are read;
        the inner optimizer is then stepped without it.
        """
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        if self._fused_step():
            return loss
        work = self._norms()
        if any(any(item.over) for item in work):
            self._share_norms(work)
        for item in work:
            self._rescale(item)
        self._inner_step()
        return loss

    def _fusable(self) -> bool:
        """Whether the inner optimizer is a plain torch ``SGD(fused=True)`` that LARC may step itself.

        Not when anything could tell the difference: step hooks (its own or global), a
        patched ``step``, AMP's ``grad_scale``, tensor options, nesterov, maximize.
        """
        inner = self.optimizer
        if type(inner) is not torch.optim.SGD or self.distributed_norm or "step" in vars(inner):
            return False
        if inner._optimizer_step_pre_hooks or inner._optimizer_step_post_hooks:
            return False
        if getattr(inner, "grad_scale", None) is not None or getattr(inner, "found_inf", None) is not None:
            return False
        for name in ("_global_optimizer_pre_hooks", "_global_optimizer_post_hooks"):
            hooks = getattr(torch_optimizer, name, None)
            if hooks is None or hooks:
                return False
        for group in inner.param_groups:
            if not group.get("fused") or group.get("maximize") or group.get("differentiable") or group["nesterov"]:
                return False
            if group["params"] and group["params"][0].device.type != "cpu":  # CPU only: saves a look on GPUs
                return False
            if any(isinstance(group.get(key), torch.Tensor) for key in ("lr", "weight_decay", "momentum", "dampening")):
                return False
        return True

    def _fused_step(self) -> bool:
        """LARC and the inner fused SGD in one pass per tensor (CPU float32; see :mod:`.fused`).

        False, with nothing changed, where the inner optimizer or a tensor does not allow
        it. The gradients are left as they are (the scaled gradient is never stored).
        """
        if not self._fusable():
            return False
        inner = self.optimizer
        plan = []
        for index, group in enumerate(inner.param_groups):
            params, grads = with_grads(group["params"])
            if not params:
                continue
            for part in self._layouts.get(index, params).parts:
                members, member_grads = part.pick(params), part.pick(grads)
                if not fused.usable(part, members, member_grads, False):
                    return False
                buffers, fresh = None, []
                if group["momentum"] != 0:
                    buffers = [state.get("momentum_buffer") for state in part.states(inner.state, members)]
                    fresh = [u for u, b in enumerate(buffers) if b is None]
                    kept = [b for b in buffers if b is not None] if fresh else buffers
                    if not all(map(torch.Tensor.is_contiguous, kept)):  # type: ignore[arg-type]
                        return False
                plan.append((group, part, members, member_grads, buffers, fresh))
        for group, part, members, member_grads, buffers, fresh in plan:
            for unit in fresh:
                assert buffers is not None
                buffers[unit] = inner.state[members[unit]]["momentum_buffer"] = torch.zeros_like(members[unit])
            self._fused_part(group, part, members, member_grads, buffers, fresh)
        return True

    def _fused_part(
        self,
        group: dict[str, Any],
        part: Part,
        members: list[torch.Tensor],
        grads: list[torch.Tensor],
        buffers: list[Any] | None,
        fresh: list[int],
    ) -> None:
        lr, weight_decay = group["lr"], group.get("weight_decay", 0.0)
        trust, eps, clip = self.trust_coefficient, self.eps, self.clip

        def block_coefficients(param_norms: torch.Tensor, grad_norms: torch.Tensor) -> tuple[torch.Tensor, Any]:
            scale, adapt = trust_ratios(
                param_norms, grad_norms, trust_coefficient=trust, eps=eps, weight_decay=weight_decay, lr=lr, clip=clip
            )
            return scale, (adapt.to(scale.dtype).mul_(scale).mul_(weight_decay) if weight_decay != 0 else None)

        def single_coefficients(param_norm: float, grad_norm: float) -> tuple[float, float]:
            if param_norm == 0 or grad_norm == 0:
                return 1.0, 0.0
            ratio = param_norm * trust / (param_norm * weight_decay + grad_norm + eps)
            if clip:
                ratio = min(ratio / lr, 1.0) if lr != 0 else 1.0
            return ratio, weight_decay

        fused.step(
            part,
            members,
            grads,
            buffers,
            fresh,
            block_coefficients=block_coefficients,
            single_coefficients=single_coefficients,
            norms=True,
            lr=lr,
            momentum=group["momentum"],
            dampening=group["dampening"],
        )

    def _norms(self) -> list[_GroupWork]:
        work = []
        for index, group in enumerate(self.optimizer.param_groups):
            params, grads = with_grads(group["params"])
            if not params:
                continue
            params, grads, over = local_shards(params, grads, self.distributed_norm)
            for part in self._layouts.get(index, params).parts:
                members, member_grads = part.pick(params), part.pick(grads)
                packed = part.pack(members, "param"), part.pack(member_grads, "grad")
                work.append(_GroupWork(group, part, *packed, member_grads, part.pick(over), index))
        return work

    @staticmethod
    def _share_norms(work: list[_GroupWork]) -> None:
        norms = global_norms(
            [n for item in work for n in (item.param_norms, item.grad_norms)],
            [item.over for item in work for _ in range(2)],
            [[(item.index, kind, position) for position in item.part.order] for item in work for kind in range(2)],
        )
        for i, item in enumerate(work):
            item.param_norms, item.grad_norms = norms[2 * i], norms[2 * i + 1]

    def _rescale(self, item: _GroupWork) -> None:
        weight_decay = item.group.get("weight_decay", 0.0)
        scale, adapt = trust_ratios(
            item.param_norms,
            item.grad_norms,
            trust_coefficient=self.trust_coefficient,
            eps=self.eps,
            weight_decay=weight_decay,
            lr=item.group["lr"],
            clip=self.clip,
        )
        if isinstance(weight_decay, torch.Tensor) or weight_decay != 0:
            decay = adapt.to(scale.dtype).mul_(weight_decay)
            item.grads.addcmul_(item.params, Factors(item.part, decay))
        item.grads.mul_(Factors(item.part, scale))
        item.part.unpack_into(item.targets, "grad")

    def _inner_step(self) -> None:
        groups = self.optimizer.param_groups
        saved = {i: group["weight_decay"] for i, group in enumerate(groups) if "weight_decay" in group}
        try:
            for i in saved:
                groups[i]["weight_decay"] = 0.0
            self.optimizer.step()
        finally:
            for i, weight_decay in saved.items():
                groups[i]["weight_decay"] = weight_decay
