"""Library messages in the command line's terms: ``build()`` arguments become the flags that give them.

The library's errors and warnings tell a Python user what to pass to ``build()``
(``pass batch_size_per_device to build()``); on the command line the same figure is a
flag (``pass --batch-size``). :func:`in_cli_terms` rewrites the phrasings the core and
the first-party plugins use; a message that names no ``build()`` argument is unchanged.
"""

from __future__ import annotations

import re

BUILD_ARGUMENT_FLAGS = {
    "steps_per_epoch": "--steps-per-epoch",
    "num_epochs": "--epochs",
    "batch_size_per_device": "--batch-size",
    "world_size": "--world-size",
}
"""``build()``'s run arguments and the ``optiplug`` flags that give them."""

_NAME = "|".join(BUILD_ARGUMENT_FLAGS)
_NAMES = rf"(?:{_NAME})(?:(?:, | and | or )(?:{_NAME}))*"
_BOTH_SPELLED = re.compile(rf":? ?build\(\.\.\., (?:{_NAME})=N\) or optiplug --[\w-]+ N")
"""``...: build(..., steps_per_epoch=N) or optiplug --steps-per-epoch N``: the flag is named already."""
_KEYWORD = re.compile(rf"build\(({_NAME})=\.\.\.\)")
"""``build(steps_per_epoch=...)`` -> ``--steps-per-epoch N``."""
_ASKED = re.compile(rf"\b(pass|give|passing|giving) ({_NAMES})(?: to build\(\))?")
"""``pass batch_size_per_device to build()``, ``give num_epochs``, ``do not pass num_epochs to build()``."""


_ARGUMENT_PATH = re.compile(rf"build\(({_NAME})=\.\.\.\): \1 ")
"""``build(world_size=...): world_size must be ...`` (a bad argument's path and name) -> ``--world-size: must be``."""


def in_cli_terms(message: str) -> str:
    """``message`` with every ``build()`` run argument it asks for named as its ``optiplug`` flag."""
    message = _ARGUMENT_PATH.sub(lambda m: f"{BUILD_ARGUMENT_FLAGS[m.group(1)]}: ", message)
    message = message.replace("build(compile=...)", "--compile")
    message = _BOTH_SPELLED.sub("", message)
    message = _KEYWORD.sub(lambda m: f"{BUILD_ARGUMENT_FLAGS[m.group(1)]} N", message)
    return _ASKED.sub(lambda m: f"{m.group(1)} {_flags(m.group(2))}", message)


def _flags(names: str) -> str:
    return re.sub(_NAME, lambda m: BUILD_ARGUMENT_FLAGS[m.group(0)], names)
