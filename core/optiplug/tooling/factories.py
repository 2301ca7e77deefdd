"""Models and data named on the command line: an example model, or ``package.module:factory``.

``--model resnet_like`` is an example model (:mod:`optiplug.tooling.demo`);
``--model mypkg.models:make_model`` imports ``mypkg.models`` and calls ``make_model()``
with no arguments. The current directory is importable, as with ``python -m``.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Callable
from typing import Any

from torch import nn

from optiplug.errors import ConfigError
from optiplug.tooling.demo import example_model


def imported(spec: str, flag: str) -> Callable[[], Any]:
    """The callable ``package.module:name`` names; a ConfigError naming ``flag`` when it cannot be found."""
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigError(f"{flag}: expected package.module:factory, got {spec!r}")
    if "" not in sys.path:
        sys.path.insert(0, "")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"{flag}: cannot import {module_name!r}: {exc}") from None
    factory = getattr(module, attribute, None)
    if not callable(factory):
        raise ConfigError(f"{flag}: {module_name} has no callable {attribute!r}")
    return factory


def model_from(spec: str) -> nn.Module:
    """The model ``--model`` names: an example model's name, or ``package.module:factory`` called with no arguments."""
    if ":" not in spec:
        return example_model(spec)
    model = imported(spec, "--model")()
    if not isinstance(model, nn.Module):
        raise ConfigError(f"--model: {spec} returned a {type(model).__name__}, not an nn.Module")
    return model
