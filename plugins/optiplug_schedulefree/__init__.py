"""optiplug_schedulefree: the schedule-free optimizers (Defazio et al., 2024) of the ``schedulefree`` package.

Optimizers: ``schedulefree_adamw``, ``schedulefree_sgd``, ``schedulefree_radam``
(``schedulefree.AdamWScheduleFree``, ``SGDScheduleFree``, ``RAdamScheduleFree``). The
package is optional and imported only when a recipe names one of them; without it the
build fails with a ConfigError saying ``pip install schedulefree``.
"""

from __future__ import annotations

from optiplug.plugin import OptimizerSpec, hookimpl


@hookimpl
def optiplug_optimizers() -> list[OptimizerSpec]:
    """The schedule-free optimizers (their factories import ``schedulefree`` when called)."""
    from optiplug_schedulefree.optimizers import optimizer_specs

    return optimizer_specs()
