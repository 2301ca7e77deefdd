"""optiplug_mmcv: MMCV 1.x / MMSelfSup 0.x configs, value for value.

* the ``mmcv`` config dialect: ``optimizer=dict(type=...)`` with ``paramwise_options`` or
  ``paramwise_cfg``, ``optimizer_config`` (clipping, accumulation), ``lr_config``,
  ``momentum_config``, ``runner`` / ``total_epochs`` (see docs/plugins/mmcv.md);
* every MMCV policy as a schedule any recipe can use: the LR policies ``mmcv_fixed``,
  ``mmcv_step``, ``mmcv_exp``, ``mmcv_poly``, ``mmcv_inv``, ``mmcv_cosine_annealing``,
  ``mmcv_linear_annealing``, ``mmcv_flat_cosine_annealing``, ``mmcv_cosine_restart``,
  ``mmcv_cyclic``, ``mmcv_one_cycle``, MMSelfSup's ``mmcv_step_fix_cosine_annealing``,
  MMDetection's ``mmcv_yolox`` and MMClassification's ``mmcv_cosine_annealing_cooldown``;
  the momentum policies ``mmcv_momentum_step``, ``mmcv_momentum_cosine_annealing``,
  ``mmcv_momentum_linear_annealing``, ``mmcv_momentum_cyclic``, ``mmcv_momentum_one_cycle``;
* the ``mmcv_paramwise`` rule kind (MMCV 1.x ``paramwise_cfg``).
"""

from __future__ import annotations

from optiplug.plugin import DialectSpec, RuleSpec, ScheduleSpec, hookimpl


@hookimpl
def optiplug_schedules() -> list[ScheduleSpec]:
    """MMCV's LR and momentum policies (relative schedules)."""
    from optiplug_mmcv import (
        cosine_restart_policy,
        cyclic_policies,
        lr_policies,
        momentum_policies,
        openmmlab_policies,
    )

    return [
        *lr_policies.schedule_specs(),
        *cosine_restart_policy.schedule_specs(),
        *openmmlab_policies.schedule_specs(),
        *cyclic_policies.schedule_specs(),
        *momentum_policies.schedule_specs(),
    ]


@hookimpl
def optiplug_param_rules() -> list[RuleSpec]:
    """``mmcv_paramwise``: MMCV 1.x's paramwise_cfg."""
    from optiplug_mmcv.paramwise import rule_specs

    return rule_specs()


@hookimpl
def optiplug_dialects() -> list[DialectSpec]:
    """The ``mmcv`` dialect: a top-level ``optimizer`` dict with a ``type``."""
    from optiplug_mmcv.dialect import PATHS, detect, translate
    from optiplug_mmcv.near_miss import near_miss

    return [
        DialectSpec(
            "mmcv",
            detect,
            translate,
            "MMCV 1.x / MMSelfSup 0.x configs (optimizer=dict(type=...), lr_config, ...)",
            paths=PATHS,
            tolerates={"group_options", "option_bounds"},
            near_miss=near_miss,
        )
    ]
