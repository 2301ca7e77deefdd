"""Reading a config from wherever it comes.

A mapping, a Recipe, an OmegaConf DictConfig, or a file (.yaml/.yml through a safe
loader, .json, an MMCV-style .py read without executing it).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from optiplug.errors import ConfigError, join_path
from optiplug.recipe.files import read_text
from optiplug.recipe.pyfile import load_pyfile

YAML_SUFFIXES = (".yaml", ".yml")
MAX_DEPTH = 100
MAX_PARSED_DEPTH = 500
"""YAML nested deeper than this is refused before parsing (shallower, the error names the path)."""
MAX_VALUES = 1_000_000


@attrs.frozen
class Loaded:
    """A config as plain data, and the file it came from (if any)."""

    data: Any
    source: str | None = None


def load(config: Any) -> Loaded:
    """Plain data from any accepted config form (a Recipe passes through unchanged)."""
    if isinstance(config, str | os.PathLike):
        data = load_file(Path(config))
        check_tree(data, str(config))
        check_top(data, str(config))
        return Loaded(data, str(config))
    container = _omegaconf_container(config)
    if container is not None:
        check_tree(container)
        return Loaded(container)
    if isinstance(config, Mapping):
        check_tree(config)
        return Loaded(config)
    if attrs.has(type(config)):
        return Loaded(config)
    raise ConfigError(
        "expected a config as a mapping, a Recipe, or a path to a .yaml/.yml/.json/.py file; "
        f"got {type(config).__name__}"
    )


TOP_EXAMPLE = "optimizer: {name: sgd, lr: 0.1}"


def check_top(data: Any, source: str) -> None:
    """A config file holds a mapping of config keys; an empty file or another value is a ConfigError naming it."""
    if isinstance(data, Mapping):
        return
    if data is None:
        raise ConfigError(f"{source}: the file is empty; expected a config, a mapping such as {TOP_EXAMPLE}")
    described = f"a {type(data).__name__}" if not isinstance(data, str) else f"the text {_short(data)}"
    raise ConfigError(
        f"{source}: expected a config, a mapping of keys such as {TOP_EXAMPLE}, at the top of the file; got {described}"
    )


def _short(text: str, limit: int = 40) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _omegaconf_container(config: Any) -> Any:
    module = type(config).__module__
    if not module.startswith("omegaconf"):
        return None
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    try:
        return OmegaConf.to_container(config, resolve=True)
    except OmegaConfBaseException as exc:
        message = (str(getattr(exc, "msg", "") or exc).splitlines() or ["unknown error"])[0]
        raise ConfigError(
            f"cannot resolve the OmegaConf config: {message}", str(getattr(exc, "full_key", "") or "")
        ) from None


def load_file(path: Path) -> Any:
    """Read a config file by its suffix."""
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    suffix = path.suffix.lower()
    if suffix in YAML_SUFFIXES:
        return load_yaml(read_text(path), str(path))
    if suffix == ".json":
        return _load_json(path)
    if suffix == ".py":
        return load_pyfile(path)
    raise ConfigError(f"cannot read {path.name}: expected a .yaml, .yml, .json or .py config file")


def _load_json(path: Path) -> Any:
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except ValueError as exc:  # an integer of thousands of digits
        raise ConfigError(f"{path}: a value cannot be read: {_first_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{path}: nested too deeply to be a config") from None


def load_yaml(text: str, source: str = "<string>") -> Any:
    """Parse YAML with the safe loader; a syntax error names the line and column."""
    import yaml

    if _flow_depth(text) > MAX_PARSED_DEPTH:  # refused unparsed: PyYAML takes seconds over thousands of levels
        raise ConfigError(f"{source}: nested too deeply to be a config")
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        hint = _indentation_hint(text, mark.line if mark else None)
        problem = exc.problem or exc.context or "syntax error"
        if "python/" in str(exc) or "constructor" in type(exc).__name__.lower():
            problem = f"{problem} (tags that build Python objects are refused: configs are data)"
        raise ConfigError(f"{source}: invalid YAML{where}: {problem}{hint}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source}: invalid YAML: {exc}") from None
    except ValueError as exc:  # a value the constructor refuses: an integer of thousands of digits
        raise ConfigError(f"{source}: a value cannot be read: {_first_line(exc)}") from None
    except RecursionError:
        raise ConfigError(f"{source}: nested too deeply to be a config") from None


def _first_line(exc: BaseException) -> str:
    return (str(exc).splitlines() or [type(exc).__name__])[0].split("; use sys.set_int_max_str_digits")[0]


def _flow_depth(text: str) -> int:
    """How deep YAML flow collections (``[...]``, ``{...}``) nest in ``text``, quoted strings skipped."""
    if text.count("[") + text.count("{") <= MAX_PARSED_DEPTH:
        return 0
    depth = deepest = 0
    quote = ""
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth = max(0, depth - 1)
        elif char == "\n" and depth == 0:
            quote = ""
    return deepest


def _indentation_hint(text: str, line: int | None) -> str:
    """Explain the seed page's mistake: keys under ``- name: x`` indented deeper than ``name``."""
    if line is None:
        return ""
    lines = text.splitlines()
    index = min(line, len(lines) - 1)
    while index >= 0:
        stripped = lines[index].lstrip()
        if stripped.startswith("- ") and ":" in stripped:
            break
        if stripped and not stripped.startswith("#") and index < line:
            return ""
        index -= 1
    else:
        return ""
    key_column = len(lines[index]) - len(lines[index].lstrip()) + 2
    following = next((n for n in lines[index + 1 :] if n.strip() and not n.lstrip().startswith("#")), None)
    if following is None or len(following) - len(following.lstrip()) <= key_column:
        return ""
    key = lines[index].lstrip()[2:].split(":")[0]
    return (
        f"; the keys under the list item on line {index + 1} must be indented to column "
        f"{key_column + 1}, the same as {key!r} (and likewise for the other items)"
    )


def check_tree(data: Any, source: str = "the config") -> None:
    """Refuse data that is not a reasonable tree (too deep, containing itself, or too big).

    A config nested more than MAX_DEPTH levels, containing itself (YAML anchors and
    aliases can make it so) or expanding to more than MAX_VALUES values (aliases of
    aliases: a "billion laughs") is a ConfigError. Everything downstream walks the config
    recursively and copies it: these would exhaust the stack, hang, or exhaust the memory.
    """
    _TreeCheck(source).walk(data, "", 0)


class _TreeCheck:
    """One walk over a config; a node shared through aliases is walked once."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.seen: dict[int, tuple[int, int]] = {}  # id -> (values when expanded, height)
        self.inside: set[int] = set()

    def walk(self, node: Any, path: str, depth: int) -> tuple[int, int]:
        if not isinstance(node, Mapping | list | tuple):
            return 1, 0
        key = id(node)
        if key in self.inside:
            raise ConfigError(f"{self.source}: this value contains itself (an alias of an enclosing anchor)", path)
        if key not in self.seen:
            self.inside.add(key)
            self.seen[key] = self._children(node, path, depth)
            self.inside.discard(key)
        values, height = self.seen[key]
        self._check(values, depth + height, path)
        return values, height

    def _children(self, node: Any, path: str, depth: int) -> tuple[int, int]:
        self._check(1, depth, path)
        items = node.items() if isinstance(node, Mapping) else enumerate(node)
        values, height = 1, 0
        for key, value in items:
            child = join_path(path, str(key) if isinstance(node, Mapping) else key)
            child_values, child_height = self.walk(value, child, depth + 1)
            values, height = values + child_values, max(height, child_height + 1)
            self._check(values, depth, path)
        return values, height

    def _check(self, values: int, depth: int, path: str) -> None:
        if depth > MAX_DEPTH:
            raise ConfigError(f"{self.source}: nested more than {MAX_DEPTH} levels deep", path)
        if values > MAX_VALUES:
            raise ConfigError(
                f"{self.source}: more than {MAX_VALUES:,} values with its aliases expanded (a config is far smaller)",
                path,
            )
