"""Which dialect a config is written in, and its translation to the canonical recipe."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from optiplug.engine.run_figures import given_figures
from optiplug.engine.structuring import parse_recipe
from optiplug.errors import ConfigError
from optiplug.plugin_system.catalogues import Registry
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
        return Translated(parse_recipe(data, registry))
    context = DialectContext(registry, figures, loaded.source)
    return Translated(spec.translate(data, context), spec)


def _dialect_for(data: Mapping[str, Any], forced: str | None, registry: Registry) -> DialectSpec | None:
    if forced is not None:
        return None if forced == CANONICAL else registry.dialects.get(forced, "dialect")
    candidates = sorted(registry.dialects, key=lambda p: -p.record.priority)
    for provided in candidates:
        if provided.record.detect(data):
            return provided.record
    return None
