"""optiplug_vissl: VISSL configs, value for value.

A mapping with a top-level ``OPTIMIZER`` key (a whole VISSL config, its ``config:`` root,
or only that block) is translated into the canonical recipe: VISSL's defaults merged,
``auto_lr_scaling`` applied, ``lr_head`` and the head's weight decay inferred, the
optimizer ClassyVision would build (LARC-wrapped with ``use_larc``), and param groups by
VISSL's default (or ``dino``) constructor::

    built = optiplug.build("swav_8node_resnet.yaml", model, steps_per_epoch=5005)

Provides the dialect ``vissl`` and the param-rule kinds ``vissl_groups`` and ``vissl_head``.
See docs/plugins/vissl.md.
"""

from __future__ import annotations

from optiplug import DialectSpec, RuleSpec, hookimpl


@hookimpl
def optiplug_dialects() -> list[DialectSpec]:
    """The VISSL config dialect."""
    from optiplug_vissl.dialect import detect, translate_vissl

    return [
        DialectSpec(
            name="vissl",
            detect=detect,
            translate=translate_vissl,
            description="VISSL / ClassyVision OPTIMIZER configs (defaults, auto_lr_scaling, head groups, LARC)",
        )
    ]


@hookimpl
def optiplug_param_rules() -> list[RuleSpec]:
    """VISSL's param-group constructors, as rule kinds the dialect emits."""
    from optiplug_vissl.groups import rule_specs

    return rule_specs()
