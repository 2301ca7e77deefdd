"""Which dialect a config is written in, and its translation to the canonical recipe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from optiplug.engine.run_figures import given_figures
from optiplug.engine.structuring import parse_recipe
from optiplug.errors import ConfigError
from optiplug.plugin_system.catalogues import ClashError, Registry
from optiplug.plugin_system.host import get_registry
from optiplug.plugin_system.records import DialectContext, DialectSpec
from optiplug.recipe.loaders import load
from optiplug.recipe.model import Recipe, RunConfig

CANONICAL = "canonical"


def to_recipe(
    config: Any,
    *,
    dialect: str | None = None,
    registry: Registry | None = None,
    steps_per_epoch: int | None = None,
    num_epochs: int | None = None,
    batch_size_per_device: int | None = None,
    world_size: int | None = None,
) -> Recipe:
    """The canonical recipe for any config (a dialect's config is translated).

    The run figures are those ``build()`` would get; a dialect may need them to
    translate (VISSL's batch scaling, MMCV's iteration-based policies).
    """
    figures = given_figures(
        steps_per_epoch=steps_per_epoch,
        num_epochs=num_epochs,
        batch_size_per_device=batch_size_per_device,
        world_size=world_size,
    )
    return translate(config, figures, dialect=dialect, registry=registry or get_registry()).recipe


@attrs.frozen
class Translated:
    """A config as a canonical recipe, with the dialect it was written in (None: canonical)."""

    recipe: Recipe
    dialect: DialectSpec | None = None

    def in_user_terms(self, error: ConfigError) -> ConfigError:
        """``error`` with its recipe paths renamed to the dialect's own keys (``schedules.lr`` -> ``lr_config``)."""
        if self.dialect is None or not self.dialect.paths:
            return error
        items = [(foreign_path(path, self.dialect.paths), message) for path, message in error.items]
        return type(error)("", items=items)


def foreign_path(path: str, paths: Mapping[str, str]) -> str:
    """``path`` with its longest prefix found in ``paths`` replaced by the dialect's key."""
    for prefix in sorted(paths, key=len, reverse=True):
        if path == prefix or path.startswith((f"{prefix}.", f"{prefix}[")):
            return paths[prefix] + path[len(prefix) :]
    return path


def translate(config: Any, figures: RunConfig, *, dialect: str | None, registry: Registry) -> Translated:
    """The canonical recipe for ``config``, translated by its dialect with the run ``figures``."""
    if isinstance(config, Recipe):
        return Translated(config)
    loaded = load(config)
    data = loaded.data
    if not isinstance(data, Mapping):
        raise ConfigError(f"expected the config to be a mapping at the top, got {type(data).__name__}")
    spec = _dialect_for(data, dialect, registry)
    if spec is None:
        if dialect is None:
            near_miss(data, loaded.source, registry)
        return Translated(parse_recipe(data, registry))
    context = DialectContext(registry, figures, loaded.source)
    try:
        return Translated(spec.translate(data, context), spec)
    except (KeyError, TypeError, AttributeError) as exc:  # a dialect reading a mapping not of its kind
        raise ConfigError(f"the {spec.name} dialect could not read this config: {type(exc).__name__}: {exc}") from None


def _dialect_for(data: Mapping[str, Any], forced: str | None, registry: Registry) -> DialectSpec | None:
    if forced is not None:
        return _forced(data, forced, registry)
    return _detected(data, registry)


def _detected(data: Mapping[str, Any], registry: Registry, *, clashes_fail: bool = True) -> DialectSpec | None:
    """The dialect whose ``detect`` says yes first, by ``priority``; None: a canonical recipe.

    Every plugin's dialect is asked, those whose name another plugin provides too. When
    one of these detects the config, it is a :class:`ClashError` naming both plugins, as
    when the config names the dialect (``dialect=``): detection never picks one silently.
    """
    clashes = registry.dialects.clashes()
    candidates = list(registry.dialects)
    candidates += [p for clash in clashes for p in clash.providers if p not in candidates]
    for provided in sorted(candidates, key=lambda p: -p.record.priority):
        if provided.record.detect(data):
            clash = next((c for c in clashes if provided in c.providers), None)
            if clash is not None and clashes_fail:
                raise ClashError(f"this config reads as the {clash.name} dialect (detected): {clash.message()}")
            return provided.record
    return None


def _forced(data: Mapping[str, Any], forced: str, registry: Registry) -> DialectSpec | None:
    """The dialect asked for (``--dialect`` / ``dialect=``), if the config is written in it."""
    if forced == CANONICAL:
        return None
    spec = registry.dialects.get(forced, "dialect")
    if spec.detect(data):
        return spec
    found = _detected(data, registry, clashes_fail=False)
    kind = f"the {found.name} dialect ({found.description})" if found else "a canonical recipe"
    raise ConfigError(
        f"dialect={forced!r} (--dialect {forced}) was asked for, but this config is not written in it "
        f"({spec.description}); it reads as {kind}: drop the dialect to read it so"
    )


def near_miss(data: Mapping[str, Any], source: str | None, registry: Registry) -> None:
    """A ConfigError in the terms of the dialect a config nearly is (no dialect detected it)."""
    for provided in sorted(registry.dialects, key=lambda p: -p.record.priority):
        check = provided.record.near_miss
        found = check(data, source) if check is not None else None
        if found is not None:
            message, path = found
            raise ConfigError(message, path)


def writable(registry: Registry) -> list[str]:
    """The dialects a canonical recipe can be written in (those with a ``write``), by name."""
    return sorted({p.record.name for p in registry.dialects if p.record.write is not None})


def written_config(recipe: Recipe, dialect: str, figures: RunConfig, registry: Registry) -> dict[str, Any]:
    """``recipe`` as a config of ``dialect`` (that dialect's ``write``) for the run ``figures``.

    A ConfigError where the dialect has no writer, or cannot express the recipe (the
    writer names the recipe path and why).
    """
    spec = registry.dialects.get(dialect, "to")
    if spec.write is None:
        known = ", ".join([CANONICAL, *writable(registry)])
        raise ConfigError(f"the {spec.name} dialect is read only: optiplug writes {known}", "to")
    return dict(spec.write(recipe, DialectContext(registry, figures)))
