"""The optimizers of ``torch.optim``, found by walking the module (as MMCV does)."""

from __future__ import annotations

import inspect

import torch

from optiplug import OptimizerSpec


def torch_optimizers() -> list[OptimizerSpec]:
    """One record per ``torch.optim.Optimizer`` subclass in ``torch.optim``."""
    specs = []
    for name in sorted(dir(torch.optim)):
        cls = getattr(torch.optim, name)
        if inspect.isclass(cls) and issubclass(cls, torch.optim.Optimizer) and cls is not torch.optim.Optimizer:
            doc = (cls.__doc__ or "").strip().split("\n")[0]
            specs.append(OptimizerSpec(name=name, factory=cls, description=f"torch.optim.{name}. {doc}".strip()))
    return specs
