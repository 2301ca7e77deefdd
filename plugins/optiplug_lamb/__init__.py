"""optiplug_lamb: LAMB (You et al., 2019), as MMClassification 0.x / mmpretrain and timm compute it.

Registered as ``Lamb`` (names are case-insensitive: ``lamb`` finds it too), so an MMCV
config's ``optimizer = dict(type='Lamb', ...)`` builds it. The class::

    from optiplug_lamb import Lamb
"""

from __future__ import annotations

from typing import Any

from optiplug import OptimizerSpec, hookimpl

__all__ = ["Lamb"]


@hookimpl
def optiplug_optimizers() -> list[OptimizerSpec]:
    """``Lamb``: layer-wise adaptive Adam with global grad-norm clipping (timm / mmcls semantics)."""
    from optiplug_lamb.optimizer import Lamb

    return [
        OptimizerSpec(
            name="Lamb",
            factory=Lamb,
            description=(
                "LAMB (You et al., 2019) as timm / MMClassification: Adam update plus weight decay, scaled by "
                "||p|| / ||update|| per parameter, after clipping the global grad norm to max_grad_norm"
            ),
        )
    ]


def __getattr__(name: str) -> Any:
    if name == "Lamb":
        from optiplug_lamb.optimizer import Lamb

        return Lamb
    raise AttributeError(f"module 'optiplug_lamb' has no attribute {name!r}")
