"""optiplug_vissl: VISSL configs, value for value.

A mapping with a top-level ``OPTIMIZER`` key (a whole VISSL config, its ``config:`` root,
or only that block) is translated into the canonical recipe: VISSL's defaults merged,
``auto_lr_scaling`` applied, ``lr_head`` and the head's weight decay inferred, the
optimizer ClassyVision would build (LARC-wrapped with ``use_larc``, sharded with
``use_zero``), and param groups by VISSL's constructor (``default``, ``dino``,
``lr_decay``, ``linear_eval_heads``)::

    built = optiplug.build("swav_8node_resnet.yaml", model, steps_per_epoch=5005)

Provides the dialect ``vissl``, the param-rule kinds ``vissl_groups``, ``vissl_head``,
``vissl_linear_eval_heads`` and ``vissl_frozen``, and the optimizer ``rmsprop_tf``
(ClassyVision's TensorFlow-style RMSProp). See docs/plugins/vissl.md.
"""

from __future__ import annotations

from optiplug import DialectSpec, OptimizerSpec, RuleSpec, hookimpl


@hookimpl
def optiplug_dialects() -> list[DialectSpec]:
    """The VISSL config dialect."""
    from optiplug_vissl.dialect import detect, translate_vissl
    from optiplug_vissl.near_miss import near_miss

    return [
        DialectSpec(
            name="vissl",
            detect=detect,
            translate=translate_vissl,
            description="VISSL / ClassyVision OPTIMIZER configs (defaults, auto_lr_scaling, head groups, LARC)",
            near_miss=near_miss,
        )
    ]


@hookimpl
def optiplug_param_rules() -> list[RuleSpec]:
    """VISSL's param-group constructors, as rule kinds the dialect emits."""
    from optiplug_vissl import groups, heads

    return groups.rule_specs() + heads.rule_specs()


@hookimpl
def optiplug_optimizers() -> list[OptimizerSpec]:
    """ClassyVision's ``rmsprop_tf``."""
    from optiplug_vissl.rmsprop_tf import RMSpropTF

    return [
        OptimizerSpec(
            name="rmsprop_tf",
            factory=RMSpropTF,
            description="RMSProp with eps inside the square root (TensorFlow / ClassyVision rmsprop_tf)",
        )
    ]
