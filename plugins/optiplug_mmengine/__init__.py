"""optiplug_mmengine: configs of the MMEngine generation of OpenMMLab, value for value.

* the ``mmengine`` config dialect, read and written (``optiplug convert --to mmengine``):
  ``optim_wrapper`` (OptimWrapper / AmpOptimWrapper, ``optimizer``, ``paramwise_cfg``,
  ``clip_grad``, ``accumulative_counts``),
  ``param_scheduler``, ``train_cfg``, ``auto_scale_lr`` (see docs/plugins/mmengine.md);
* the ``mmengine`` schedule: MMEngine's parameter schedulers chained as its runner steps them;
* the ``mmengine_paramwise`` rule kind (DefaultOptimWrapperConstructor's ``paramwise_cfg``);
* the ``mmdet_layer_decay`` rule kind (mmdet 3.x's LearningRateDecayOptimizerConstructor);
* :func:`grad_scaler`: AmpOptimWrapper's ``loss_scale`` as the GradScaler for ``built.step``.

Written only against the public plugin API (``optiplug.plugin``).
"""

from __future__ import annotations

from optiplug.plugin import DialectSpec, RuleSpec, ScheduleSpec, hookimpl
from optiplug_mmengine.amp import grad_scaler

__all__ = ["grad_scaler"]


@hookimpl
def optiplug_schedules() -> list[ScheduleSpec]:
    """The ``mmengine`` schedule (a chain of MMEngine parameter schedulers)."""
    from optiplug_mmengine.schedulers import schedule_specs

    return schedule_specs()


@hookimpl
def optiplug_param_rules() -> list[RuleSpec]:
    """``mmengine_paramwise``: MMEngine's paramwise_cfg; ``mmdet_layer_decay``: mmdet 3.x's layer decay."""
    from optiplug_mmengine import mmdet_layer_decay
    from optiplug_mmengine.paramwise import rule_specs

    return rule_specs() + mmdet_layer_decay.rule_specs()


@hookimpl
def optiplug_dialects() -> list[DialectSpec]:
    """The ``mmengine`` dialect: a top-level ``optim_wrapper`` dict."""
    from optiplug_mmengine.dialect import PATHS, detect, translate
    from optiplug_mmengine.writer import write

    return [
        DialectSpec(
            "mmengine",
            detect,
            translate,
            "MMEngine configs (optim_wrapper, param_scheduler, train_cfg, auto_scale_lr)",
            priority=10,
            paths=PATHS,
            write=write,
        )
    ]
