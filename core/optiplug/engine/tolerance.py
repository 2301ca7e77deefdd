"""What a build refuses, and what it only warns about because the config's framework accepts it.

Every check that a foreign framework does not make (:data:`TOLERABLE_CHECKS`) goes
through :meth:`Tolerance.refuse`: a ConfigError, unless the config's dialect declares
the check in ``DialectSpec.tolerates``; then an :class:`OptiplugWarning` with the same
message in the dialect's own keys, and the build goes on as that framework would.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

import attrs

from optiplug.errors import ConfigError, OptiplugWarning
from optiplug.plugin_system.records import TOLERABLE_CHECKS, DialectSpec


def _same(error: ConfigError) -> ConfigError:
    return error


@attrs.frozen
class Tolerance:
    """The checks to warn about instead of refusing, the framework that accepts them, and how paths read."""

    checks: frozenset[str] = frozenset()
    framework: str = ""
    in_user_terms: Callable[[ConfigError], ConfigError] = _same

    @classmethod
    def of(cls, dialect: DialectSpec | None, in_user_terms: Callable[[ConfigError], ConfigError] = _same) -> Tolerance:
        """What ``dialect`` tolerates (nothing for a canonical recipe)."""
        if dialect is None:
            return STRICT
        return cls(frozenset(dialect.tolerates), dialect.name, in_user_terms)

    def refuse(self, check: str, error: ConfigError) -> None:
        """Raise ``error``, or warn with it where the config's framework accepts what it refuses."""
        if check not in TOLERABLE_CHECKS:
            raise ValueError(f"unknown check {check!r}")
        if check not in self.checks:
            raise error
        warnings.warn(
            f"{self.in_user_terms(error)} ({self.framework} accepts this, so optiplug builds it as "
            f"{self.framework} would)",
            OptiplugWarning,
            stacklevel=2,
        )


STRICT = Tolerance()
"""Refuse everything: canonical recipes, and dialects that tolerate nothing."""
