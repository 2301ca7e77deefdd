"""Factories for the ``schedulefree`` package's optimizers, importing it only when one is built.

A schedule-free optimizer has two modes. In train mode the parameters hold ``y``, the
point where gradients are taken; in eval mode they hold ``x``, the average that is
evaluated and saved. The package's optimizers start in eval mode; the factories here
return them in train mode, ready for ``Built.step``, since a model is built for
training. ``Built.train(model)`` / ``Built.eval(model)`` switch the optimizer with the
model, and ``Built.state_dict()`` puts it in eval mode before writing a checkpoint.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Iterable
from typing import Any

import torch

from optiplug.plugin import ConfigError, OptimizerSpec

INSTALL = "pip install schedulefree"

# registered name -> (class in the schedulefree package, description)
OPTIMIZERS: dict[str, tuple[str, str]] = {
    "schedulefree_adamw": ("AdamWScheduleFree", "Schedule-Free AdamW (Defazio et al., 2024), package schedulefree"),
    "schedulefree_sgd": (
        "SGDScheduleFree",
        "Schedule-Free SGD with momentum (Defazio et al., 2024), package schedulefree",
    ),
    "schedulefree_radam": ("RAdamScheduleFree", "Schedule-Free RAdam (no warmup needed), package schedulefree"),
}


def package() -> Any:
    """The ``schedulefree`` module, or a ConfigError at ``optimizer.name`` saying how to install it."""
    try:
        return importlib.import_module("schedulefree")
    except ImportError:
        raise ConfigError(
            f"the schedule-free optimizers need the optional package schedulefree: {INSTALL}", "name"
        ) from None


class ScheduleFreeFactory:
    """``schedulefree.<class_name>(params, **kwargs)`` in train mode; the class's signature once importable."""

    def __init__(self, name: str, class_name: str) -> None:
        self.__name__ = self.__qualname__ = name
        self.class_name = class_name

    def __repr__(self) -> str:
        return f"ScheduleFreeFactory(schedulefree.{self.class_name})"

    def optimizer_class(self) -> type[torch.optim.Optimizer]:
        """The package's class (a ConfigError naming ``pip install schedulefree`` without it)."""
        return getattr(package(), self.class_name)  # type: ignore[no-any-return]

    @property
    def __signature__(self) -> inspect.Signature:
        """The class's signature, so recipes are checked against its arguments; ``(params, **kwargs)`` without it."""
        try:
            return inspect.signature(self.optimizer_class())
        except ConfigError:
            kinds = inspect.Parameter
            return inspect.Signature([kinds("params", kinds.POSITIONAL_OR_KEYWORD), kinds("kwargs", kinds.VAR_KEYWORD)])

    def __call__(self, params: Iterable[Any], **kwargs: Any) -> torch.optim.Optimizer:
        """The optimizer over ``params``, in train mode."""
        optimizer = self.optimizer_class()(params, **kwargs)
        optimizer.train()  # type: ignore[attr-defined]
        return optimizer


def optimizer_specs() -> list[OptimizerSpec]:
    """One record per schedule-free optimizer."""
    return [
        OptimizerSpec(name=name, factory=ScheduleFreeFactory(name, class_name), description=description)
        for name, (class_name, description) in OPTIMIZERS.items()
    ]
