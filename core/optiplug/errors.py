"""The exceptions optiplug raises, and the helpers that make their messages useful."""

from __future__ import annotations

import difflib
import os
import sys
from collections.abc import Iterable


class OptiplugError(Exception):
    """Base class of every error optiplug raises on purpose."""


class ConfigError(OptiplugError, ValueError):
    """A configuration is wrong: the message names the dotted config path and the bad value.

    ``path`` is the dotted location of the first problem (``schedules.lr.start_value``,
    ``""`` for the whole config); ``items`` holds every ``(path, message)`` found when
    several problems were collected at once.
    """

    def __init__(self, message: str, path: str = "", *, items: Iterable[tuple[str, str]] = ()) -> None:
        self.items: tuple[tuple[str, str], ...] = tuple(items) or ((path, message),)
        self.path = self.items[0][0]
        self.message = self.items[0][1]
        super().__init__(_render(self.items))

    def under(self, prefix: str | int) -> ConfigError:
        """The same error with every path placed under ``prefix``."""
        return type(self)("", items=[(join_path(prefix, p), m) for p, m in self.items])


def _render(items: tuple[tuple[str, str], ...]) -> str:
    lines = [f"{p}: {m}" if p else m for p, m in items]
    if len(lines) == 1:
        return lines[0]
    return f"{len(lines)} problems in the config:\n" + "\n".join(f"  - {line}" for line in lines)


class PluginError(OptiplugError):
    """A plugin is broken (failed to import, hook raised) or conflicts with another one."""


class StateError(ConfigError):
    """A saved state does not belong to the recipe or run it is being loaded into."""


def closest(word: str, choices: Iterable[str]) -> str | None:
    """The choice closest to ``word``, or None if none is close."""
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return close[0] if close else None


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``" (did you mean 'x'?)"`` for the closest choice, or ``""`` if none is close."""
    close = closest(word, choices)
    return f" (did you mean {close!r}?)" if close else ""


def join_path(*parts: str | int) -> str:
    """Join config path parts: ``join_path("a", 0, "b.c") == "a[0].b.c"``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part:
            sep = "" if part.startswith("[") or not out else "."
            out = f"{out}{sep}{part}"
    return out


class OptiplugWarning(UserWarning):
    """A configuration that works but probably does not do what was meant."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes ``warnings.warn`` name the first caller outside optiplug's core.

    Call it in the function that warns: a warning raised a few calls deep (``Built`` ->
    scheduler -> resume) then points at the user's line, whichever public door was used.
    """
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    return level
