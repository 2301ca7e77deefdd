"""The few ``MODEL`` keys of a VISSL config that decide param groups and sharding.

* ``MODEL.TRUNK.NAME`` (VISSL's default ``resnet``): which naming the ``lr_decay``
  constructor reads depths from; ``vision_transformer`` or ``resnet``.
* ``MODEL.TRUNK.VISION_TRANSFORMERS.NUM_LAYERS``: L for a vision transformer's ``lr_decay``.
* ``MODEL.NON_TRAINABLE_PARAMS``: parameter names frozen before training.
* ``MODEL.SHARDED_DDP_SETUP.USE_SDP``: VISSL then forces ``OPTIMIZER.use_zero``.
* ``MODEL.FSDP_CONFIG.AUTO_SETUP_FSDP``: VISSL then forces
  ``OPTIMIZER.construct_single_param_group_only`` and, with ``use_larc``, ``name: sgd_fsdp``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from optiplug import ConfigError
from optiplug.plugin import did_you_mean, join_path
from optiplug_vissl.config_readers import flag, section, strings, whole

VIT, RESNET = "vision_transformer", "resnet"
TRUNKS = (VIT, RESNET)


@attrs.frozen
class ModelKeys:
    """The MODEL keys read, and the path of the MODEL block (for messages)."""

    path: str
    trunk: str | None = None
    vit_layers: int | None = None
    non_trainable: tuple[str, ...] = ()
    sharded_ddp: bool = False
    auto_fsdp: bool = False

    def at(self, *parts: str) -> str:
        """The VISSL path of a key of the MODEL block."""
        return join_path(self.path, *parts)


def model_keys(root: Mapping[str, Any], root_path: str) -> ModelKeys:
    """Read the MODEL keys of a VISSL config (absent keys: None, (), False)."""
    path = join_path(root_path, "MODEL")
    model = section(root.get("MODEL"), path)
    trunk = section(model.get("TRUNK"), join_path(path, "TRUNK"))
    vit = section(trunk.get("VISION_TRANSFORMERS"), join_path(path, "TRUNK.VISION_TRANSFORMERS"))
    sdp = section(model.get("SHARDED_DDP_SETUP"), join_path(path, "SHARDED_DDP_SETUP"))
    layers_path = join_path(path, "TRUNK.VISION_TRANSFORMERS.NUM_LAYERS")
    frozen = model.get("NON_TRAINABLE_PARAMS")
    fsdp = section(model.get("FSDP_CONFIG"), join_path(path, "FSDP_CONFIG"))
    return ModelKeys(
        path=path,
        trunk=None if trunk.get("NAME") is None else _trunk_name(trunk["NAME"], join_path(path, "TRUNK.NAME")),
        vit_layers=None if vit.get("NUM_LAYERS") is None else whole(vit["NUM_LAYERS"], layers_path),
        non_trainable=() if frozen is None else tuple(strings(frozen, join_path(path, "NON_TRAINABLE_PARAMS"))),
        sharded_ddp=flag(sdp.get("USE_SDP", False), join_path(path, "SHARDED_DDP_SETUP.USE_SDP")),
        auto_fsdp=flag(fsdp.get("AUTO_SETUP_FSDP", False), join_path(path, "FSDP_CONFIG.AUTO_SETUP_FSDP")),
    )


def fsdp_setup(keys: ModelKeys, block: dict[str, Any]) -> dict[str, Any]:
    """VISSL's ``infer_fsdp_setup``: AUTO_SETUP_FSDP forces one param group, and ``sgd_fsdp`` with LARC."""
    if not keys.auto_fsdp:
        return block
    forced = {**block, "construct_single_param_group_only": True}
    if forced.get("use_larc") is True:
        forced["name"] = "sgd_fsdp"
    return forced


def _trunk_name(value: Any, path: str) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"expected a trunk name, got {value!r}", path)
    return value


def lr_decay_trunk(keys: ModelKeys) -> str:
    """The naming ``lr_decay`` reads depths from: the trunk's name, VISSL's default ``resnet`` when absent."""
    trunk = keys.trunk or RESNET
    if trunk not in TRUNKS:
        raise ConfigError(
            f"param_group_constructor lr_decay knows the depths of {VIT!r} and {RESNET!r} trunks only, "
            f"got {trunk!r}{did_you_mean(trunk, TRUNKS)} (VISSL: 'Undefined LR Decay scheme')",
            keys.at("TRUNK.NAME"),
        )
    return trunk
