"""Mutation fuzzing of configs: every mutated config either builds and trains three
steps, or fails with an ``optiplug.ConfigError`` that names where in the config.

Dialect tests give valid base configs; ``mutated_configs`` derives broken ones, applying
one to three mutations:

* structural: a key deleted, misspelled, or an unknown key added;
* a value replaced by a bad one (wrong type, NaN, inf, negative, huge, empty, unknown
  names) or by another value of the same config (a schedule where a number was, ...);
* a value perturbed within its type (negated, scaled by 1e6, made 0 or fractional, a
  list shortened, lengthened or reversed, a name misspelled or upper-cased), which
  reaches the checks a wrong type never gets to.

``OPTIPLUG_FUZZ_EXAMPLES`` sets the number of examples per dialect (default 2000) and
``OPTIPLUG_FUZZ_SEED`` the seed (default: hypothesis' derandomized one), for longer or
different runs: ``OPTIPLUG_FUZZ_EXAMPLES=50000 OPTIPLUG_FUZZ_SEED=7 pytest -k fuzz``.
"""

from __future__ import annotations

import copy
import math
import os
import re
import warnings
from collections.abc import Callable
from typing import Any

import torch
from hypothesis import HealthCheck, seed, settings
from hypothesis import strategies as st
from torch import nn

import optiplug

EXAMPLES = int(os.environ.get("OPTIPLUG_FUZZ_EXAMPLES", "2000"))
SEED = os.environ.get("OPTIPLUG_FUZZ_SEED")
FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=SEED is None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def fuzz_seed(test: Callable[..., Any]) -> Callable[..., Any]:
    """Apply ``OPTIPLUG_FUZZ_SEED`` when set (otherwise the run is derandomized)."""
    return test if SEED is None else seed(int(SEED))(test)


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
OPERATIONS = ["delete", "rename", "replace", "replace", "replace", "add", "perturb", "perturb", "transplant"]

# Build arguments a whole-config error may name instead of a config path.
BUILD_ARGUMENTS = ("steps_per_epoch", "num_epochs", "batch_size_per_device", "world_size", "build(")


def paths(config: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every key and index path in nested mappings and lists."""
    found = [prefix] if prefix else []
    if isinstance(config, dict):
        for key, value in config.items():
            found += paths(value, (*prefix, key))
    elif isinstance(config, list | tuple):
        for index, value in enumerate(config):
            found += paths(value, (*prefix, index))
    return found


def _parent(config: Any, path: tuple[Any, ...]) -> Any:
    node = config
    for part in path[:-1]:
        node = node[part]
    return node


def _get(config: Any, path: tuple[Any, ...]) -> Any:
    return _parent(config, path)[path[-1]]


def perturbed(value: Any, choice: int) -> Any:
    """A value of the same type as ``value``, changed (``choice`` picks how)."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        other_type = float(value) if isinstance(value, int) else int(value) if math.isfinite(value) else 0
        options = [-value, value * 10**6, 0, value + 0.5, other_type]
        options += [value / 10**6, 3 * value, -1]
    elif isinstance(value, str):
        options = [value.upper(), value[:-1], f"{value}x", "", value.capitalize(), value.replace("_", "")]
    elif isinstance(value, list | tuple):
        options = [value[:-1], [*value, *value[-1:]], list(reversed(value)), [], value[:1], [*value, *value]]
    elif isinstance(value, dict):
        options = [{}, {k: value[k] for k in list(value)[:-1]}, dict(reversed(list(value.items())))]
    else:
        return value
    return options[choice % len(options)]


def mutate(config: Any, path: tuple[Any, ...], operation: str, value: Any) -> None:
    """Apply one mutation in place (``value``: the bad value, the choice, or the transplant)."""
    parent, last = _parent(config, path), path[-1]
    if isinstance(parent, tuple):
        return
    if operation == "delete":
        del parent[last]
    elif operation == "rename" and isinstance(parent, dict):
        parent[f"{last}x" if len(str(last)) < 3 else str(last)[:-1]] = parent.pop(last)
    elif operation == "add" and isinstance(parent, dict):
        parent["unknown_key"] = value
    elif operation == "perturb":
        parent[last] = perturbed(parent[last], value)
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
        operation = draw(st.sampled_from(OPERATIONS))
        if operation == "perturb":
            value: Any = draw(st.integers(0, 11))
        elif operation == "transplant":
            value = copy.deepcopy(_get(config, draw(st.sampled_from(candidates))))
        else:
            value = copy.deepcopy(draw(st.sampled_from(BAD_VALUES)))
        mutate(config, path, operation, value)
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


def words_of(config: Any) -> set[str]:
    """Every key and string value in a config (what a whole-config error may name)."""
    found: set[str] = set()
    if isinstance(config, dict):
        for key, value in config.items():
            found.add(str(key))
            found |= words_of(value)
    elif isinstance(config, list | tuple):
        for value in config:
            found |= words_of(value)
    return found


def check_located(exc: optiplug.ConfigError, config: Any) -> None:
    """Every problem of ``exc`` has a config path, or its message names a key of the config or a build() argument."""
    assert str(exc).strip(), "empty ConfigError message"
    words = {w for w in words_of(config) if len(w) > 1} | set(BUILD_ARGUMENTS)
    for path, message in exc.items:
        assert message.strip(), f"empty message at {path!r}"
        if not path:
            named = any(re.search(rf"(?<!\w){re.escape(word)}(?!\w)", message) for word in words)
            assert named, f"names no location: {message!r}"


def build_and_train(
    config: Any,
    build: Callable[[Any, nn.Module], optiplug.Built],
    model: Callable[[], nn.Module] = TinyNet,
    inputs: Callable[[], torch.Tensor] = lambda: torch.randn(2, 2, 5, 5),
) -> str:
    """Build and run three steps; return "built" or "refused" (a ConfigError that names where)."""
    torch.manual_seed(0)
    net = model()
    x = inputs()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            built = build(config, net)
        except optiplug.ConfigError as exc:
            check_located(exc, config)
            return "refused"
        for _ in range(3):
            built.step(net(x).square().mean())
    return "built"
