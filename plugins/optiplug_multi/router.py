"""The router: one ``torch.optim.Optimizer`` whose param groups are stepped by several algorithms.

Each group names its algorithm under the key ``optimizer``. The router builds one
optimizer per algorithm over that algorithm's groups (each with the group dicts
themselves, so an option written into a group, by a scheduler or by hand, is the one
its algorithm reads), and ``step()`` steps them in turn. ``param_groups`` lists every
group in the order given; ``state`` is the algorithms' states together; ``state_dict()``
is one torch optimizer state over all groups, which ``load_state_dict`` splits back.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer

ROUTE = "optimizer"

Algorithm = tuple[Callable[..., Optimizer], Mapping[str, Any]]


class RoutingError(ValueError):
    """An algorithm refused its groups; ``algorithm`` names it (optiplug names the rule that routed them)."""

    def __init__(self, message: str, algorithm: str) -> None:
        super().__init__(message)
        self.algorithm = algorithm


class MultiOptimizer(Optimizer):
    """Several algorithms behind one optimizer.

    ``params`` are group dicts, each with ``optimizer`` naming a key of ``algorithms``
    (a group without it goes to ``default``); ``algorithms`` maps a name to
    ``(factory, kwargs)``, the factory called as ``factory(groups, **kwargs)``.

    >>> # MultiOptimizer([{"params": [w], "optimizer": "Muon"}, {"params": [b], "optimizer": "AdamW"}],
    >>> #                algorithms={"Muon": (torch.optim.Muon, {}), "AdamW": (torch.optim.AdamW, {})},
    >>> #                default="AdamW")
    """

    def __init__(
        self, params: Iterable[Any], algorithms: Mapping[str, Algorithm] | None = None, default: str | None = None
    ) -> None:
        if not algorithms:
            raise ValueError("multi is built by optiplug when rules set `optimizer: <name>`; it takes `algorithms`")
        groups = [dict(g) if isinstance(g, Mapping) else {"params": g} for g in params]
        by_algorithm: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for group in groups:
            name = str(group.setdefault(ROUTE, default))
            if name not in algorithms:
                raise RoutingError(f"a param group names the algorithm {name!r}; known: {', '.join(algorithms)}", name)
            by_algorithm[name].append(group)
        self.algorithms: dict[str, Optimizer] = {}
        for name, own in by_algorithm.items():
            factory, kwargs = algorithms[name]
            try:
                self.algorithms[name] = factory(own, **kwargs)
            except (ValueError, TypeError, KeyError, RuntimeError) as exc:
                raise RoutingError(f"{name} refused its param groups: {exc}", name) from exc
        self.default = default
        super().__init__(groups, {})
        self._ready = True

    def __repr__(self) -> str:
        inner = ", ".join(f"{name}: {len(o.param_groups)} groups" for name, o in self.algorithms.items())
        return f"MultiOptimizer({inner})"

    def _owner(self, group: Mapping[str, Any]) -> Optimizer:
        return self.algorithms[group.get(ROUTE, self.default)]

    @property  # type: ignore[override]
    def state(self) -> defaultdict[torch.Tensor, Any]:
        """Every parameter's state, from the algorithm that steps it."""
        merged: defaultdict[torch.Tensor, Any] = defaultdict(dict)
        for optimizer in self.algorithms.values():
            merged.update(optimizer.state)
        return merged

    @state.setter
    def state(self, value: Mapping[torch.Tensor, Any]) -> None:
        owners = {p: self._owner(g) for g in getattr(self, "param_groups", []) for p in g["params"]}
        for param, state in value.items():
            owners[param].state[param] = state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        """One update of every algorithm (the closure, if any, is evaluated once, before)."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for optimizer in self.algorithms.values():
            optimizer.step()
        return loss

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group to its algorithm (``optimizer`` key, else the default) and to this optimizer."""
        if not hasattr(self, "algorithms") or "params" not in param_group or not getattr(self, "_ready", False):
            super().add_param_group(param_group)
            return
        param_group.setdefault(ROUTE, self.default)
        owner = self._owner(param_group)
        owner.add_param_group(param_group)
        self.param_groups.append(owner.param_groups[-1])

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Load one state over all groups: each algorithm gets its groups and their parameters' state."""
        saved = state_dict["param_groups"]
        if len(saved) != len(self.param_groups):
            raise ValueError(f"the state has {len(saved)} param groups, this optimizer {len(self.param_groups)}")
        for index, (old, new) in enumerate(zip(saved, self.param_groups, strict=True)):
            if old.get(ROUTE, self.default) != new.get(ROUTE, self.default):
                raise ValueError(f"param group {index} was stepped by {old.get(ROUTE)!r}, here by {new.get(ROUTE)!r}")
        order = []
        for name, optimizer in self.algorithms.items():
            indices = [i for i, g in enumerate(self.param_groups) if g.get(ROUTE, self.default) == name]
            groups = [saved[i] for i in indices]
            ids = {pid for g in groups for pid in g["params"]}
            state = {k: v for k, v in state_dict["state"].items() if k in ids}
            optimizer.load_state_dict({"state": state, "param_groups": groups})
            order += [(i, group) for i, group in zip(indices, optimizer.param_groups, strict=True)]
        self.param_groups[:] = [group for _, group in sorted(order, key=lambda pair: pair[0])]

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Zero (or drop) every parameter's gradient."""
        for optimizer in self.algorithms.values():
            optimizer.zero_grad(set_to_none=set_to_none)

    # Schedule-free algorithms have modes; the router has them when one of its algorithms does.
    @property
    def train_mode(self) -> bool | None:
        """Whether the algorithms with modes are in train mode (None when none has modes)."""
        flags = [g.get("train_mode") for g in self.param_groups if "train_mode" in g]
        return None if not flags else all(flags)

    def train(self) -> None:
        """Train mode for every algorithm that has modes."""
        for optimizer in self.algorithms.values():
            switch = getattr(optimizer, "train", None)
            if callable(switch):
                switch()

    def eval(self) -> None:
        """Eval mode for every algorithm that has modes."""
        for optimizer in self.algorithms.values():
            switch = getattr(optimizer, "eval", None)
            if callable(switch):
                switch()
