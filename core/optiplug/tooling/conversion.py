"""Any config as the canonical recipe: what ``optiplug convert`` writes.

A VISSL or MMCV config is translated; the run figures its translation used (updates per
epoch, epochs, batch per device, devices) are written into the recipe's ``run``
section, so building the converted recipe with no arguments gives the same optimizer,
groups and per-update values as building the original with those arguments.

>>> recipe = converted_recipe("vissl.yaml", steps_per_epoch=500, batch_size_per_device=32, world_size=8)
>>> text = recipe_yaml(recipe)          # a canonical recipe, ready for optiplug.build
"""

from __future__ import annotations

import keyword
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import attrs

from optiplug.engine.dialects import to_recipe, translate, written_config
from optiplug.engine.run_figures import given_figures
from optiplug.engine.structuring import unstructure_recipe
from optiplug.errors import ConfigError
from optiplug.plugin_system.catalogues import Registry
from optiplug.plugin_system.host import get_registry
from optiplug.recipe.model import Recipe

if TYPE_CHECKING:
    from optiplug.engine.built_result import Built

YAML_WIDTH = 110
PYTHON_WIDTH = 88


def converted_recipe(
    config: Any,
    *,
    dialect: str | None = None,
    steps_per_epoch: int | None = None,
    num_epochs: int | None = None,
    batch_size_per_device: int | None = None,
    world_size: int | None = None,
    registry: Registry | None = None,
) -> Recipe:
    """The canonical recipe of ``config`` (translated, not lr-scaled), with the run figures given in ``run``.

    Batch scaling stays in the recipe (``lr_scaling``), with the batch it applies to in
    ``run``: building the result scales the lr exactly once, as building the original does.
    """
    recipe = to_recipe(
        config,
        dialect=dialect,
        registry=registry,
        steps_per_epoch=steps_per_epoch,
        num_epochs=num_epochs,
        batch_size_per_device=batch_size_per_device,
        world_size=world_size,
    )
    return with_run_figures(
        recipe,
        steps_per_epoch=steps_per_epoch,
        num_epochs=num_epochs,
        batch_size_per_device=batch_size_per_device,
        world_size=world_size,
    )


def converted_config(
    config: Any,
    *,
    to: str,
    dialect: str | None = None,
    steps_per_epoch: int | None = None,
    num_epochs: int | None = None,
    batch_size_per_device: int | None = None,
    world_size: int | None = None,
    registry: Registry | None = None,
) -> dict[str, Any]:
    """``config`` (any dialect) written as a config of dialect ``to`` (``'mmengine'``), for the run figures given.

    The config is read as ``build()`` reads it (its canonical recipe), then written by
    that dialect's writer; a recipe the dialect cannot express with the same values is a
    ConfigError naming the key of ``config`` and why.

    >>> converted_config("mmcls_resnet50.py", to="mmengine", steps_per_epoch=5005)["param_scheduler"]
    [{'type': 'MultiStepLR', 'milestones': [30, 60, 90], 'gamma': 0.1, 'begin': 0, 'end': 100, 'by_epoch': True}]
    """
    registry = registry or get_registry()
    figures = given_figures(
        steps_per_epoch=steps_per_epoch,
        num_epochs=num_epochs,
        batch_size_per_device=batch_size_per_device,
        world_size=world_size,
    )
    translated = translate(config, figures, dialect=dialect, registry=registry)
    recipe = with_run_figures(
        translated.recipe,
        steps_per_epoch=steps_per_epoch,
        num_epochs=num_epochs,
        batch_size_per_device=batch_size_per_device,
        world_size=world_size,
    )
    try:
        return written_config(recipe, to, recipe.run, registry)
    except ConfigError as exc:
        raise translated.in_user_terms(exc) from None


def python_config(config: Mapping[str, Any], header: str = "") -> str:
    """An OpenMMLab ``.py`` config of ``config``'s top-level keys (``key = dict(...)``), after ``header`` comments.

    Mappings whose keys are all identifiers are written ``dict(a=1)``, others ``{'a.b': 1}``;
    floats are written exactly (``repr``), infinity as ``float('inf')``.
    """
    comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    body = "".join(f"{key} = {_python_literal(plain(value), 0)}\n" for key, value in config.items())
    return comments + body


def _python_literal(value: Any, indent: int) -> str:
    """``value`` as Python source: on one line where it fits, else one item a line."""
    flat = _python_literal(value, -1) if indent >= 0 and isinstance(value, Mapping | list) else ""
    if flat and "\n" not in flat and len(flat) + indent <= PYTHON_WIDTH:
        return flat
    if indent < 0:  # one line
        if isinstance(value, Mapping):
            if value and all(isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k) for k in value):
                return "dict(" + ", ".join(f"{k}={_python_literal(v, -1)}" for k, v in value.items()) + ")"
            return "{" + ", ".join(f"{k!r}: {_python_literal(v, -1)}" for k, v in value.items()) + "}"
        if isinstance(value, list):
            return "[" + ", ".join(_python_literal(v, -1) for v in value) + "]"
    pad, inner = " " * indent, " " * (indent + 4)
    if isinstance(value, Mapping):
        if not value:
            return "dict()"
        if all(isinstance(k, str) and k.isidentifier() and not keyword.iskeyword(k) for k in value):
            items = [f"{inner}{k}={_python_literal(v, indent + 4)}" for k, v in value.items()]
            return "dict(\n" + ",\n".join(items) + f",\n{pad})"
        items = [f"{inner}{k!r}: {_python_literal(v, indent + 4)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f",\n{pad}}}"
    if isinstance(value, list):
        return "[\n" + ",\n".join(f"{inner}{_python_literal(v, indent + 4)}" for v in value) + f",\n{pad}]"
    if isinstance(value, float) and not math.isfinite(value):
        return f"float({str(value)!r})"
    return repr(value)


def with_run_figures(recipe: Recipe, **figures: int | None) -> Recipe:
    """``recipe`` with the given run figures (``steps_per_epoch=500``, ...; None: keep) written into ``run``."""
    given = {k: v for k, v in figures.items() if v is not None}
    return attrs.evolve(recipe, run=attrs.evolve(recipe.run, **given))  # type: ignore[arg-type]  # int fields


def recipe_data(recipe: Recipe, registry: Registry | None = None) -> dict[str, Any]:
    """The recipe as plain data YAML and JSON can write (sections at their defaults left out)."""
    return plain(unstructure_recipe(recipe, registry or get_registry()))  # type: ignore[no-any-return]


def plain(data: Any) -> Any:
    """Data ``yaml.safe_dump`` can write: mappings and sequences of numbers, strings, booleans and None.

    Tuples become lists; any other object is a ConfigError, since a recipe holding one
    could not be read back (it can only be built from Python).
    """
    if isinstance(data, Mapping):
        return {str(k): plain(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [plain(v) for v in data]
    if isinstance(data, bool) or data is None or isinstance(data, str):
        return data
    if isinstance(data, int):
        return int(data)
    if isinstance(data, float):
        return float(data)
    raise ConfigError(
        f"the recipe holds {data!r} ({type(data).__name__}), which a config file cannot express; "
        "build this recipe from Python"
    )


def recipe_yaml(recipe: Recipe, registry: Registry | None = None, header: str = "") -> str:
    """The recipe as YAML text, after ``header`` (each of its lines written as a comment)."""
    import yaml

    comments = "".join(f"# {line}\n".replace("# \n", "#\n") for line in header.splitlines())
    body = yaml.safe_dump(
        recipe_data(recipe, registry), sort_keys=False, default_flow_style=None, allow_unicode=True, width=YAML_WIDTH
    )
    return comments + body


def differences(original: Built, converted: Built, limit: int = 5, tolerance: float = 0.0) -> list[str]:
    """Where two built recipes disagree: optimizer class, groups and their parameters, every value at every update.

    Empty when they are the same; used by ``optiplug convert`` to check its output.
    ``tolerance`` > 0 lets scheduled values differ by that fraction of the largest value
    the option takes in the group (a framework that chains factors where the original
    computes a closed form rounds differently).
    """
    from optiplug.tooling.curves import compute_curves

    found = _structure_differences(original, converted, tolerance)
    if found or original.clock.total_steps is None:
        return found[:limit]
    first, second = compute_curves(original), compute_curves(converted)
    for option in sorted(set(first.values) | set(second.values)):
        a, b = first.values.get(option), second.values.get(option)
        if a is None or b is None:
            found.append(f"{option} is set in only one of them")
            continue
        for group, (row_a, row_b) in enumerate(zip(a.tolist(), b.tolist(), strict=True)):
            scale = tolerance * max((abs(x) for x in row_a + row_b if isinstance(x, float)), default=0.0)
            step = next((k for k, (x, y) in enumerate(zip(row_a, row_b, strict=True)) if not _close(x, y, scale)), None)
            if step is not None:
                found.append(f"{option} of group {group} at update {step}: {row_a[step]!r} != {row_b[step]!r}")
    return found[:limit]


def _structure_differences(original: Built, converted: Built, tolerance: float = 0.0) -> list[str]:
    found = []
    if type(original.optimizer) is not type(converted.optimizer):
        found.append(f"optimizer {type(original.optimizer).__name__} != {type(converted.optimizer).__name__}")
    if original.clock != converted.clock:
        found.append(f"run length {original.clock} != {converted.clock}")
    names = [g.names for g in original.groups], [g.names for g in converted.groups]
    if names[0] != names[1]:
        found.append(f"param groups differ: {len(names[0])} groups != {len(names[1])} groups")
        return found
    for index, (a, b) in enumerate(zip(original.optimizer.param_groups, converted.optimizer.param_groups, strict=True)):
        keys = sorted((set(a) | set(b)) - {"params"})
        for key in keys:
            x, y = a.get(key), b.get(key)
            scale = tolerance * max(abs(x), abs(y)) if isinstance(x, float) and isinstance(y, float) else 0.0
            if not _close(x, y, scale):
                found.append(f"group {index} option {key}: {a.get(key)!r} != {b.get(key)!r}")
    return found


def _close(a: Any, b: Any, scale: float) -> bool:
    if scale > 0 and isinstance(a, float) and isinstance(b, float) and abs(a - b) <= scale:
        return True
    return _same(a, b)


def _same(a: Any, b: Any) -> bool:
    import torch

    if isinstance(a, torch.Tensor) or isinstance(b, torch.Tensor):
        return isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)
