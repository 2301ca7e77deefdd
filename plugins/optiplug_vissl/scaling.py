"""VISSL's ``auto_lr_scaling``: the batch it scales for and the rescaling itself.

The batch comes from build()'s arguments, else the config's ``DATA`` / ``DISTRIBUTED``
keys, else torch.distributed (VISSL reads only its config). The lr moves to
``base_value * f`` with ``f = global batch / base_lr_batch_size`` (or its square root),
each schedule by its own rule (registered by the plugin that ships it; the composite's by
the core, which treats linear parts as warmups and may remove the last one, handing its
length to the part after it).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import attrs

from optiplug import ConfigError, DialectContext, ScalingConfig, ScheduleConfig
from optiplug.plugin import Batch, OptiplugWarning, RegistryView, distributed_world, join_path, rescale
from optiplug_vissl import defaults
from optiplug_vissl.config_readers import flag, known_keys, number, section, text, whole
from optiplug_vissl.schedules import VisslSchedule, after_collapse


@attrs.frozen
class AutoScaling:
    """One ``auto_lr_scaling`` block, checked."""

    auto_scale: bool
    base_value: float
    base_lr_batch_size: int
    scaling_type: str


def auto_scaling(block: Any, path: str) -> AutoScaling:
    """Read an ``auto_lr_scaling`` block (merged onto VISSL's defaults)."""
    block = section(block, path)
    known_keys(block, defaults.AUTO_LR_SCALING, path)
    merged = defaults.merge(defaults.AUTO_LR_SCALING, block, path)
    return AutoScaling(
        auto_scale=flag(merged["auto_scale"], join_path(path, "auto_scale")),
        base_value=number(merged["base_value"], join_path(path, "base_value"), low=0.0),
        base_lr_batch_size=whole(merged["base_lr_batch_size"], join_path(path, "base_lr_batch_size")),
        scaling_type=text(merged["scaling_type"], join_path(path, "scaling_type"), ("linear", "sqrt")),
    )


def scale(schedule: VisslSchedule, scaling: AutoScaling, batch: Batch, registry: RegistryView) -> ScheduleConfig:
    """The schedule moved to the scaled lr, finished as VISSL finishes a collapsed composite."""
    config = ScalingConfig(
        base_batch_size=scaling.base_lr_batch_size, base_value=scaling.base_value, method=scaling.scaling_type
    )
    # rescale annotates the concrete Registry; every registry a plugin is handed is one
    scaled = rescale(schedule.config, config, scaling.base_value, batch, registry, schedule.path)
    return after_collapse(schedule, scaled, registry)


def run_batch(root: Mapping[str, Any], root_path: str, context: DialectContext) -> Batch:
    """The batch to scale for: build() arguments, then DATA / DISTRIBUTED, then torch.distributed, then 1.

    A missing per-device batch is an error rather than 1: scaling for a batch of one
    would silently divide the lr by ``base_lr_batch_size``.
    """
    per_device = context.batch_size_per_device or _per_replica(root, root_path)
    if per_device is None:
        raise ConfigError(
            "auto_lr_scaling needs the batch size per device: pass batch_size_per_device to build() "
            "or set DATA.TRAIN.BATCHSIZE_PER_REPLICA",
            join_path(root_path, "DATA.TRAIN.BATCHSIZE_PER_REPLICA"),
        )
    nodes, procs = _distributed(root, root_path)
    dist_world, dist_local = distributed_world()
    world = context.world_size or (nodes * procs if nodes and procs else None) or dist_world or 1
    if context.world_size is None and nodes is None:
        _warn_default_world(root_path, world)
    per_node = procs or dist_local or world
    return Batch(per_device, world, min(per_node, world))


def _warn_default_world(root_path: str, world: int) -> None:
    vissl_world = defaults.NUM_NODES * defaults.NUM_PROC_PER_NODE
    if world == vissl_world:
        return
    warnings.warn(
        f"{join_path(root_path, 'DISTRIBUTED')}: not given, so VISSL would scale the lr for its default "
        f"{defaults.NUM_NODES} node x {defaults.NUM_PROC_PER_NODE} processes = {vissl_world} devices; optiplug scales "
        f"for {world} (world_size, else torch.distributed, else 1): set DISTRIBUTED or pass world_size to build()",
        OptiplugWarning,
        stacklevel=2,
    )


def _per_replica(root: Mapping[str, Any], root_path: str) -> int | None:
    data = section(root.get("DATA"), join_path(root_path, "DATA"))
    train = section(data.get("TRAIN"), join_path(root_path, "DATA.TRAIN"))
    value = train.get("BATCHSIZE_PER_REPLICA")
    return None if value is None else whole(value, join_path(root_path, "DATA.TRAIN.BATCHSIZE_PER_REPLICA"))


def _distributed(root: Mapping[str, Any], root_path: str) -> tuple[int | None, int | None]:
    path = join_path(root_path, "DISTRIBUTED")
    dist = section(root.get("DISTRIBUTED"), path)
    nodes, procs = dist.get("NUM_NODES"), dist.get("NUM_PROC_PER_NODE")
    if nodes is None and procs is None:
        return None, None
    # One of the two given: the other takes VISSL's default, as in a composed VISSL config.
    return (
        whole(defaults.NUM_NODES if nodes is None else nodes, join_path(path, "NUM_NODES")),
        whole(defaults.NUM_PROC_PER_NODE if procs is None else procs, join_path(path, "NUM_PROC_PER_NODE")),
    )


def check_phases(root: Mapping[str, Any], root_path: str) -> None:
    """Refuse several train phases per epoch (VISSL would update epoch schedules once per phase)."""
    data = section(root.get("DATA"), join_path(root_path, "DATA"))
    train = section(data.get("TRAIN"), join_path(root_path, "DATA.TRAIN"))
    phases = train.get("TRAIN_PHASES_PER_EPOCH", 1)
    if phases != 1:
        raise ConfigError(
            f"only one train phase per epoch is supported, got {phases!r} "
            "(VISSL would update epoch schedules once per phase)",
            join_path(root_path, "DATA.TRAIN.TRAIN_PHASES_PER_EPOCH"),
        )
