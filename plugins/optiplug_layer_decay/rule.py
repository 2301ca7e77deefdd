"""The ``layer_decay`` rule: depth from names, a multiplier per depth.

Presets give the naming conventions in use:

- ``vissl_vit``: names containing ``heads`` -> L + 1 (checked first); depth 0 for names
  containing patch_embed, pos_embed or cls_token; ``blocks.k.`` -> k + 1; any other name -> L.
- ``timm_vit``: depth 0 for names starting with cls_token, pos_embed, patch_embed or
  reg_token; ``blocks.k`` -> k + 1; any other name -> L + 1.
- ``vissl_resnet``: depth 0 for ``_feature_blocks.conv1`` / ``bn1``; ``.layerN.`` -> N;
  any other name -> L + 1 (L = 4 for a ResNet).
- ``mmselfsup_vit``: depth 0 for pos_embed, cls_token, patch_embed;
  ``backbone.layers.k.`` -> k + 1; any other name -> L + 1.

``num_layers`` L defaults to the largest block index found in the model's names
(frozen parameters included, so freezing never shifts the mapping) plus the offset.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from optiplug import ConfigError, ParamInfo
from optiplug.plugin import help_field, in_range, one_of, positive

PRESETS: dict[str, dict[str, Any]] = {
    "vissl_vit": {
        "stem": [r"patch_embed", r"pos_embed", r"cls_token"],
        "block": r"blocks\.(\d+)\.",
        "block_offset": 1,
        "head": [r"heads"],
        "rest": "last_block",
    },
    "timm_vit": {
        "stem": [r"^(cls_token|pos_embed|patch_embed|reg_token)"],
        "block": r"^blocks\.(\d+)",
        "block_offset": 1,
        "head": [],
        "rest": "head",
    },
    "vissl_resnet": {
        "stem": [r"_feature_blocks\.(conv1|bn1)\."],
        "block": r"\.layer(\d+)\.",
        "block_offset": 0,
        "head": [],
        "rest": "head",
    },
    "mmselfsup_vit": {
        "stem": [r"pos_embed", r"cls_token", r"patch_embed"],
        "block": r"backbone\.layers\.(\d+)\.",
        "block_offset": 1,
        "head": [],
        "rest": "head",
    },
}


@attrs.frozen
class LayerDecayRule:
    """Options of ``kind: layer_decay``; a preset fills the patterns not given."""

    decay: float = help_field("The per-layer factor, in (0, 1].", validator=in_range(0.0, 1.0))
    preset: str = help_field(
        "Naming convention: vissl_vit, timm_vit, vissl_resnet, mmselfsup_vit.",
        default="vissl_vit",
        validator=one_of(tuple(PRESETS)),
    )
    num_layers: int | None = help_field(
        "L; default: found from the model's block names.", default=None, validator=positive()
    )
    stem: list[str] | None = help_field("Regexes (re.search) of depth-0 names.", default=None)
    block: str | None = help_field("Regex with one group, the block index k.", default=None)
    block_offset: int | None = help_field("Depth of block k is k + block_offset.", default=None)
    head: list[str] | None = help_field("Regexes of depth L + 1 names.", default=None)
    rest: str | None = help_field(
        "Depth of other names: last_block (L) or head (L + 1).",
        default=None,
        validator=attrs.validators.optional(one_of(("last_block", "head"))),
    )

    def __attrs_post_init__(self) -> None:
        if self.decay <= 0:
            raise ConfigError(f"must be in (0, 1], got {self.decay}", "decay")

    def resolved(self, key: str) -> Any:
        """The option ``key``, from the rule or else from its preset."""
        value = getattr(self, key)
        return PRESETS[self.preset][key] if value is None else value


def _compile(pattern: str, path: str) -> re.Pattern[str]:
    try:
        return re.compile(pattern)
    except re.error as exc:
        raise ConfigError(f"invalid regular expression {pattern!r}: {exc}", path) from None


class LayerDepth:
    """Depth of a parameter name, and the lr multiplier of that depth."""

    def __init__(self, config: LayerDecayRule) -> None:
        self.decay = config.decay
        self.stem = [_compile(p, f"stem[{i}]") for i, p in enumerate(config.resolved("stem"))]
        self.head = [_compile(p, f"head[{i}]") for i, p in enumerate(config.resolved("head"))]
        self.block = _compile(config.resolved("block"), "block")
        if self.block.groups != 1:
            raise ConfigError(f"needs exactly one group (the block index), got {self.block.pattern!r}", "block")
        self.offset = int(config.resolved("block_offset"))
        self.rest_is_head = config.resolved("rest") == "head"
        self.num_layers = config.num_layers

    def layers_of(self, names: list[str]) -> int:
        """L from every parameter name of the model (frozen ones included)."""
        indices = [int(m.group(1)) for n in names if (m := self.block.search(n))]
        if not indices:
            raise ConfigError(
                f"no parameter name matches the block pattern {self.block.pattern!r}; "
                "give num_layers or another preset",
                "block",
            )
        return max(indices) + self.offset

    def depth(self, name: str, layers: int) -> int:
        """The depth of ``name`` in a model of ``layers`` layers (head patterns first, as VISSL checks them)."""
        if any(p.search(name) for p in self.head):
            return layers + 1
        if any(p.search(name) for p in self.stem):
            return 0
        match = self.block.search(name)
        if match:
            return int(match.group(1)) + self.offset
        return layers + 1 if self.rest_is_head else layers

    def multiplier(self, name: str, layers: int) -> float:
        """``decay ** (L + 1 - depth)``."""
        return float(self.decay ** (layers + 1 - self.depth(name, layers)))


def compile_layer_decay(config: LayerDecayRule) -> Any:
    """The matcher: every parameter matches, with ``lr_mult`` of its depth."""
    depth = LayerDepth(config)
    layers: dict[int, int] = {}

    def match(info: ParamInfo) -> dict[str, float]:
        key = id(info.root)
        if key not in layers:
            if depth.num_layers is not None:
                layers[key] = depth.num_layers
            else:
                names = [n for n, _ in info.root.named_parameters()] if info.root is not None else [info.name]
                layers[key] = depth.layers_of(names)
        return {"lr_mult": depth.multiplier(info.name, layers[key])}

    return match
