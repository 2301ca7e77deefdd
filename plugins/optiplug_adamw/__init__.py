"""optiplug_adamw: AdamW with decoupled weight decay, adamwr's update rule (paper or torch convention).

Registered as ``adamwr`` (torch's ``AdamW`` keeps the name ``adamw``). The drop-in for
adamwr's class (imported lazily)::

    from optiplug_adamw import AdamW
"""

from __future__ import annotations

from typing import Any

from optiplug import OptimizerSpec, hookimpl

__all__ = ["AdamW"]


@hookimpl
def optiplug_optimizers() -> list[OptimizerSpec]:
    """``adamwr``: adamwr's AdamW (decay by weight_decay alone, or times lr by option)."""
    from optiplug_adamw.optimizer import AdamW

    return [
        OptimizerSpec(
            name="adamwr",
            factory=AdamW,
            description="AdamW as adamwr and the paper: p *= 1 - weight_decay (decay_convention 'torch': 1 - lr * wd)",
        )
    ]


def __getattr__(name: str) -> Any:
    if name == "AdamW":
        from optiplug_adamw.optimizer import AdamW

        return AdamW
    raise AttributeError(f"module 'optiplug_adamw' has no attribute {name!r}")
