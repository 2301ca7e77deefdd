"""The canonical recipe: attrs classes for everything optiplug builds.

A recipe written as YAML::

    optimizer: {name: sgd, lr: 0.1, momentum: 0.9, weight_decay: 1.0e-4}
    rules:
      - {kind: norm, set: {weight_decay: 0}}
      - {kind: bias, set: {weight_decay: 0}}
    schedules:
      lr:
        name: composite
        schedulers:
          - {name: linear, start_value: 0.01, end_value: 0.1}
          - {name: cosine, start_value: 0.1, end_value: 0.0}
        lengths: [0.1, 0.9]
        interval_scaling: [rescaled, fixed]
    run: {num_epochs: 90}

Schedules, rules and wrappers name a plugin-provided kind; their remaining keys are
structured into that kind's own config class.
"""

from __future__ import annotations

from typing import Any

import attrs

from optiplug.errors import ConfigError
from optiplug.recipe.strict_converter import NormType
from optiplug.recipe.validators import help_field, in_range, non_negative, one_of, positive

INTERVALS = ("step", "epoch")
RESUME_POLICIES = ("strict", "rescale", "extend", "branch")
"""How a state saved under another recipe or run length is resumed (optiplug.engine.resume)."""


@attrs.frozen
class OptimizerConfig:
    """The optimizer: a registered name and the keyword arguments for its constructor."""

    name: str = help_field("Registered optimizer name (case-insensitive): sgd, adamw, lars, ...", default="sgd")
    kwargs: dict[str, Any] = help_field(
        "Constructor keyword arguments (lr, momentum, weight_decay, betas, ...), written beside name.",
        factory=dict,
    )


@attrs.frozen
class ScheduleConfig:
    """A schedule for one group option: a registered schedule name and its options."""

    name: str = help_field("Registered schedule name: constant, cosine, linear, multistep, composite, ...")
    params: Any = help_field("The schedule's own options, written beside name.", default=None)
    update_interval: str = help_field(
        "'step' changes the value every update; 'epoch' holds the value of the epoch's first update.",
        default="step",
        validator=one_of(INTERVALS),
    )


@attrs.frozen
class RuleConfig:
    """A param-group rule: which parameters (the kind and its fields) get which options."""

    kind: str = help_field("Rule kind: regex, norm, bias, ndim, module_type, module_path, ...")
    params: Any = help_field("The kind's own fields (pattern, ...), written beside kind.", default=None)
    set: dict[str, Any] = help_field(
        "Options for the matched parameters: a value (weight_decay: 0) fixes the option; "
        "a multiplier (lr_mult: 10, decay_mult: 0) scales the optimizer's value and its schedule. "
        "Later rules win.",
        factory=dict,
    )
    schedules: dict[str, ScheduleConfig] = help_field(
        "Schedules used instead of the recipe's for the matched parameters, by option.", factory=dict
    )
    label: str | None = help_field("A name for the rule in group summaries.", default=None)


@attrs.frozen
class WrapperConfig:
    """An optimizer wrapper (larc, ...) and its options."""

    name: str = help_field("Registered wrapper name, e.g. larc.")
    params: Any = help_field("The wrapper's own options, written beside name.", default=None)


@attrs.frozen
class ScalingConfig:
    """Scaling of the lr with the global batch: value = base_value * (batch / base_batch_size)[**0.5]."""

    base_batch_size: int = help_field("Batch size for which base_value is given.", validator=positive())
    base_value: float | None = help_field(
        "The lr at base_batch_size; default: the optimizer's lr.", default=None, validator=non_negative()
    )
    method: str = help_field(
        "'linear' or 'sqrt' scaling of the batch ratio.", default="linear", validator=one_of(("linear", "sqrt"))
    )
    option: str = help_field("The scheduled option to scale.", default="lr")


@attrs.frozen
class ClipConfig:
    """Gradient clipping before every update."""

    max_norm: float | None = help_field(
        "Clip the total gradient norm to this value.", default=None, validator=positive()
    )
    norm_type: NormType = help_field(
        "The p of the p-norm (2.0; the largest element: inf).", default=NormType(2.0), validator=positive()
    )
    clip_value: float | None = help_field("Clip each gradient element to [-v, v].", default=None, validator=positive())


@attrs.frozen
class AccumulationConfig:
    """Gradient accumulation: one update every ``steps`` calls of ``Built.step``."""

    steps: int = help_field("Micro-batches per update.", default=1, validator=positive())
    schedule_clock: str = help_field(
        "'updates': schedules advance once per update; 'iterations': once per micro-batch (MMCV).",
        default="updates",
        validator=one_of(("updates", "iterations")),
    )


@attrs.frozen
class FreezeConfig:
    """Parameters held out of the first updates: their gradients are dropped before each such update.

    Dropped means set to None, so the optimizer skips them: no momentum is built, no weight
    decay applied (MMSelfSup's ``frozen_layers_cfg``; an lr of 0 would still decay them).
    """

    match: RuleConfig = help_field(
        "The parameters, selected as a rule selects them: a kind and its fields (no set, no schedules)."
    )
    until: int = help_field(
        "The schedules' step from which they train: frozen while it is below this "
        "(updates; iterations with accumulation.schedule_clock: iterations, as MMCV counts).",
        validator=positive(),
    )


def _above_one(_instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
    if not value > 1:
        raise ConfigError(f"must be > 1, got {value!r}", attribute.name)


@attrs.frozen
class LossScaleConfig:
    """fp16 loss scaling done by ``Built.step``: torch.amp.GradScaler's dynamic scale, or a static one.

    ``step(loss)`` multiplies the loss by the scale before ``backward``, divides the
    gradients by it before clipping, and skips an update whose gradients are not finite.
    """

    dynamic: bool = help_field(
        "True: the scale backs off on inf/NaN and grows after growth_interval finite updates "
        "(torch.amp.GradScaler); false: init_scale stays, every update (MMCV's loss_scale=512.).",
        default=True,
    )
    init_scale: float = help_field(
        "The scale at the first update (the whole run's when static).", default=65536.0, validator=positive()
    )
    growth_factor: float = help_field(
        "Dynamic: the scale's factor after growth_interval finite updates.", default=2.0, validator=_above_one
    )
    backoff_factor: float = help_field(
        "Dynamic: the scale's factor after an update with inf/NaN gradients.",
        default=0.5,
        validator=[positive(), in_range(0.0, 1.0, high_open=True)],
    )
    growth_interval: int = help_field(
        "Dynamic: finite updates in a row before the scale grows.", default=2000, validator=positive()
    )
    enabled: bool = help_field("False: no scaling at all (GradScaler(enabled=False)).", default=True)


@attrs.frozen
class RunConfig:
    """The run's length and batch, when the config says them (build() arguments win)."""

    num_epochs: int | None = help_field("Training epochs.", default=None, validator=positive())
    steps_per_epoch: int | None = help_field(
        "Batches per epoch, len(loader): built.step calls; accumulation.steps of them make an update.",
        default=None,
        validator=positive(),
    )
    total_steps: int | None = help_field(
        "Length of the run in batches (built.step calls), when not a whole number of epochs.",
        default=None,
        validator=positive(),
    )
    batch_size_per_device: int | None = help_field("Samples per device per step.", default=None, validator=positive())
    world_size: int | None = help_field("Number of devices (processes).", default=None, validator=positive())
    devices_per_node: int | None = help_field("Devices on one node.", default=None, validator=positive())
    resume: str = help_field(
        "How built.load_state_dict continues a state saved under another recipe or run length: strict (refuse, "
        "naming what changed), rescale (the saved progress mapped onto the new length), extend (the values so far "
        "kept, the new schedules from the saved update on), branch (the cooldown starts at the saved update, for "
        "schedules that offer it).",
        default="strict",
        validator=one_of(RESUME_POLICIES),
    )
    compile: bool | None = help_field(
        "For torch.compile of the optimizer step: every scheduled option a 0-dim tensor written in place, so the "
        "compiled step does not recompile at each update (the optiplug_compile plugin; build(compile=...) wins).",
        default=None,
        validator=attrs.validators.optional(attrs.validators.instance_of(bool)),
    )


@attrs.frozen
class Recipe:
    """Everything optiplug builds: optimizer, param-group rules, schedules, and the training-step options."""

    optimizer: OptimizerConfig = help_field("The optimizer and its arguments.", factory=OptimizerConfig)
    rules: list[RuleConfig] = help_field("Param-group rules, applied in order (later rules win).", factory=list)
    schedules: dict[str, ScheduleConfig] = help_field(
        "Schedules by the group option they drive: lr, momentum (beta1 for Adam-type), weight_decay, ...",
        factory=dict,
    )
    lr_scaling: ScalingConfig | None = help_field("Scale the lr schedule with the global batch.", default=None)
    clip: ClipConfig | None = help_field("Gradient clipping.", default=None)
    accumulation: AccumulationConfig = help_field("Gradient accumulation.", factory=AccumulationConfig)
    wrappers: list[WrapperConfig] = help_field("Optimizer wrappers, innermost first (larc, ...).", factory=list)
    freeze: list[FreezeConfig] = help_field(
        "Parameters frozen for the first updates (gradients dropped, so the optimizer skips them).", factory=list
    )
    loss_scale: LossScaleConfig | None = help_field(
        "fp16 loss scaling done by Built.step (dynamic or static); none by default.", default=None
    )
    run: RunConfig = help_field("Length and batch of the run.", factory=RunConfig)
