"""Reading a config file's text safely: a regular file of bounded size, decoded as UTF-8."""

from __future__ import annotations

from pathlib import Path

from optiplug.errors import ConfigError

MAX_FILE_BYTES = 16 * 2**20
"""The largest config file read (16 MiB); a larger one is refused before it is read."""


def read_text(path: Path, where: str = "") -> str:
    """A config file's text: a regular file (not a device or a pipe, which could block), of at most 16 MiB."""
    try:
        if not path.is_file():
            raise ConfigError(f"cannot read {path}{where}: not a regular file")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise ConfigError(f"cannot read {path}{where}: {size:,} bytes, more than a config's {MAX_FILE_BYTES:,}")
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}{where}: {exc}") from None
