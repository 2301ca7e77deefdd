"""The hooks a plugin implements: the plugin author's reference.

A plugin is a module (or any object) with functions named like the hooks below,
each decorated with :data:`optiplug.plugin.hookimpl`, registered through the
``optiplug`` entry-point group of its distribution::

    # pyproject.toml of the plugin package
    [project.entry-points.optiplug]
    lion = "optiplug_lion"

A plugin imports from :mod:`optiplug.plugin` (and the user API in :mod:`optiplug`)
only; the modules behind them are private. Every hook takes no arguments and returns
an iterable of records (see :mod:`optiplug.plugin_system.records`). Hooks are called
once, when the registry is first built; a hook must be cheap: import heavy modules
inside the hook or the factories, not at the top. A name provided by two plugins is a
clash: listed by ``optiplug plugins``, an error naming both distributions where a config
uses it.
"""

from __future__ import annotations

from collections.abc import Iterable

from optiplug.plugin_system.markers import hookspec
from optiplug.plugin_system.records import DialectSpec, OptimizerSpec, RuleSpec, ScalingRule, ScheduleSpec, WrapperSpec


@hookspec
def optiplug_optimizers() -> Iterable[OptimizerSpec]:
    """Optimizers this plugin provides, by name.

    Called once when the registry is built. Return :class:`~optiplug.plugin.OptimizerSpec`
    records; ``factory(params, **kwargs)`` is called with the param groups and the
    config's keyword arguments (already checked against the factory's signature), so a
    recipe's ``optimizer: {name: lion, lr: 1.0e-4}`` calls ``Lion(groups, lr=1e-4)``::

        from optiplug.plugin import OptimizerSpec, hookimpl

        @hookimpl
        def optiplug_optimizers():
            from optiplug_lion.lion import Lion  # a torch.optim.Optimizer, imported only here
            return [OptimizerSpec(name="lion", factory=Lion, description="Lion (Chen et al., 2023)")]
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_schedules() -> Iterable[ScheduleSpec]:
    """Schedules this plugin provides: any group option (lr, momentum, ...) can use them.

    Return :class:`~optiplug.plugin.ScheduleSpec` records. ``config_class`` is an attrs
    class whose fields are the schedule's options (the config mapping minus ``name`` and
    ``update_interval``); ``factory(config, context)`` returns an object with a
    ``values(steps)`` method, a pure function of a float64 tensor of update indices.
    ``context.clock`` gives the run's length (:func:`~optiplug.plugin.progress` is
    ``steps / total_steps``); a recipe then writes ``lr: {name: half_life, start_value:
    0.1, half_life: 1000}``::

        import attrs
        from optiplug.plugin import ScheduleSpec, help_field, hookimpl, positive

        @attrs.frozen
        class HalfLife:
            start_value: float = help_field("Value at update 0.")
            half_life: float = help_field("Updates to halve the value.", validator=positive())

        class HalfLifeSchedule:
            def __init__(self, config, context):
                self.config = config

            def values(self, steps):
                return self.config.start_value * 0.5 ** (steps / self.config.half_life)

        @hookimpl
        def optiplug_schedules():
            return [ScheduleSpec("half_life", HalfLife, HalfLifeSchedule, "halves every half_life updates")]
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_param_rules() -> Iterable[RuleSpec]:
    """Kinds of param-group rules (which parameters a rule selects).

    Return :class:`~optiplug.plugin.RuleSpec` records. A rule in a recipe names its kind
    (``kind: norm``) and carries the kind's fields plus ``set`` (the options it gives
    the matched parameters: ``weight_decay: 0``, ``lr_mult: 10``, ...).
    ``matcher(config)`` is called once per rule and returns a function of
    :class:`~optiplug.plugin.ParamInfo`: False or None (no match), True (the rule's
    ``set`` applies) or a mapping of options (applied before ``set``). With the kind
    below, ``{kind: embedding, min_rows: 1000, set: {weight_decay: 0}}`` exempts large
    embedding tables from weight decay::

        import attrs
        from torch import nn
        from optiplug.plugin import RuleSpec, help_field, hookimpl

        @attrs.frozen
        class EmbeddingRule:
            min_rows: int = help_field("Only tables with at least this many rows.", default=0)

        def embedding_matcher(config):
            def matches(info):
                return isinstance(info.module, nn.Embedding) and info.param.shape[0] >= config.min_rows
            return matches

        @hookimpl
        def optiplug_param_rules():
            return [RuleSpec("embedding", EmbeddingRule, embedding_matcher, "parameters of nn.Embedding")]
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_scaling_rules() -> Iterable[ScalingRule]:
    """How each schedule is moved to a new peak value when the lr is scaled with the batch.

    Return :class:`~optiplug.plugin.ScalingRule` records, one per schedule name this
    plugin ships (``name`` is the schedule's name); ``rescale(config, context)`` takes
    the whole :class:`~optiplug.plugin.ScheduleConfig` (its options in ``config.params``)
    and returns a new one whose peak is ``context.value``. A schedule without a rule
    cannot be auto-scaled: the recipe gets a ConfigError saying so. For the
    ``half_life`` schedule of :func:`optiplug_schedules`::

        from optiplug.plugin import ScalingRule, evolve_params, hookimpl

        def rescale_half_life(config, context):
            return evolve_params(config, start_value=context.value)

        @hookimpl
        def optiplug_scaling_rules():
            return [ScalingRule("half_life", rescale_half_life, "the start value becomes the scaled peak")]
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_wrappers() -> Iterable[WrapperSpec]:
    """Optimizer wrappers (LARC, lookahead, ...) a recipe can put around the optimizer.

    Return :class:`~optiplug.plugin.WrapperSpec` records; ``wrap(optimizer, config)``
    (``config`` an instance of ``config_class``) returns a ``torch.optim.Optimizer``
    that shares ``param_groups`` with the wrapped one, so schedules keep reaching the
    groups. The simplest wrapper returns the optimizer itself with a hook added;
    ``wrappers: [{name: clamp_weights, limit: 0.01}]`` clamps every parameter after each
    update, as WGAN does::

        import attrs
        import torch
        from optiplug.plugin import WrapperSpec, help_field, hookimpl, positive

        @attrs.frozen
        class ClampWeights:
            limit: float = help_field("Parameters are clamped to [-limit, limit].", validator=positive())

        def clamp_weights(optimizer, config):
            @torch.no_grad()
            def clamp(opt, args, kwargs):
                for group in opt.param_groups:
                    for param in group["params"]:
                        param.clamp_(-config.limit, config.limit)
            optimizer.register_step_post_hook(clamp)
            return optimizer

        @hookimpl
        def optiplug_wrappers():
            return [WrapperSpec("clamp_weights", ClampWeights, clamp_weights, "clamp parameters after each update")]
    """
    raise NotImplementedError  # a spec: plugins implement it


@hookspec
def optiplug_dialects() -> Iterable[DialectSpec]:
    """Foreign config formats this plugin reads (VISSL, MMCV, ...).

    Return :class:`~optiplug.plugin.DialectSpec` records. ``detect(mapping)`` must be
    cheap and never raise; the dialect with the highest ``priority`` whose ``detect``
    says yes translates. ``translate(mapping, context)`` returns a canonical
    :class:`~optiplug.plugin.Recipe` and raises :class:`~optiplug.plugin.ConfigError`
    naming the foreign config path for anything it cannot read; ``build()`` then checks
    the recipe and renames the paths of its own errors with ``paths`` (``optimizer: SGD
    refused the arguments`` reads ``opt: ...`` below). A dialect for flat configs such as
    ``{opt: sgd, lr: 0.1, epochs: 90}``::

        from optiplug.plugin import DialectSpec, Recipe, hookimpl, structure_config

        def detect(mapping):
            return "opt" in mapping and "optimizer" not in mapping

        def translate(mapping, context):
            optimizer = context.registry.optimizers.get(mapping["opt"], "opt")  # unknown: a ConfigError at "opt"
            lr = mapping.get("lr", 0.1)
            recipe = {
                "optimizer": {"name": optimizer.name, "lr": lr},
                "schedules": {"lr": {"name": "cosine", "start_value": lr, "end_value": 0.0}},
                "run": {"num_epochs": mapping.get("epochs")},
            }
            return structure_config(recipe, Recipe, context.registry)

        @hookimpl
        def optiplug_dialects():
            paths = {"optimizer": "opt", "optimizer.lr": "lr"}  # for the errors of build()'s own checks
            return [DialectSpec("flat", detect, translate, "opt/lr/epochs configs", paths=paths)]
    """
    raise NotImplementedError  # a spec: plugins implement it
