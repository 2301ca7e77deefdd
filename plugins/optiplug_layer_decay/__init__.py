"""optiplug_layer_decay: layer-wise lr decay as a param-rule kind (``kind: layer_decay``).

Each parameter gets a depth from its name (stem 0, block k -> k + 1, head L + 1) and
``lr_mult = decay ** (num_layers + 1 - depth)``, written into the group's real lr.
"""

from __future__ import annotations

from optiplug import RuleSpec, hookimpl


@hookimpl
def optiplug_param_rules() -> list[RuleSpec]:
    """The ``layer_decay`` rule kind."""
    from optiplug_layer_decay.rule import LayerDecayRule, compile_layer_decay

    return [
        RuleSpec(
            "layer_decay",
            LayerDecayRule,
            compile_layer_decay,
            "lr_mult = decay ** (num_layers + 1 - depth), depth from the parameter's name",
        )
    ]
