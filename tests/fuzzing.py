"""Mutation fuzzing of configs: every mutated config either builds and trains three
steps, or fails with an ``optiplug.ConfigError`` that names where in the config.

Dialect tests give valid base configs; ``mutated_configs`` derives broken ones (keys
deleted or misspelled, values of the wrong type, NaN, inf, negative, huge, empty,
unknown names), applying one to three mutations.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from torch import nn

import optiplug

EXAMPLES = int(os.environ.get("OPTIPLUG_FUZZ_EXAMPLES", "2000"))
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None
)

BAD_VALUES: list[Any] = [
    None,
    True,
    False,
    "abc",
    "",
    "1e-3",
    -1,
    0,
    -0.5,
    1e300,
    -1e300,
    float("nan"),
    float("inf"),
    float("-inf"),
    10**20,
    [],
    {},
    [1, 2],
    [None],
    {"a": 1},
    {"name": "cosine"},
    "cosine",
    "linear",
    "composite",
    "epoch",
]


def paths(config: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index path in nested mappings and lists."""
    found = [prefix] if prefix else []
    if isinstance(config, dict):
        for key, value in config.items():
            found += paths(value, (*prefix, key))
    elif isinstance(config, list):
        for index, value in enumerate(config):
            found += paths(value, (*prefix, index))
    return found


def _parent(config: Any, path: tuple[Any, ...]) -> Any:
    node = config
    for part in path[:-1]:
        node = node[part]
    return node


def mutate(config: Any, path: tuple[Any, ...], operation: str, value: Any) -> None:
    """Apply one mutation in place."""
    parent, last = _parent(config, path), path[-1]
    if operation == "delete":
        del parent[last]
    elif operation == "rename" and isinstance(parent, dict):
        parent[f"{last}x" if len(str(last)) < 3 else str(last)[:-1]] = parent.pop(last)
    elif operation == "add" and isinstance(parent, dict):
        parent["unknown_key"] = value
    else:
        parent[last] = value


@st.composite
def mutated_configs(draw: st.DrawFn, bases: list[Any]) -> Any:
    """A base config with one to three random mutations."""
    config = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(1, 3))):
        candidates = paths(config)
        if not candidates:
            break
        path = draw(st.sampled_from(candidates))
        operation = draw(st.sampled_from(["delete", "rename", "replace", "replace", "replace", "add"]))
        mutate(config, path, operation, copy.deepcopy(draw(st.sampled_from(BAD_VALUES))))
    return config


class TinyNet(nn.Module):
    """A model with a conv, a norm, a bias and a head: every rule kind has something to match."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(2, 3, 3)
        self.bn1 = nn.BatchNorm2d(3)
        self.head = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.bn1(self.conv1(x)).mean(dim=(2, 3)))


def build_and_train(config: Any, build: Callable[[Any, nn.Module], optiplug.Built]) -> str:
    """Build and run three steps; return "built" or "refused" (ConfigError with a path or a clear message)."""
    torch.manual_seed(0)
    model = TinyNet()
    x = torch.randn(2, 2, 5, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            built = build(config, model)
        except optiplug.ConfigError as exc:
            assert str(exc).strip(), "empty ConfigError message"
            return "refused"
        for _ in range(3):
            built.step(model(x).square().mean())
    return "built"
