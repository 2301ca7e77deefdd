"""Comparing and copying nested optimizer states (dicts and lists of tensors and numbers)."""

from __future__ import annotations

from typing import Any

import torch


def assert_same_state(a: Any, b: Any) -> None:
    """Nested states equal: tensors bit for bit (and dtype), everything else with ``==``."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for key in a:
            assert_same_state(a[key], b[key])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            assert_same_state(x, y)
    else:
        assert a == b


def cloned(state: Any) -> Any:
    """A copy whose tensors are cloned (a state_dict shares the optimizer's tensors)."""
    if isinstance(state, torch.Tensor):
        return state.clone()
    if isinstance(state, dict):
        return {key: cloned(value) for key, value in state.items()}
    if isinstance(state, list | tuple):
        return type(state)(cloned(value) for value in state)
    return state
