"""The hooks a plugin implements: the plugin author's reference.

A plugin is a module (or any object) with functions named like the hooks below,
each decorated with :data:`optiplug.hookimpl`, registered through the ``optiplug``
entry-point group of its distribution::

    # pyproject.toml of the plugin package
    [project.entry-points.optiplug]
    lion = "optiplug_lion"

Every hook takes no arguments and returns an iterable of records (see
:mod:`optiplug.plugin_system.records`). Hooks are called once, when the registry is first built;
a hook must be cheap: import heavy modules inside the factories, not at the top.
A name provided by two plugins is an error naming both distributions.
"""

from __future__ import annotations

from collections.abc import Iterable

from optiplug.plugin_system.markers import hookspec
from optiplug.plugin_system.records import DialectSpec, OptimizerSpec, RuleSpec, ScalingRule, ScheduleSpec, WrapperSpec


@hookspec
def optiplug_optimizers() -> Iterable[OptimizerSpec]:
    """Optimizers this plugin provides, by name.

    Called once when the registry is built. Return :class:`~optiplug.OptimizerSpec`
    records; ``factory(params, **kwargs)`` is called with the param groups and the
    config's keyword arguments (already checked against the factory's signature)::

        @optiplug.hookimpl
        def optiplug_optimizers():
            return [optiplug.OptimizerSpec(name="lion", factory=Lion,
                                           description="Lion (Chen et al., 2023)")]
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_schedules() -> Iterable[ScheduleSpec]:
    """Schedules this plugin provides: any group option (lr, momentum, ...) can use them.

    Return :class:`~optiplug.ScheduleSpec` records. ``config_class`` is an attrs class
    whose fields are the schedule's options (the config mapping minus ``name`` and
    ``update_interval``); ``factory(config, context)`` returns an object with a
    ``values(steps)`` method, a pure function of a float64 tensor of update indices::

        @attrs.frozen
        class HalfLife:
            start_value: float
            half_life: float   # in updates

        class HalfLifeSchedule:
            def __init__(self, cfg): self.cfg = cfg
            def values(self, steps):
                return self.cfg.start_value * 0.5 ** (steps / self.cfg.half_life)

        @optiplug.hookimpl
        def optiplug_schedules():
            return [optiplug.ScheduleSpec("half_life", HalfLife,
                                          lambda cfg, ctx: HalfLifeSchedule(cfg))]
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_param_rules() -> Iterable[RuleSpec]:
    """Kinds of param-group rules (which parameters a rule selects).

    Return :class:`~optiplug.RuleSpec` records. A rule in a recipe names its kind
    (``kind: norm``) and carries the kind's fields plus ``set`` (the options it gives
    the matched parameters: ``weight_decay: 0``, ``lr_mult: 10``, ...).
    ``matcher(config)`` is called once per rule and returns a function of
    :class:`~optiplug.ParamInfo`; see :class:`~optiplug.RuleSpec` for what it returns.
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_scaling_rules() -> Iterable[ScalingRule]:
    """How each schedule is moved to a new peak value when the lr is scaled with the batch.

    Return :class:`~optiplug.ScalingRule` records, one per schedule name this plugin
    ships; ``rescale(config, context)`` returns a new config (attrs ``evolve``) whose
    peak is ``context.value``. A schedule without a rule cannot be auto-scaled: the
    recipe gets a ConfigError saying so.
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_wrappers() -> Iterable[WrapperSpec]:
    """Optimizer wrappers (LARC, lookahead, ...) a recipe can put around the optimizer.

    Return :class:`~optiplug.WrapperSpec` records; ``wrap(optimizer, config)`` returns
    a ``torch.optim.Optimizer`` that shares ``param_groups`` with the wrapped one, so
    schedules keep reaching the groups.
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_dialects() -> Iterable[DialectSpec]:
    """Foreign config formats this plugin reads (VISSL, MMCV, ...).

    Return :class:`~optiplug.DialectSpec` records. ``detect(mapping)`` must be cheap and
    never raise; ``translate(mapping, context)`` returns a canonical
    :class:`~optiplug.Recipe` and raises :class:`~optiplug.ConfigError` naming the
    foreign config path for anything it cannot read.
    """
    raise NotImplementedError  # a spec: plugins implement it
