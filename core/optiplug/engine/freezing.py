"""The recipe's ``freeze``: parameters held out of the first updates, their gradients dropped.

``build()`` finds each entry's parameters once (:func:`plan_freezes`, with the rule kinds
that select param groups); ``Built.step`` calls :meth:`Freezes.drop_grads` before every
update, which sets the gradient of each parameter still frozen to None. The optimizer
then skips it as it skips a parameter that got no gradient: its momentum is not built,
its weight decay not applied, and clipping leaves it out (MMSelfSup's ``DistOptimizerHook``
with ``frozen_layers_cfg``).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import attrs
import torch

from optiplug.engine.grouping import param_infos
from optiplug.engine.tolerance import STRICT, Tolerance
from optiplug.engine.wrapping import optimizer_chain
from optiplug.errors import ConfigError, OptiplugWarning, join_path
from optiplug.recipe.model import FreezeConfig

if TYPE_CHECKING:
    from optiplug.plugin_system.catalogues import Registry


@attrs.frozen
class Freeze:
    """The parameters of one ``freeze`` entry and the schedules' step from which they train."""

    params: tuple[torch.Tensor, ...]
    names: tuple[str, ...]
    until: int


@attrs.frozen
class Freezes:
    """Every ``freeze`` entry of a recipe, ready for ``Built.step``."""

    entries: tuple[Freeze, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.entries)

    def frozen_at(self, step: int) -> list[torch.Tensor]:
        """The parameters frozen at the update the schedules count as ``step``."""
        return [p for entry in self.entries if step < entry.until for p in entry.params]

    def fit(self, optimizer: Any) -> None:
        """Let ``optimizer`` take parameters that start training later than the others of their group.

        torch's fused SGD builds the momentum buffers of a group all at once, at its first
        step, and fails when some parameters already have one: a group holding frozen
        parameters is switched to torch's per-tensor (foreach) loop, whose numbers are the same.
        """
        frozen = {id(p) for entry in self.entries for p in entry.params}
        for inner in optimizer_chain(optimizer):
            if isinstance(inner, torch.optim.SGD):
                groups = [g for g in inner.param_groups if any(id(p) in frozen for p in g["params"])]
                for group in groups:
                    if group.get("fused") and group.get("momentum"):
                        group["fused"] = False
                        inner.defaults["fused"] = False
                return

    def drop_grads(self, step: int) -> None:
        """Set the gradients of the parameters frozen at ``step`` to None."""
        for param in self.frozen_at(step):
            param.grad = None


NO_FREEZES = Freezes()


def plan_freezes(
    freezes: Iterable[FreezeConfig], model: Any, registry: Registry, tolerance: Tolerance = STRICT
) -> Freezes:
    """Each entry's trainable parameters of ``model``; an entry matching none is warned about, in the dialect's keys."""
    configs = list(freezes)
    if not configs:
        return NO_FREEZES
    infos = param_infos(model)
    entries = []
    for i, config in enumerate(configs):
        path = join_path(join_path("freeze", i), "match")
        rule = config.match
        for key, value in (("set", rule.set), ("schedules", rule.schedules)):
            if value:
                raise ConfigError(
                    f"a freeze selects parameters only; its {key} would be ignored: write it as a rule", f"{path}.{key}"
                )
        spec = registry.rules.get(rule.kind, join_path(path, "kind"))
        try:
            matcher = spec.matcher(rule.params)
            matched = [info for info in infos if matcher(info)]
        except ConfigError as exc:
            raise exc.under(path) from None
        if not matched:
            fields = {} if rule.params is None else attrs.asdict(rule.params)
            what = rule.label or f"{rule.kind}({', '.join(f'{k}={v!r}' for k, v in fields.items() if v is not None)})"
            # a warning, as for a rule matching nothing (MMSelfSup's hook matches nothing silently)
            error = ConfigError(f"{what} matches no trainable parameter, so nothing is frozen", path)
            warnings.warn(str(tolerance.in_user_terms(error)), OptiplugWarning, stacklevel=3)
        entries.append(
            Freeze(tuple(info.param for info in matched), tuple(info.name for info in matched), config.until)
        )
    return Freezes(tuple(entries))
