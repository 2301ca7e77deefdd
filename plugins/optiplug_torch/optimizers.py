"""The optimizers of ``torch.optim``, found by walking the module (as MMCV does).

On CPU, ``SGD``, ``Adam``, ``AdamW`` and ``Adagrad`` get ``fused=True`` unless the config
chooses ``foreach`` or ``fused`` itself: torch's fused CPU kernels are 2-6x faster than
its default per-tensor loop, on small and large tensors alike, while ``foreach=True`` on
CPU is faster on small tensors only and up to 3x slower on large ones (measured;
docs/plugins/torch.md). On other devices torch's own default stands.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch

from optiplug import ConfigError, OptimizerSpec

FUSED_ON_CPU = frozenset({"SGD", "Adam", "AdamW", "Adagrad"})
"""The optimizers built with ``fused=True`` when every parameter is a floating-point CPU tensor."""

SPARSE_CAPABLE = frozenset({"SGD", "Adagrad"})
"""Of those, the ones whose loop takes sparse gradients (their fused kernels do not)."""

KERNEL_OPTIONS = ("foreach", "fused")

_PLAIN_TYPES = (torch.Tensor, torch.nn.Parameter)


def torch_optimizers() -> list[OptimizerSpec]:
    """One record per ``torch.optim.Optimizer`` subclass in ``torch.optim``."""
    specs = []
    for name in sorted(dir(torch.optim)):
        cls = getattr(torch.optim, name)
        if inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer:
            doc = (cls.__doc__ or "").strip().split("\n")[0]
            factory = FusedOnCpu(cls) if name in FUSED_ON_CPU and _takes_fused(cls) else cls
            specs.append(OptimizerSpec(name=name, factory=factory, description=f"torch.optim.{name}. {doc}".strip()))
    return specs


def _takes_fused(cls: type) -> bool:
    return "fused" in inspect.signature(cls).parameters


class FusedOnCpu:
    """``cls(params, **kwargs)``, with ``fused=True`` when the caller chose no kernel and all tensors fit.

    "Fit" means: every parameter is a plain floating-point tensor on the CPU, and
    ``differentiable`` is not set. An explicit ``foreach`` or ``fused`` (``null``
    included) is passed through untouched. The factory has the class's signature, so
    configs are checked against the class's arguments.

    Two torch behaviours of fused optimizers are kept as they are for the per-tensor loop:

    * under ``torch.amp.GradScaler`` a step with non-finite gradients is skipped as a
      whole (a fused optimizer would be stepped and skip the update inside its kernel,
      which the scheduler could not tell from a real update);
    * ``SGD`` and ``Adagrad`` take sparse gradients: if any gradient at the first step
      is sparse, the optimizer falls back to the loop for good.
    """

    def __init__(self, cls: Callable[..., torch.optim.Optimizer]) -> None:
        self.optimizer_class = cls
        self.__name__ = self.__qualname__ = cls.__name__
        self.__doc__ = cls.__doc__
        self.__signature__ = inspect.signature(cls)

    def __repr__(self) -> str:
        return f"FusedOnCpu({self.optimizer_class.__module__}.{self.optimizer_class.__name__})"

    def __call__(self, params: Iterable[Any], **kwargs: Any) -> torch.optim.Optimizer:
        """The optimizer over ``params`` (tensors or param-group dicts)."""
        check_kernel_options(kwargs)
        params = list(params)
        if any(key in kwargs for key in KERNEL_OPTIONS) or kwargs.get("differentiable") or not _fusable(params):
            return self.optimizer_class(params, **kwargs)
        optimizer = self.optimizer_class(params, fused=True, **kwargs)
        # GradScaler must skip a non-finite step by not calling step() (see the class docstring).
        optimizer._step_supports_amp_scaling = False  # type: ignore[attr-defined]
        if self.optimizer_class.__name__ in SPARSE_CAPABLE:
            optimizer.register_step_pre_hook(UnfuseOnSparseGradients())
        return optimizer


def check_kernel_options(kwargs: Mapping[str, Any]) -> None:
    """``foreach`` and ``fused`` are true, false or null, and not both true (a ConfigError at the option)."""
    for key in KERNEL_OPTIONS:
        value = kwargs.get(key)
        if value is not None and not isinstance(value, bool):
            raise ConfigError(f"expected true, false or null, got {value!r}", key)
    if kwargs.get("foreach") and kwargs.get("fused"):
        raise ConfigError("foreach and fused cannot both be true; choose one (or neither for the default)", "fused")


def _tensors(params: list[Any]) -> Iterable[Any]:
    for item in params:
        if isinstance(item, Mapping):
            group = item.get("params", ())
            yield from [group] if isinstance(group, torch.Tensor) else group
        else:
            yield item


def _fusable(params: list[Any]) -> bool:
    """Whether torch's fused CPU kernel takes every tensor (and there is at least one)."""
    found = False
    for t in _tensors(params):
        if type(t) not in _PLAIN_TYPES or t.device.type != "cpu" or not torch.is_floating_point(t):
            return False
        found = True
    return found


class UnfuseOnSparseGradients:
    """A step pre-hook, active at the first step only: sparse gradients switch the optimizer to the loop.

    Fused SGD and Adagrad refuse sparse gradients (``nn.Embedding(sparse=True)``); their
    per-tensor loop takes them. Later steps cost one attribute check.
    """

    def __init__(self) -> None:
        self.done = False

    def __call__(self, optimizer: torch.optim.Optimizer, _args: Any, _kwargs: Any) -> None:
        """Before a step: on the first one, unfuse the optimizer if a gradient is sparse."""
        if self.done:
            return
        self.done = True
        sparse = any(p.grad is not None and p.grad.is_sparse for g in optimizer.param_groups for p in g["params"])
        if sparse:
            for group in optimizer.param_groups:
                group["fused"] = False
            optimizer.defaults["fused"] = False
