"""The values a ``.py`` config reader hands out: known data, and :class:`Unknown` where it could not evaluate.

A config value the reader did not evaluate (a call it does not run, a name bound by an
import used as data, an ``if`` on something unknown...) is an :class:`Unknown`: a leaf
recording the file, the line and the construct. It is harmless while nobody looks at
it (a key the dialects never read may hold one), and any *use* of it raises a
:class:`UnknownValueError`, a ConfigError naming the config key, the file, the line
and the construct:

* reading it from its mapping (``config["lr_config"]``, ``config.get(...)``): the
  dicts holding an Unknown anywhere below them are :class:`ConfigDict` (a ``dict``
  subclass), whose item access raises at once;
* using it in any other way (truth, comparison, hashing, iteration, ``len``, numbers,
  arithmetic, formatting, attributes): the Unknown raises itself.

``isinstance`` checks, ``repr`` and copying do not raise: a tree walk (the loaders'
size check) and a dialect's error message that quotes the value show
``<not evaluated: file, line N: construct>``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from optiplug.errors import ConfigError

NOT_RUN = "optiplug reads .py configs as data and never runs them"


class UnknownValueError(ConfigError):
    """A config value optiplug did not evaluate was read; ``unknown`` is that value (None once re-pathed)."""

    unknown: Unknown | None = None

    @classmethod
    def of(cls, unknown: Unknown, path: str = "", full: str = "") -> UnknownValueError:
        """The error for reading ``unknown`` at ``path``, whose full config path is ``full``.

        A converter that reads a nested dict puts the error under its own path: ``path``
        is relative to the dict read, and the message names the full key when it differs.
        """
        full = full or unknown.path
        what = f"{full} depends on it" if full and full != path else "this value depends on it"
        error = cls(f"{unknown.where}: not evaluated: {unknown.construct} ({NOT_RUN}); {what}", path)
        error.unknown = unknown
        return error


class Unknown:
    """A value the reader could not evaluate: the file, the line and the construct that made it."""

    __slots__ = ("construct", "line", "path", "source")

    def __init__(self, source: str, line: int | str, construct: str, path: str = "") -> None:
        self.source = source
        self.line = line
        self.construct = construct
        self.path = path

    @property
    def where(self) -> str:
        """``file, line N``."""
        return f"{self.source}, line {self.line}"

    def at(self, path: str) -> Unknown:
        """The same unknown value, read at config path ``path``."""
        return Unknown(self.source, self.line, self.construct, path)

    def error(self, path: str = "", full: str = "") -> UnknownValueError:
        """The error raised when this value is read (at ``path`` relative to its reader, ``full`` in the config)."""
        return UnknownValueError.of(self, path, full)

    def _used(self, *_: Any) -> NoReturn:
        raise self.error()

    def __repr__(self) -> str:
        return f"<not evaluated: {self.where}: {self.construct}>"

    __str__ = __repr__

    def __copy__(self) -> Unknown:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Unknown:
        return self

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        raise self.error()

    __bool__ = __len__ = __iter__ = __contains__ = __getitem__ = __hash__ = _used
    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _used  # type: ignore[assignment]
    __float__ = __int__ = __index__ = __complex__ = __round__ = __format__ = _used
    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = _used
    __truediv__ = __rtruediv__ = __floordiv__ = __rfloordiv__ = __mod__ = __rmod__ = _used
    __pow__ = __rpow__ = __neg__ = __pos__ = __abs__ = __or__ = __ror__ = __and__ = __rand__ = _used


class ConfigDict(dict[Any, Any]):
    """A config dict holding an :class:`Unknown` somewhere: reading an unknown item raises at once.

    ``path`` is this dict's config path (empty at the top). At the top the error's path is
    the key; below it the error's path is empty (a converter reading the dict puts it
    under its own path) and the message names the full key. Iterating over the
    keys, ``in`` and ``len`` never raise; ``items()`` / ``values()`` hand out the
    Unknowns themselves, which raise when used.
    """

    path: str = ""

    def _checked(self, key: Any, value: Any) -> Any:
        if isinstance(value, Unknown):
            if not self.path:  # the config's top: the key is the path
                raise value.error(str(key), str(key))
            # inside: whoever reads this dict (a converter) puts the error under its own path
            raise value.error("", f"{self.path}.{key}")
        return value

    def __getitem__(self, key: Any) -> Any:
        return self._checked(key, super().__getitem__(key))

    def get(self, key: Any, default: Any = None) -> Any:
        """``dict.get``, raising for an unknown value."""
        return self._checked(key, super().get(key, default))

    def pop(self, key: Any, *default: Any) -> Any:
        """``dict.pop``, raising for an unknown value."""
        return self._checked(key, super().pop(key, *default))

    def setdefault(self, key: Any, default: Any = None) -> Any:
        """``dict.setdefault``, raising for an unknown value."""
        return self._checked(key, super().setdefault(key, default))

    def unknown_keys(self) -> Iterator[str]:
        """The keys whose value is not evaluated (at this level)."""
        return (str(k) for k, v in dict.items(self) if isinstance(v, Unknown))

    def __deepcopy__(self, memo: dict[int, Any]) -> ConfigDict:
        import copy

        out = ConfigDict({k: copy.deepcopy(v, memo) for k, v in dict.items(self)})
        out.path = self.path
        return out

    def __reduce__(self) -> Any:
        return (_config_dict, (dict(dict.items(self)), self.path))


def _config_dict(items: dict[Any, Any], path: str) -> ConfigDict:
    out = ConfigDict(items)
    out.path = path
    return out
