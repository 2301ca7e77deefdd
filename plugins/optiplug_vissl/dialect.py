"""The VISSL dialect: a VISSL config (or its ``OPTIMIZER`` block) -> the canonical recipe.

The translation follows VISSL's own order: merge the block onto defaults.yaml,
``infer_learning_rate`` (auto-scale ``lr``; ``lr_head`` is a copy of it unless
``use_different_lr``; head weight decay), build the optimizer (LARC with ``use_larc``,
sharded with ``use_zero``) and its schedules (each given ``num_epochs``), then the
param-group constructor (:mod:`optiplug_vissl.constructors`).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import attrs

from optiplug import DialectContext, Recipe, RunConfig, ScheduleConfig
from optiplug.plugin import Batch, OptiplugWarning, RegistryView, did_you_mean, join_path
from optiplug_vissl import defaults
from optiplug_vissl.config_readers import flag, known_keys, number, section, strings, text, whole
from optiplug_vissl.constructors import CONSTRUCTORS, GroupInputs, check_constructor, constructor_rules
from optiplug_vissl.model import fsdp_setup, model_keys
from optiplug_vissl.optimizer import every_optimizer_key, larc_wrappers, optimizer, optimizer_keys, zero_wrappers
from optiplug_vissl.scaling import AutoScaling, auto_scaling, check_phases, run_batch, scale
from optiplug_vissl.schedules import VisslSchedule, check_builds, check_milestones, translate

OPTIMIZER = "OPTIMIZER"
SCHEDULED = ("lr", "lr_head", "weight_decay", "weight_decay_head")
REFUSED = {
    "lr": "VISSL takes the lr from param_schedulers.lr (OPTIMIZER.lr is overwritten before the first update); "
    "set param_schedulers.lr instead, e.g. {name: constant, value: 0.1}",
}
HEAD_NOTES = {
    "use_different_values": "VISSL's docs name use_different_values, but VISSL reads use_different_lr "
    "(then set param_schedulers.lr_head) and use_different_wd (then set weight_decay here)",
}


VISSL_SECTIONS = frozenset({"MODEL", "DATA", "TRAINER", "LOSS", "DISTRIBUTED", "MACHINE", "CHECKPOINT", "HOOKS"})
"""Sections of a VISSL config: a ``config:`` root with one of them and no OPTIMIZER trains with VISSL's defaults."""


def detect(mapping: Mapping[str, Any]) -> bool:
    """A mapping with a top-level ``OPTIMIZER`` key, or a VISSL file's ``config:`` (with or without one)."""
    if OPTIMIZER in mapping:
        return True
    inner = mapping.get("config") if "config" in mapping else None
    return isinstance(inner, Mapping) and (OPTIMIZER in inner or bool(VISSL_SECTIONS & set(inner)))


def _root(mapping: Mapping[str, Any]) -> tuple[Mapping[str, Any], str]:
    if OPTIMIZER in mapping:
        return mapping, ""
    return mapping["config"], "config"


def _user_block(root: Mapping[str, Any], path: str) -> Any:
    if OPTIMIZER in root:
        return root[OPTIMIZER]
    warnings.warn(
        f"{path}: none given; VISSL trains with its default OPTIMIZER block ({defaults.OPTIMIZER['name']}), "
        "and so does optiplug",
        OptiplugWarning,
        stacklevel=5,
    )
    return {}


class _Translation:
    """The state of one translation: the config, its paths, the run and the registry."""

    def __init__(self, mapping: Mapping[str, Any], context: DialectContext) -> None:
        self.root, self.root_path = _root(mapping)
        self.path = join_path(self.root_path, OPTIMIZER)
        self.context = context
        self.registry: RegistryView = context.registry
        self.user = section(_user_block(self.root, self.path), self.path)
        self._check_keys()
        self.model = model_keys(self.root, self.root_path)
        self.block = fsdp_setup(self.model, defaults.merge(defaults.OPTIMIZER, self.user, self.path))
        written_epochs = whole(self.block["num_epochs"], self.at("num_epochs"))
        self.num_epochs = context.num_epochs or written_epochs
        self.written_epochs = written_epochs
        self._batch: Batch | None = None
        check_phases(self.root, self.root_path)

    def at(self, *parts: str | int) -> str:
        """The VISSL path of a key of the OPTIMIZER block."""
        return join_path(self.path, *parts)

    def _check_keys(self) -> None:
        name = self.user.get("name", defaults.OPTIMIZER["name"])
        own = optimizer_keys(name, self.registry) if isinstance(name, str) else set()
        notes = dict(REFUSED)
        for key, readers in every_optimizer_key().items():
            if key not in own:
                notes[key] = f"read only by {', '.join(sorted(readers))}; this block's optimizer is {name!r}"
        known_keys(self.user, set(defaults.OPTIMIZER) | own | {"linear_eval_heads"}, self.path, notes)

    def batch(self) -> Batch:
        """The batch auto-scaling scales for (resolved once, when first needed)."""
        if self._batch is None:
            self._batch = run_batch(self.root, self.root_path, self.context)
        return self._batch

    def recipe(self) -> Recipe:
        """The canonical recipe."""
        opt = optimizer(self.block, self.path, self.registry)
        wrappers = larc_wrappers(self.block, self.user, self.path, self.registry)
        wrappers += zero_wrappers(self.block, self.path, self.registry, self.model.sharded_ddp)
        self._check_options()
        schedules = self._schedules()
        inputs = self._group_inputs(schedules)
        check_constructor(inputs)
        rules = constructor_rules(inputs)
        main: dict[str, ScheduleConfig] = {k: schedules[k].config for k in ("lr", "weight_decay") if k in schedules}
        for schedule in schedules.values():
            check_milestones(schedule.config, schedule.path, self.num_epochs)
            check_builds(schedule.config, schedule.path, self.registry, self.num_epochs)
        run = self._run_batch(RunConfig(num_epochs=self.written_epochs))
        return Recipe(optimizer=opt, rules=rules, schedules=main, wrappers=wrappers, run=run)

    def _check_options(self) -> None:
        block = self.block
        for key in ("regularize_bn", "regularize_bias", "construct_single_param_group_only"):
            flag(block[key], self.at(key))
        strings(block["non_regularized_parameters"], self.at("non_regularized_parameters"))
        text(block["param_group_constructor"], self.at("param_group_constructor"), CONSTRUCTORS)
        decay = section(self.user.get("layer_wise_lr_decay"), self.at("layer_wise_lr_decay"))
        known_keys(decay, ("decay",), self.at("layer_wise_lr_decay"))
        number(self.block["layer_wise_lr_decay"]["decay"], self.at("layer_wise_lr_decay", "decay"), low=0.0)
        head = section(self.user.get("head_optimizer_params"), self.at("head_optimizer_params"))
        known_keys(head, defaults.OPTIMIZER["head_optimizer_params"], self.at("head_optimizer_params"), HEAD_NOTES)

    # -- schedules ---------------------------------------------------------------------

    def _schedules(self) -> dict[str, VisslSchedule]:
        path = self.at("param_schedulers")
        written = section(self.user.get("param_schedulers"), path)
        notes = {
            key: f"VISSL builds param_schedulers.{key} but its param-group constructors never apply it; remove it"
            for key in written
            if key not in SCHEDULED and not did_you_mean(str(key), SCHEDULED)
        }
        known_keys(written, SCHEDULED, path, notes)
        lr = self._scaled(*self._written_lr("lr", written))
        out = {"lr": lr}
        head_lr = self._head_lr(written, lr)
        if head_lr is not None:
            out["lr_head"] = head_lr
        for key in ("weight_decay", "weight_decay_head"):
            if key in written:
                out[key] = translate(written[key], written[key], join_path(path, key), self.registry, self.num_epochs)
        return out

    def _written_lr(self, key: str, written: Mapping[str, Any]) -> tuple[VisslSchedule, AutoScaling]:
        path = self.at("param_schedulers", key)
        user = section(written.get(key), path)
        merged = defaults.merge(defaults.LR_SCHEDULE, user, path)
        schedule = translate(user, merged, path, self.registry, self.num_epochs, interval="epoch", scalable=True)
        return schedule, auto_scaling(user.get("auto_lr_scaling"), join_path(path, "auto_lr_scaling"))

    def _scaled(self, schedule: VisslSchedule, scaling: AutoScaling) -> VisslSchedule:
        if not scaling.auto_scale:
            return schedule
        config = scale(schedule, scaling, self.batch(), self.registry)
        return VisslSchedule(config, schedule.written, schedule.path)

    def _head_lr(self, written: Mapping[str, Any], lr: VisslSchedule) -> VisslSchedule | None:
        """``lr_head`` when it differs from ``lr`` (VISSL copies ``lr`` unless use_different_lr)."""
        head = self.block["head_optimizer_params"]
        schedule, scaling = self._written_lr("lr_head", written)
        if not flag(head["use_different_lr"], self.at("head_optimizer_params", "use_different_lr")):
            return None
        head_lr = self._scaled(schedule, scaling)
        return None if head_lr.config == lr.config else head_lr

    # -- param groups ------------------------------------------------------------------

    def _group_inputs(self, schedules: Mapping[str, VisslSchedule]) -> GroupInputs:
        return GroupInputs(self.block, self.user, self.path, schedules, self.registry, self.model)

    def _run_batch(self, run: RunConfig) -> RunConfig:
        if self._batch is None:
            return run
        batch = self._batch
        return attrs.evolve(
            run,
            batch_size_per_device=batch.per_device,
            world_size=batch.world_size,
            devices_per_node=batch.devices_per_node,
        )


def translate_vissl(mapping: Mapping[str, Any], context: DialectContext) -> Recipe:
    """The canonical recipe VISSL's config describes (see the module docstring)."""
    return _Translation(mapping, context).recipe()
