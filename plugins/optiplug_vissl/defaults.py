"""VISSL's defaults for the ``OPTIMIZER`` block (``vissl/config/defaults.yaml``), and merging.

VISSL composes every config onto defaults.yaml with OmegaConf: mappings merge key by key,
everything else (lists included) is replaced. So ``lr`` and ``lr_head`` always carry every
key below, e.g. ``milestones: [30, 60]`` and ``update_interval: epoch``, whatever the user's
schedule is; list items (the parts of a composite) get no defaults.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from optiplug import ConfigError
from optiplug.plugin import join_path

AUTO_LR_SCALING: dict[str, Any] = {
    "auto_scale": False,
    "base_value": 0.1,
    "base_lr_batch_size": 256,
    "scaling_type": "linear",
}

LR_SCHEDULE: dict[str, Any] = {
    "auto_lr_scaling": AUTO_LR_SCALING,
    "name": "multistep",
    "update_interval": "epoch",
    "values": [0.1, 0.01, 0.001],
    "milestones": [30, 60],
    "schedulers": [],
    "interval_scaling": [],
    "lengths": [],
    "start_value": 0.1,
    "end_value": 0.0,
    "value": 0.1,
}

# Keys every merged lr / lr_head schedule carries; a schedule that does not use one ignores it.
SCHEDULE_KEYS = frozenset(LR_SCHEDULE) - {"auto_lr_scaling"}

OPTIMIZER: dict[str, Any] = {
    "name": "sgd",
    "use_zero": False,
    "use_larc": False,
    "larc_config": {"clip": False, "eps": 1e-08, "trust_coefficient": 0.001},
    "weight_decay": 0.0001,
    "momentum": 0.9,
    "nesterov": False,
    "num_epochs": 90,
    "betas": [0.9, 0.999],
    "regularize_bn": False,
    "regularize_bias": True,
    "non_regularized_parameters": [],
    "head_optimizer_params": {"use_different_lr": False, "use_different_wd": False, "weight_decay": 0.0001},
    "param_schedulers": {"lr": LR_SCHEDULE, "lr_head": LR_SCHEDULE},
    "construct_single_param_group_only": False,
    "param_group_constructor": "default",
    "layer_wise_lr_decay": {"decay": 0.9},
}

# DISTRIBUTED defaults, used only for the partner of a key the config does give.
NUM_NODES = 1
NUM_PROC_PER_NODE = 8


def merge(defaults: Mapping[str, Any], user: Mapping[str, Any], path: str = "") -> dict[str, Any]:
    """``user`` merged onto ``defaults`` as OmegaConf does: mappings key by key, the rest replaced.

    A default block (a mapping) given as anything but a mapping is a ConfigError at ``path``.
    """
    out = copy.deepcopy(dict(defaults))
    for key, value in user.items():
        base = out.get(key)
        if isinstance(base, Mapping) and isinstance(value, Mapping):
            out[key] = merge(base, value, join_path(path, str(key)))
        elif isinstance(base, Mapping):
            raise ConfigError(
                f"expected a mapping (or leave the key out for VISSL's defaults), got {value!r}",
                join_path(path, str(key)),
            )
        else:
            out[key] = copy.deepcopy(value)
    return out
