"""Reading configs from files: safe YAML with line numbers, JSON, and refused forms."""

from __future__ import annotations

import json

import pytest

import optiplug
from optiplug.recipe.loaders import load

RECIPE_YAML = """
optimizer: {name: sgd, lr: 0.1}
schedules:
  lr: {name: cosine, start_value: 0.1, end_value: 0.0}
"""


def test_yaml_and_json_files(tmp_path):
    (tmp_path / "r.yaml").write_text(RECIPE_YAML)
    (tmp_path / "r.json").write_text(json.dumps(load(tmp_path / "r.yaml").data))
    assert load(tmp_path / "r.yaml").data == load(str(tmp_path / "r.json")).data
    assert load(tmp_path / "r.yaml").source.endswith("r.yaml")


def test_yaml_syntax_error_names_line_and_column(tmp_path):
    (tmp_path / "bad.yaml").write_text("optimizer:\n  name: sgd\n lr: [0.1\n")
    with pytest.raises(optiplug.ConfigError, match=r"bad.yaml: invalid YAML at line \d+, column \d+"):
        load(tmp_path / "bad.yaml")


def test_python_tags_are_refused(tmp_path):
    (tmp_path / "evil.yaml").write_text("optimizer: !!python/object/apply:os.system ['echo hacked']\n")
    with pytest.raises(optiplug.ConfigError, match="tags that build Python objects are refused"):
        load(tmp_path / "evil.yaml")


def test_missing_file_and_unknown_suffix(tmp_path):
    with pytest.raises(optiplug.ConfigError, match="config file not found"):
        load(tmp_path / "nope.yaml")
    (tmp_path / "r.toml").write_text("")
    with pytest.raises(optiplug.ConfigError, match=r"expected a .yaml, .yml, .json or .py config file"):
        load(tmp_path / "r.toml")


def test_invalid_json(tmp_path):
    (tmp_path / "r.json").write_text('{"optimizer": }')
    with pytest.raises(optiplug.ConfigError, match="invalid JSON at line 1, column 15"):
        load(tmp_path / "r.json")


def test_other_objects_are_refused():
    with pytest.raises(optiplug.ConfigError, match="got int"):
        load(3)


SEED_COMPOSITE = """OPTIMIZER:
  param_schedulers:
    lr:
      name: composite
      schedulers:
        - name: linear
            start_value: 0.6
            end_value: 4.8
"""


def test_seed_indentation_mistake_gets_a_hint(tmp_path):
    (tmp_path / "seed.yaml").write_text(SEED_COMPOSITE)
    with pytest.raises(optiplug.ConfigError) as info:
        load(tmp_path / "seed.yaml")
    assert "the keys under the list item on line 6 must be indented to column 11, the same as 'name'" in str(info.value)


def test_hint_skips_comment_lines(tmp_path):
    text = SEED_COMPOSITE.replace(
        "        - name: linear\n", "        - name: linear\n          # one\n          # two\n"
    )
    (tmp_path / "seed.yaml").write_text(text)
    with pytest.raises(optiplug.ConfigError, match="the keys under the list item on line 6"):
        load(tmp_path / "seed.yaml")


def test_no_hint_when_the_indentation_is_right(tmp_path):
    (tmp_path / "other.yaml").write_text("a:\n  - name: linear\n    note: a: b\n")
    with pytest.raises(optiplug.ConfigError) as info:
        load(tmp_path / "other.yaml")
    assert "must be indented" not in str(info.value)
