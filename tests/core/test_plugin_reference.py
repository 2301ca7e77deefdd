"""The generated reference pages: the Python API from the docstrings, the options of the
first-party plugins only (not whatever else the builder installed), and a site without
``__pycache__``.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import yaml

import optiplug

ROOT = Path(__file__).resolve().parents[2]
LION = """
import torch
import optiplug

@optiplug.hookimpl
def optiplug_optimizers():
    return [optiplug.OptimizerSpec(name="third_party_lion", factory=torch.optim.SGD, description="Lion")]
"""


@pytest.fixture(scope="module")
def gen_reference():
    spec = importlib.util.spec_from_file_location("gen_reference_under_test", ROOT / "docs" / "gen_reference.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_api_page_documents_build_built_step_with_amp_the_recipe_and_the_errors(gen_reference):
    page = gen_reference.pages()["reference/api.md"]
    assert "### `optiplug.build(config: Any, model: Any, steps_per_epoch: int | None = None" in page
    assert "#### `Built.step(self, loss: torch.Tensor, scaler: torch.amp.GradScaler | None = None) -> bool`" in page
    assert "built.step(loss, scaler)" in page and "torch.amp.GradScaler" in page
    for name in ("Built", "Recipe", "RunConfig", "ScheduleConfig", "GroupSummary"):
        assert f"### `optiplug.{name}`" in page, name
    assert "### `optiplug.ConfigError(OptiplugError, ValueError)`" in page
    assert "### `optiplug.PluginError(OptiplugError)`" in page
    first_line = optiplug.build.__doc__.strip().splitlines()[0].replace("``", "`")
    assert first_line in page  # the docstring itself, not a summary of it
    assert "[Reference: hooks and records](hooks.md)" in page


def test_the_options_page_shows_only_the_first_party_plugins(gen_reference, fake_distribution):
    fake_distribution("optiplug-lion", {"lion": "lion_plugin"}, {"lion_plugin": LION})
    assert "third_party_lion" in optiplug.get_registry().optimizers  # installed for the builder...
    page = gen_reference.pages()["reference/options.md"]
    assert "third_party_lion" not in page and "## lion" not in page  # ...but not documented
    assert "## torch" in page and "## vissl" in page and "## core" in page


def test_the_site_ships_no_python_cache(tmp_path):
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text())
    from mkdocs.config import load_config
    from mkdocs.structure.files import get_files

    docs = tmp_path / "docs"
    (docs / "__pycache__").mkdir(parents=True)
    (docs / "__pycache__" / "gen_reference.cpython-311.pyc").write_bytes(b"\0")
    (docs / "sub" / "__pycache__").mkdir(parents=True)
    (docs / "sub" / "__pycache__" / "x.pyc").write_bytes(b"\0")
    (docs / "index.md").write_text("# index\n")
    site = tmp_path / "mkdocs.yml"
    site.write_text(yaml.safe_dump({"site_name": "t", "docs_dir": str(docs), "exclude_docs": config["exclude_docs"]}))
    files = get_files(load_config(str(site)))
    shipped = [f.src_uri for f in files if f.inclusion.is_included()]
    assert shipped == ["index.md"]
