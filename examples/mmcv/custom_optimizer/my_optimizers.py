"""MMSelfSup tutorial, "customized optimizer": your own optimizer, available to every config by its class name.

Import this module before building (your training script's imports do it); then
``optimizer = dict(type='CustomizedOptim', lr=..., ...)`` builds it (see config.py next to it).
"""

import torch
from torch.optim.optimizer import Optimizer

import optiplug


@optiplug.register_optimizer()
class CustomizedOptim(Optimizer):
    """Sign descent with decoupled weight decay: p <- p * (1 - lr * weight_decay) - lr * sign(grad)."""

    def __init__(self, params, lr=1e-3, weight_decay=0.0):
        if lr <= 0:
            raise ValueError(f"lr must be > 0, got {lr}")
        super().__init__(params, dict(lr=lr, weight_decay=weight_decay))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None if closure is None else closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    p.mul_(1 - group["lr"] * group["weight_decay"]).add_(torch.sign(p.grad), alpha=-group["lr"])
        return loss
