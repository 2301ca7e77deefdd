"""optiplug_multi: one optimizer, several algorithms (Muon for matrices, AdamW for the rest).

Rules decide each parameter's algorithm: ``rules: [{kind: ndim, min: 2, set: {optimizer:
muon}}]``, the recipe's optimizer being the default. optiplug then builds this plugin's
``multi`` optimizer (:class:`optiplug_multi.router.MultiOptimizer`): one
``torch.optim.Optimizer`` (one state_dict, one scheduler, wrappers still work) that
steps each group with its algorithm's own optimizer.
"""

from __future__ import annotations

from optiplug.plugin import OptimizerSpec, hookimpl


@hookimpl
def optiplug_optimizers() -> list[OptimizerSpec]:
    """The router ``multi``, built by optiplug when rules set ``optimizer`` (not named in a recipe)."""
    from optiplug_multi.router import MultiOptimizer

    description = "routes each param group to its algorithm's optimizer (rules set `optimizer: <name>`)"
    return [OptimizerSpec(name="multi", factory=MultiOptimizer, description=description)]
