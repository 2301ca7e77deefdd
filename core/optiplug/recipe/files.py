"""Reading a config file's text safely: a regular file of bounded size, decoded as UTF-8.

A file that is not text (NUL bytes, UTF-16, bytes that are not UTF-8) is a ConfigError
naming the file and saying what was expected, never a codec error.
"""

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
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read {path}{where}: {exc.strerror or exc}") from None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise ConfigError(f"cannot read {path}{where}: UTF-16 text; expected a config saved as UTF-8 text")
    if b"\0" in data:
        raise ConfigError(f"cannot read {path}{where}: a binary file (it holds NUL bytes); expected a text config")
    try:
        return data.decode("utf-8-sig")  # a byte-order mark, as some editors write, is dropped
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            f"cannot read {path}{where}: not UTF-8 text (byte 0x{data[exc.start]:02x} on line {line}); "
            "expected a config saved as UTF-8 text"
        ) from None
