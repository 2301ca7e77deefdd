"""Handing a built recipe to the trainers users already have: Lightning and Hugging Face Transformers.

``built.scheduler`` is a ``torch.optim.lr_scheduler.LRScheduler`` to be stepped once per
optimizer update, so both trainers take it unchanged; these helpers only spell out how
each trainer wants it, and translate the recipe's training-step options (gradient
accumulation, clipping, the run's length) into the trainer's own arguments, since the
trainer, not :meth:`Built.step`, runs the step::

    # Lightning
    class Model(lightning.LightningModule):
        def configure_optimizers(self):
            self.built = optiplug.build("recipe.yaml", self, steps_per_epoch=len(loader), num_epochs=90)
            return lightning_optimizers(self.built)

    trainer = lightning.Trainer(**lightning_trainer_arguments(built), ...)

    # Hugging Face
    built = optiplug.build("recipe.yaml", model, steps_per_epoch=len(loader), num_epochs=3)
    args = TrainingArguments(output_dir="out", **transformers_arguments(built))
    Trainer(model=model, args=args, optimizers=transformers_optimizers(built), ...)

Neither trainer is imported here.
"""

from __future__ import annotations

import math
from typing import Any

from torch.optim import Optimizer

from optiplug.engine.built_result import Built
from optiplug.engine.torch_scheduler import OptiplugScheduler, option_number
from optiplug.errors import ConfigError

LIGHTNING = "Lightning"
TRANSFORMERS = "Hugging Face Transformers"


def lightning_optimizers(built: Built) -> dict[str, Any]:
    """What ``LightningModule.configure_optimizers`` returns: the optimizer and the scheduler, stepped per update.

    ``{"optimizer": built.optimizer, "lr_scheduler": {"scheduler": built.scheduler,
    "interval": "step", "frequency": 1, "name": "optiplug"}}``. Lightning steps it after
    every optimizer step (after each accumulation window), as optiplug's clock counts.
    """
    _check_update_clock(built, LIGHTNING)
    return {
        "optimizer": built.optimizer,
        "lr_scheduler": {"scheduler": built.scheduler, "interval": "step", "frequency": 1, "name": "optiplug"},
    }


def lightning_lr_monitor(**arguments: Any) -> Any:
    """Lightning's ``LearningRateMonitor(**arguments)``, reading Python numbers from groups with tensor options.

    With ``run.compile`` the scheduled options are 0-dim tensors; Lightning's monitor reads
    ``param_group["lr"]`` (and the momentum, the weight decay) itself, so it would keep the
    tensor, the same object at every update, and copy-construct it for ``callback_metrics``.
    This monitor hands it the numbers instead; without ``run.compile`` it is Lightning's.
    """
    from lightning.pytorch.callbacks import LearningRateMonitor

    class NumbersLearningRateMonitor(LearningRateMonitor):
        def _extract_lr(self, param_group: dict[str, Any], name: str) -> dict[str, Any]:
            return super()._extract_lr(_group_numbers(param_group), name)

        def _extract_momentum(self, param_group: dict[str, Any], name: str, use_betas: bool) -> dict[str, float]:
            return super()._extract_momentum(_group_numbers(param_group), name, use_betas)  # type: ignore[arg-type]

        def _extract_weight_decay(self, param_group: dict[str, Any], name: str) -> dict[str, Any]:
            return super()._extract_weight_decay(_group_numbers(param_group), name)

    return NumbersLearningRateMonitor(**arguments)


def _group_numbers(group: dict[str, Any]) -> dict[str, Any]:
    """A param group's options with 0-dim tensors (and pairs of them: betas) read as Python numbers."""
    return {key: value if key == "params" else option_number(value) for key, value in group.items()}


def lightning_trainer_arguments(built: Built) -> dict[str, Any]:
    """``lightning.Trainer`` arguments for the recipe's accumulation, clipping and length.

    ``accumulate_grad_batches`` (the recipe's ``accumulation.steps``), ``max_steps`` (the
    run's updates, when known), and ``gradient_clip_val`` / ``gradient_clip_algorithm``
    when the recipe clips. Lightning clips either by the 2-norm or by value, not both.
    """
    _check_update_clock(built, LIGHTNING)
    arguments: dict[str, Any] = {"accumulate_grad_batches": built.recipe.accumulation.steps}
    arguments |= _max_steps(built)
    clip = built.recipe.clip
    if clip is not None and clip.max_norm is not None and clip.clip_value is not None:
        raise ConfigError(f"{LIGHTNING} clips by norm or by value, not both; keep one", "clip")
    if clip is not None and clip.max_norm is not None:
        _check_two_norm(clip.norm_type, LIGHTNING)
        arguments |= {"gradient_clip_val": clip.max_norm, "gradient_clip_algorithm": "norm"}
    elif clip is not None and clip.clip_value is not None:
        arguments |= {"gradient_clip_val": clip.clip_value, "gradient_clip_algorithm": "value"}
    return arguments


def transformers_optimizers(built: Built) -> tuple[Optimizer, OptiplugScheduler]:
    """``Trainer(optimizers=...)`` of Hugging Face Transformers: ``(built.optimizer, built.scheduler)``.

    The Trainer steps the scheduler after every optimizer update (not after updates its
    mixed-precision scaler skipped), as optiplug's clock counts.
    """
    _check_update_clock(built, TRANSFORMERS)
    return built.optimizer, built.scheduler


def transformers_arguments(built: Built) -> dict[str, Any]:
    """``TrainingArguments`` for the recipe's accumulation, clipping and length.

    ``gradient_accumulation_steps``, ``max_steps`` (when the run's length is known) and
    ``max_grad_norm``: the recipe's ``clip.max_norm``, or 0 when the recipe does not clip
    (the Trainer clips at 1.0 by default). The Trainer has no clipping by value.
    """
    _check_update_clock(built, TRANSFORMERS)
    clip = built.recipe.clip
    if clip is not None and clip.clip_value is not None:
        raise ConfigError(f"{TRANSFORMERS}' Trainer cannot clip by value; use clip.max_norm", "clip.clip_value")
    if clip is not None and clip.max_norm is not None:
        _check_two_norm(clip.norm_type, TRANSFORMERS)
    max_norm = clip.max_norm if clip is not None and clip.max_norm is not None else 0.0
    arguments: dict[str, Any] = {
        "gradient_accumulation_steps": built.recipe.accumulation.steps,
        "max_grad_norm": float(max_norm),
    }
    return arguments | _max_steps(built)


def _max_steps(built: Built) -> dict[str, int]:
    total = built.clock.total_steps
    return {} if total is None else {"max_steps": math.ceil(total)}


def _check_update_clock(built: Built, trainer: str) -> None:
    """A trainer steps the scheduler once per update; MMCV's per-iteration clock cannot be kept."""
    accumulation = built.recipe.accumulation
    if accumulation.steps > 1 and accumulation.schedule_clock == "iterations":
        raise ConfigError(
            f"{trainer} steps the scheduler once per optimizer update, but this recipe's schedules advance once "
            f"per micro-batch (schedule_clock: iterations, {accumulation.steps} micro-batches per update, as MMCV "
            "counts); train with built.step(loss), or set schedule_clock: updates and express the schedules in "
            "updates",
            "accumulation.schedule_clock",
        )


def _check_two_norm(norm_type: float, trainer: str) -> None:
    if float(norm_type) != 2.0:
        raise ConfigError(f"{trainer} clips the 2-norm only, got norm_type {float(norm_type)!r}", "clip.norm_type")
