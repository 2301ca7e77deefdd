"""optiplug_larc: LARC around any optimizer, and the LARS optimizers of MMSelfSup and VISSL.

Provides the wrapper ``larc`` (apex's LARC: clip or scale mode, zero-norm parameters
skipped, optional all-reduced norms) and the optimizers ``LARS`` (MMSelfSup's, with the
``lars_exclude`` group key) and ``vissl_lars`` (VISSL's / Barlow Twins'). All of them
compute norms and trust ratios with multi-tensor kernels and no host synchronisation;
on the CPU, LARC around ``SGD(fused=True)`` and ``LARS(fused=True)`` step through
torch's fused SGD kernel instead (module ``fused``).
"""

from __future__ import annotations

from optiplug import OptimizerSpec, WrapperSpec, hookimpl


@hookimpl
def optiplug_wrappers() -> list[WrapperSpec]:
    """The ``larc`` wrapper."""
    from optiplug_larc.config import LarcConfig, wrap_larc

    return [
        WrapperSpec(
            name="larc",
            config_class=LarcConfig,
            wrap=wrap_larc,
            description="LARC (apex): layer-wise adaptive rate control around any optimizer",
        )
    ]


@hookimpl
def optiplug_optimizers() -> list[OptimizerSpec]:
    """``LARS`` (MMSelfSup) and ``vissl_lars`` (VISSL, Barlow Twins)."""
    from optiplug_larc.lars import LARS
    from optiplug_larc.vissl_lars import VisslLARS

    return [
        OptimizerSpec(
            name="LARS",
            factory=LARS,
            description="LARS as in MMSelfSup: lr inside momentum, eps, lars_exclude group key",
            group_options=("lars_exclude",),
        ),
        OptimizerSpec(
            name="vissl_lars",
            factory=VisslLARS,
            description="LARS as in VISSL / Barlow Twins: ratio on the decayed grad, mu from zeros, no eps",
        ),
    ]


_CLASSES = {"LARC": "optiplug_larc.larc", "LARS": "optiplug_larc.lars", "VisslLARS": "optiplug_larc.vissl_lars"}

__all__ = ["LARC", "LARS", "VisslLARS", "optiplug_optimizers", "optiplug_wrappers"]


def __getattr__(name: str) -> object:
    """``from optiplug_larc import LARC`` (and LARS, VisslLARS), imported on first use."""
    if name in _CLASSES:
        import importlib

        return getattr(importlib.import_module(_CLASSES[name]), name)
    raise AttributeError(f"module 'optiplug_larc' has no attribute {name!r}")
