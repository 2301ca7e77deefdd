"""The documentation: its generated reference pages, its example recipes, and ``mkdocs build --strict``."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import optiplug
from optiplug.tooling.demo import example_model

ROOT = Path(__file__).resolve().parents[2]
RECIPES = sorted((ROOT / "docs" / "examples" / "recipes").glob("*.yaml"))
NEEDS_THE_EXAMPLE_PLUGIN = {"lion_wsd.yaml"}
PAGES_OF_OTHERS = [ROOT / "docs" / "guarantees.md", ROOT / "docs" / "benchmarks.md"]


def load_generator():
    spec = importlib.util.spec_from_file_location("gen_reference", ROOT / "docs" / "gen_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_docstrings_become_markdown():
    markdown = load_generator().markdown
    text = """Return :class:`~optiplug.OptimizerSpec` records (see :mod:`optiplug.plugin`); ``factory(params,
    **kwargs)`` is called::

        @optiplug.hookimpl
        def optiplug_optimizers():
            return []

    More text.

    >>> built = optiplug.build(config, model)
    """
    assert markdown(text).splitlines() == [
        "Return `OptimizerSpec` records (see `optiplug.plugin`); `factory(params,",
        "**kwargs)` is called:",
        "",
        "```python",
        "@optiplug.hookimpl",
        "def optiplug_optimizers():",
        "    return []",
        "```",
        "",
        "More text.",
        "",
        "```pycon",
        ">>> built = optiplug.build(config, model)",
        "```",
    ]


def test_the_reference_pages_cover_every_hook_and_every_registered_name():
    pages = load_generator().pages()
    hooks = pages["reference/hooks.md"]
    for hook in ("optiplug_optimizers", "optiplug_schedules", "optiplug_param_rules", "optiplug_scaling_rules",
                 "optiplug_wrappers", "optiplug_dialects"):  # fmt: skip
        assert f"### `{hook}`" in hooks
    assert "| `config_class` | `type | None` | required |" in hooks  # RuleSpec's fields, as a table
    options = pages["reference/options.md"]
    registry = optiplug.get_registry()
    for kind, catalogue in (("schedule", registry.schedules), ("param rule kind", registry.rules),
                            ("optimizer wrapper", registry.wrappers), ("optimizer", registry.optimizers)):  # fmt: skip
        for provided in catalogue:
            assert f"### {kind} `{provided.record.name}`" in options
    assert "| `warmup_epochs` | `float` | `0.0` | Epochs of linear warmup" in options  # restarts' help text
    assert pages["changelog.md"].startswith("# Changelog")


@pytest.mark.parametrize("recipe", [r for r in RECIPES if r.name not in NEEDS_THE_EXAMPLE_PLUGIN], ids=lambda p: p.name)
def test_the_documented_recipes_build(recipe):
    model = example_model("vit_like" if "vit" in recipe.name else "resnet_like")
    built = optiplug.build(str(recipe), model)
    assert built.clock.total_steps is not None  # each says its run, so `optiplug plot RECIPE` needs no options


@pytest.mark.skipif(
    not all(page.exists() for page in PAGES_OF_OTHERS),
    reason="docs/guarantees.md or docs/benchmarks.md is not written yet (the nav lists them)",
)
def test_mkdocs_builds_without_warnings(tmp_path):
    pytest.importorskip("mkdocs", reason="mkdocs is not installed (pip install optiplug[docs])")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "site" / "reference" / "options" / "index.html").exists()
