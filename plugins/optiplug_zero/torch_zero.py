"""torch's ``ZeroRedundancyOptimizer``, imported without the warning torch's own import raises.

Importing ``torch.distributed.optim`` (torch 2.13) runs ``@torch.jit.script`` on its
functional optimizers (and ``@torch.jit.interface``), which warn that ``torch.jit`` is
deprecated. Those warnings are about torch's code, not the user's; they are silenced for
this one import.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from torch.distributed.optim import ZeroRedundancyOptimizer


def zero_redundancy_optimizer() -> type[ZeroRedundancyOptimizer]:
    """The ``ZeroRedundancyOptimizer`` class."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`torch\.jit\.\w+` is deprecated", category=DeprecationWarning)
        from torch.distributed.optim import ZeroRedundancyOptimizer
    return ZeroRedundancyOptimizer
