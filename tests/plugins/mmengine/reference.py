"""MMEngine itself as the reference: its OptimWrapper and param schedulers stepping a real torch optimizer.

The runner's parts that matter for values are replayed here as MMEngine's Runner and
ParamSchedulerHook run them: ``auto_scale_lr`` before the schedulers are built, the
missing ``end`` set to the train loop's max epochs / iterations, schedulers built by
MMEngine's registry (``convert_to_iter_based`` with the epoch length), then after each
iteration the iteration-based schedulers step, and at an epoch's end the epoch-based ones.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
import torch
from torch import nn

mmengine_optim = pytest.importorskip("mmengine.optim", reason="mmengine is not installed (pip install mmengine)")


def run_mmengine(
    config: dict[str, Any], model: nn.Module, epoch_length: int, *, option: str = "lr", batch_size: int | None = None
) -> list[list[float]]:
    """Each group's ``option`` (beta1 for 'betas') at every iteration of the run under MMEngine."""
    return [
        [g["betas"][0] if option == "betas" else g[option] for g in groups]
        for groups in iterate_mmengine(config, model, epoch_length, batch_size=batch_size)
    ]


def cpu_optim_wrapper(optim_wrapper: dict[str, Any]) -> dict[str, Any]:
    """``optim_wrapper`` as MMEngine builds it on this machine, for comparing the scheduled options.

    MMEngine's AmpOptimWrapper asserts a GPU; its loss scale changes no lr, momentum or
    weight decay, so without one the same optimizer is built in a plain OptimWrapper.
    """
    wrapper = copy.deepcopy(optim_wrapper)
    if wrapper.get("type") == "AmpOptimWrapper" and not torch.cuda.is_available():
        wrapper["type"] = "OptimWrapper"
        wrapper.pop("loss_scale", None)
        wrapper.pop("dtype", None)
    return wrapper


def iterate_mmengine(
    config: dict[str, Any], model: nn.Module, epoch_length: int, *, batch_size: int | None = None
) -> Iterator[list[dict[str, Any]]]:
    """MMEngine's optimizer param groups at every iteration of the run, before that iteration's update."""
    from mmengine.registry import PARAM_SCHEDULERS

    wrapper = mmengine_optim.build_optim_wrapper(model, cpu_optim_wrapper(config["optim_wrapper"]))
    scale = config.get("auto_scale_lr")
    if scale and scale.get("enable", False):
        ratio = float(batch_size) / float(scale["base_batch_size"])  # type: ignore[arg-type]
        for group in wrapper.optimizer.param_groups:
            group["lr"] = group["lr"] * ratio
    train = config["train_cfg"]
    # Runner.build_train_loop: a type, else by_epoch (which the runner requires then; optiplug defaults it to True)
    by_epoch_loop = train["type"] != "IterBasedTrainLoop" if "type" in train else train.get("by_epoch", True)
    max_epochs = train.get("max_epochs") if by_epoch_loop else 1  # IterBasedTrainLoop.max_epochs is 1
    max_iters = train["max_iters"] if not by_epoch_loop else max_epochs * epoch_length
    schedulers = config.get("param_scheduler") or []
    if isinstance(schedulers, dict):
        schedulers = [schedulers]
    built = []
    for item in schedulers:
        item = copy.deepcopy(item)
        item.setdefault("end", max_epochs if item.get("by_epoch", True) else max_iters)
        built.append(PARAM_SCHEDULERS.build(item, default_args={"optimizer": wrapper, "epoch_length": epoch_length}))
    for i in range(max_iters):
        yield wrapper.optimizer.param_groups
        wrapper.optimizer.step()
        for s in built:
            if not s.by_epoch:
                s.step()
        if by_epoch_loop and (i + 1) % epoch_length == 0:
            for s in built:
                if s.by_epoch:
                    s.step()
