"""The front door, ``optiplug.build``: a config and a model -> a ready optimizer and scheduler.

It only sequences the steps, each in its own module: translation (dialects), batch
scaling (scaling), the run's clock (run_figures), grouping, the optimizer's arguments
(optimizer_options), wrappers, and binding schedules to groups (binding).
"""

from __future__ import annotations

from typing import Any

import attrs

from optiplug.engine.binding import ScheduleBinder
from optiplug.engine.built_result import Built, GroupSummary
from optiplug.engine.compiling import check_tensor_options, compile_path, prepare_compile
from optiplug.engine.dialects import translate
from optiplug.engine.freezing import plan_freezes
from optiplug.engine.grouping import plan_groups
from optiplug.engine.optimizer_options import check_rule_options, make_optimizer
from optiplug.engine.resume import check_policy, record_of
from optiplug.engine.run_figures import given_compile, given_figures, resolve_batch, resolve_compile, resolve_run
from optiplug.engine.scaling import scale_recipe
from optiplug.engine.structuring import unstructure_recipe
from optiplug.engine.tolerance import STRICT, Tolerance
from optiplug.engine.torch_scheduler import OptiplugScheduler, fingerprint
from optiplug.errors import ConfigError, join_path
from optiplug.plugin_system.catalogues import Registry
from optiplug.plugin_system.host import get_registry
from optiplug.recipe.model import Recipe, RunConfig


def build(
    config: Any,
    model: Any,
    steps_per_epoch: int | None = None,
    num_epochs: int | None = None,
    batch_size_per_device: int | None = None,
    world_size: int | None = None,
    *,
    dialect: str | None = None,
    registry: Registry | None = None,
    compile: bool | None = None,
) -> Built:
    """Build the optimizer, param groups and scheduler a config describes, for ``model``.

    ``config`` is a mapping, a :class:`Recipe`, an OmegaConf DictConfig, or a path
    (.yaml, .yml, .json, or an MMCV-style .py read without executing it). Its dialect
    (VISSL, MMCV, canonical) is detected, or forced with ``dialect=``. ``model`` is an
    ``nn.Module`` or an iterable of parameters or ``(name, parameter)`` pairs.
    ``world_size=None`` means torch.distributed's world size when initialized, else 1.
    ``steps_per_epoch`` is what the data loader yields per epoch, ``len(loader)`` (the
    calls of ``Built.step``), in every dialect; with ``accumulation.steps`` n, an epoch is
    ``steps_per_epoch / n`` optimizer updates (a warning says when that is not whole).
    ``compile=True`` (the recipe's ``run.compile``) prepares the optimizer for
    ``torch.compile``: every scheduled option a 0-dim tensor, written in place.
    """
    registry = registry or get_registry()
    figures = given_figures(
        steps_per_epoch=steps_per_epoch,
        num_epochs=num_epochs,
        batch_size_per_device=batch_size_per_device,
        world_size=world_size,
    )
    figures = attrs.evolve(figures, compile=given_compile(compile))
    translated = translate(config, figures, dialect=dialect, registry=registry)
    try:
        tolerance = Tolerance.of(translated.dialect, translated.in_user_terms)
        return build_recipe(translated.recipe, model, figures, registry, tolerance)
    except ConfigError as exc:
        raise translated.in_user_terms(exc) from None


def build_recipe(
    recipe: Recipe, model: Any, figures: RunConfig, registry: Registry, tolerance: Tolerance = STRICT
) -> Built:
    """Build a canonical recipe for ``model``: every check of the recipe runs here, once.

    ``tolerance`` says which checks only warn, because the config's framework accepts
    what they refuse (``DialectSpec.tolerates``; ``Tolerance.of(translated.dialect)``).
    """
    recipe = scale_recipe(recipe, registry, resolve_batch(recipe, figures))
    length = resolve_run(recipe, figures)
    clock = length.clock
    check_rule_options(recipe, registry, tolerance)
    plans = plan_groups(model, recipe.rules, registry)
    optimizer, base = make_optimizer(recipe, plans, registry, tolerance)
    for i, wrapper in enumerate(recipe.wrappers):
        spec = registry.wrappers.get(wrapper.name, join_path("wrappers", i, "name"))
        optimizer = spec.wrap(optimizer, wrapper.params)
    compiling = resolve_compile(recipe, figures)
    if compiling:
        optimizer = prepare_compile(optimizer, recipe, registry, compile_path(figures))
    binder = ScheduleBinder(recipe.schedules, base, clock, registry)
    bindings = [
        b
        for i, plan in enumerate(plans)
        for b in binder.bind(i, optimizer.param_groups[i], plan.settings, plan.schedules)
    ]
    if compiling:
        check_tensor_options(optimizer, bindings, compile_path(figures))
    record = record_of(unstructure_recipe(recipe, registry), length.batches_per_epoch, length.total_batches, registry)
    check_policy(record, bindings)
    scheduler = OptiplugScheduler(
        optimizer,
        bindings,
        clock,
        fingerprint(record.recipe),
        bind_added=binder.bind_added,
        tolerance=tolerance,
        record=record,
    )
    summaries = [GroupSummary.of(i, plan, optimizer.param_groups[i]) for i, plan in enumerate(plans)]
    freezes = plan_freezes(recipe.freeze, model, registry, tolerance)
    freezes.fit(optimizer)
    return Built(
        recipe,
        optimizer,
        scheduler,
        summaries,
        clock,
        batches_per_epoch=length.batches_per_epoch,
        total_batches=length.total_batches,
        freezes=freezes,
    )
