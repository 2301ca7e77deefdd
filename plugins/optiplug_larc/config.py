"""The ``larc`` wrapper's options, as written in a recipe's ``wrappers:`` list."""

from __future__ import annotations

import attrs
from torch.optim import Optimizer

from optiplug.plugin import help_field as field
from optiplug.plugin import non_negative, positive


@attrs.frozen
class LarcConfig:
    """LARC's options (apex's defaults): ``{name: larc, trust_coefficient: 0.001, clip: false}``."""

    trust_coefficient: float = field(
        "The trust coefficient η: a = η‖p‖ / (‖g‖ + wd‖p‖ + eps). VISSL uses 0.001.",
        default=0.02,
        validator=positive(),
    )
    clip: bool = field(
        "Clip mode: the effective lr is min(lr, a) (a = min(a/lr, 1)); false: scale mode, lr·a.",
        default=True,
    )
    eps: float = field(
        "Added to the trust ratio's denominator.",
        default=1e-8,
        validator=non_negative(),
    )
    distributed_norm: bool = field(
        "Norms are sqrt of sums of squares all-reduced over the default process group (sharded params, FSDP).",
        default=False,
    )


def wrap_larc(optimizer: Optimizer, config: LarcConfig | None) -> Optimizer:
    """The ``WrapperSpec.wrap`` of ``larc``: ``optimizer`` inside a :class:`~optiplug_larc.larc.LARC`."""
    from optiplug_larc.larc import LARC

    config = config or LarcConfig()
    return LARC(optimizer, **attrs.asdict(config))
