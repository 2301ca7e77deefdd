"""Registration from a user's own module, without a plugin package.

``@optiplug.register_optimizer()`` on an Optimizer subclass and
``@optiplug.register_schedule("name")`` on an attrs class make them available to every
config by name, through the current host's registrations (a plugin like any other).
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from typing import Any, TypeVar

import attrs

from optiplug.plugin_system.host import current_host
from optiplug.plugin_system.records import OptimizerSpec, ScheduleContext, ScheduleSpec

T = TypeVar("T", bound=type)


def register_optimizer(name: str | None = None, *, description: str = "") -> Callable[[T], T]:
    """Class decorator: make an Optimizer subclass available by ``name`` (default: its class name).

    >>> @optiplug.register_optimizer()
    ... class CustomizedOptim(torch.optim.Optimizer): ...
    >>> # then: optimizer = dict(type="CustomizedOptim", lr=0.1)
    """

    def decorate(cls: T) -> T:
        key = name or cls.__name__
        doc = description or (cls.__doc__ or "").strip().split("\n")[0]
        current_host().user.add_optimizer(OptimizerSpec(name=key, factory=cls, description=doc))
        return cls

    return decorate


def _instance_schedule(config: Any, context: ScheduleContext) -> Any:
    bind = getattr(config, "bind", None)
    return bind(context) if callable(bind) else config


def register_schedule(name: str, *, description: str = "", relative: bool = False) -> Callable[[T], T]:
    """Class decorator: make an attrs class a schedule named ``name``.

    The class's fields are the schedule's options. Its instances are the schedule
    (they need a ``values(steps)`` method), or, if the class has ``bind(context)``,
    that method returns the schedule (to see the clock or the group's base value).
    """

    def decorate(cls: T) -> T:
        if not attrs.has(typing.cast(type, cls)):  # a cast: attrs.has would narrow cls itself
            raise TypeError(f"register_schedule({name!r}) needs an attrs class; {cls.__name__} is not one")
        doc = description or (cls.__doc__ or "").strip().split("\n")[0]
        spec = ScheduleSpec(name=name, config_class=cls, factory=_instance_schedule, description=doc, relative=relative)
        current_host().user.add_schedule(spec)
        return cls

    return decorate
