"""MMCV-style .py configs: read as data, merged with their _base_ files, never executed (decision M7)."""

from __future__ import annotations

import os
import textwrap
import time
from pathlib import Path

import pytest

from optiplug import ConfigError
from optiplug.recipe.loaders import load_file
from optiplug.recipe.pyfile import load_pyfile


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def test_values_the_subset_allows(tmp_path):
    path = write(
        tmp_path,
        "c.py",
        '''
        """A config."""
        epochs = 20
        lr = 0.1 * 4 / 2 - -0.05 + 2 ** -2 + 7 // 2 + 7 % 4
        norm = dict(mean=[123.675, 116.28], to_rgb=True)
        pipeline = [dict(type='Normalize', **norm), dict(type='Crop', size=(224, 224))]
        more = [*pipeline, None] + [False]
        optimizer = {'type': 'SGD', 'lr': lr, **dict(momentum=0.9)}
        runner: dict = dict(type='EpochBasedRunner', max_epochs=epochs)
        a = b = [1]
        regex = r'(bn|gn)(\\d+)?.(weight|bias)'
        name = 'conv' + '1'
        __private = 3
        ''',
    )
    data = load_pyfile(path)
    assert data["lr"] == 0.1 * 4 / 2 + 0.05 + 0.25 + 3 + 3
    assert data["pipeline"][0] == {"type": "Normalize", "mean": [123.675, 116.28], "to_rgb": True}
    assert data["pipeline"][1]["size"] == (224, 224)
    assert data["more"][-2:] == [None, False]
    assert data["optimizer"] == {"type": "SGD", "lr": data["lr"], "momentum": 0.9}
    assert data["runner"] == {"type": "EpochBasedRunner", "max_epochs": 20}
    assert data["regex"] == r"(bn|gn)(\d+)?.(weight|bias)"
    assert data["name"] == "conv1"
    assert "__private" not in data
    data["a"].append(2)
    assert data["b"] == [1]  # each name holds its own copy


def test_names_are_copies(tmp_path):
    data = load_pyfile(write(tmp_path, "c.py", "base = dict(x=[1])\nchild = dict(y=base)\n"))
    data["child"]["y"]["x"].append(2)
    assert data["base"] == {"x": [1]}


def test_base_files_merge_recursively(tmp_path):
    write(tmp_path, "_base_/runtime.py", "optimizer_config = dict(grad_clip=None)\nlog = dict(interval=50)\n")
    write(
        tmp_path,
        "_base_/schedule.py",
        "_base_ = 'runtime.py'\noptimizer = dict(type='SGD', lr=0.1, momentum=0.9)\n"
        "lr_config = dict(policy='step', step=[30, 60], gamma=0.1)\n",
    )
    child = write(
        tmp_path,
        "configs/child.py",
        """
        _base_ = ['../_base_/schedule.py']
        optimizer = dict(lr=0.2, paramwise_options={'bias': dict(weight_decay=0.)})
        lr_config = dict(_delete_=True, policy='CosineAnnealing', min_lr=0.)
        optimizer_config = dict(_delete_=True, grad_clip=dict(max_norm=35, norm_type=2))
        """,
    )
    data = load_pyfile(child)
    assert data["optimizer"] == {
        "type": "SGD",
        "lr": 0.2,
        "momentum": 0.9,
        "paramwise_options": {"bias": {"weight_decay": 0.0}},
    }
    assert data["lr_config"] == {"policy": "CosineAnnealing", "min_lr": 0.0}
    assert data["optimizer_config"] == {"grad_clip": {"max_norm": 35, "norm_type": 2}}
    assert data["log"] == {"interval": 50}
    assert BASE_KEYS.isdisjoint(data)


BASE_KEYS = {"_base_", "_delete_"}


def test_delete_on_a_new_key_is_dropped(tmp_path):
    write(tmp_path, "base.py", "x = 1\n")
    data = load_pyfile(
        write(tmp_path, "c.py", "_base_ = 'base.py'\ny = dict(_delete_=True, z=dict(_delete_=True, w=1))\n")
    )
    assert data == {"x": 1, "y": {"z": {"w": 1}}}


def test_a_dict_over_none_needs_delete(tmp_path):
    # The seed: "if the base config has grad_clip=None, add _delete_=True".
    write(tmp_path, "base.py", "optimizer_config = dict(grad_clip=None)\n")
    child = write(
        tmp_path, "c.py", "_base_ = 'base.py'\noptimizer_config = dict(grad_clip=dict(max_norm=35, norm_type=2))\n"
    )
    with pytest.raises(ConfigError, match="add _delete_=True") as caught:
        load_pyfile(child)
    assert caught.value.path == "optimizer_config.grad_clip"
    assert "c.py" in str(caught.value)


def test_duplicate_keys_among_bases_are_refused(tmp_path):
    write(tmp_path, "a.py", "lr = 1\n")
    write(tmp_path, "b.py", "lr = 2\n")
    with pytest.raises(ConfigError, match="both set lr"):
        load_pyfile(write(tmp_path, "c.py", "_base_ = ['a.py', 'b.py']\n"))


def test_missing_base_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found.*nope.py.*a _base_ of"):
        load_pyfile(write(tmp_path, "c.py", "_base_ = 'nope.py'\n"))


def test_base_cycles_are_found(tmp_path):
    write(tmp_path, "a.py", "_base_ = 'b.py'\n")
    write(tmp_path, "b.py", "_base_ = './sub/../a.py'\n")
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match=r"include each other \(a.py -> b.py -> a.py\)"):
        load_pyfile(tmp_path / "a.py")


def test_a_symlink_back_to_the_file_is_a_cycle(tmp_path):
    write(tmp_path, "a.py", "_base_ = 'link.py'\n")
    os.symlink(tmp_path / "a.py", tmp_path / "link.py")
    with pytest.raises(ConfigError, match="include each other"):
        load_pyfile(tmp_path / "a.py")


def test_a_symlink_loop_is_a_config_error(tmp_path):
    os.symlink(tmp_path / "loop.py", tmp_path / "loop.py")
    with pytest.raises(ConfigError, match="loop.py"):
        load_pyfile(write(tmp_path, "c.py", "_base_ = 'loop.py'\n"))


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("import os\n", 1, "an import"),
        ("x = 1\nfrom os import system\n", 2, "an import"),
        ("x = print('hi')\n", 1, "a call to print()"),
        ("x = 1\ny = __import__('os').system('true')\n", 2, "a call to __import__('os').system()"),
        ("x = ().__class__\n", 1, "an attribute access"),
        ("x = dict(a=1)['a']\n", 1, "a subscript"),
        ("f = lambda: 1\n", 1, "a lambda"),
        ("x = [i for i in range(3)]\n", 1, "a comprehension"),
        ("x = f'{1}'\n", 1, "an f-string"),
        ("x = 1 if True else 2\n", 1, "a conditional expression"),
        ("x = 1 < 2\n", 1, "a comparison"),
        ("def f():\n    pass\n", 1, "a function definition"),
        ("class A:\n    pass\n", 1, "a class definition"),
        ("for i in []:\n    pass\n", 1, "a loop"),
        ("x = 1\nx += 1\n", 2, "an augmented assignment"),
        ("open('/tmp/x', 'w')\n", 1, "a call to open()"),
        ("x = y\n", 1, "'y' is not a name assigned earlier"),
        ("dict = 1\nx = dict(a=1)\n", 2, "a call to dict()"),
        ("x = dict([('a', 1)])\n", 1, "keyword arguments only"),
        ("a, b = 1, 2\n", 1, "only plain names"),
        ("x = {{_base_.model}}\n", 1, "{{_base_.name}} substitution is not supported"),
        ("x = 'a' * 3\n", 1, "numbers only"),
        ("x = [0] * 10 ** 9\n", 1, "numbers only"),
        ("x = 1 / 0\n", 1, "ZeroDivisionError"),
        ("x = 2 ** 5000\n", 1, "more than 4096 bits"),
        ("x = 2 ** 4000 * 2 ** 4000\n", 1, "more than 4096 bits"),
        ("x = b'raw'\n", 1, "bytes literals"),
        ("x = (\n", 1, "invalid Python syntax"),
        ("x = 1j\n", 1, "complex literals"),
        ("x = ...\n", 1, "ellipsis literals"),
        ("x = [1, 2][0:1]\n", 1, "a subscript"),
        ("x = [(y := 1)]\n", 1, "an assignment expression"),
        ("x = {i: i for i in ()}\n", 1, "a comprehension"),
        ("x = (i for i in ())\n", 1, "a generator expression"),
        ("x = {1, 2}\n", 1, "a set"),
        ("x = True and False\n", 1, "a boolean operation"),
        ("x = dict(a=1, **print())\n", 1, "a call to print()"),
        ("x = [*range(3)]\n", 1, "a call to range()"),
        ("x = __builtins__\n", 1, "'__builtins__' is not a name assigned earlier"),
        ("x = dict\n", 1, "'dict' is not a name assigned earlier"),
        ("x = 1\n\n@dec\ndef f():\n    pass\n", 4, "a function definition"),
        ("async def f():\n    pass\n", 1, "a function definition"),
        ("x = 1\nassert x\n", 2, "Assert"),
        ("raise SystemExit\n", 1, "Raise"),
        ("while True:\n    pass\n", 1, "a loop"),
        ("try:\n    x = 1\nexcept Exception:\n    pass\n", 1, "a try statement"),
        ("with open('f') as f:\n    pass\n", 1, "a with statement"),
        ("x = 1\ndel x\n", 2, "a del statement"),
        ("global x\n", 1, "a global statement"),
        ("match 1:\n    case 1:\n        pass\n", 1, "Match"),
        ("x.y = 1\n", 1, "only plain names"),
        ("x = 1\nx[0] = 1\n", 2, "only plain names"),
        ("x: int\n", 1, "AnnAssign"),
        ("x = [1]\ny = [*x, *1]\n", 2, "only a list or tuple can be unpacked"),
        ("x = {**[1]}\n", 1, "only a dict can be unpacked"),
        ("x = {(1, 2): 3}\n", 1, "a dict key must be"),
        ("x = 'a' + 1\n", 1, "numbers only"),
        ("x = " + "-" * 2000 + "1\n", 1, "nested too deeply"),
        ("x = 10.0 ** 400\n", 1, "OverflowError"),
    ],
)
def test_anything_but_data_is_refused_with_the_line(tmp_path, source, line, words):
    path = write(tmp_path, "bad.py", source)
    with pytest.raises(ConfigError) as caught:
        load_pyfile(path)
    message = str(caught.value)
    assert f"{path}, line {line}" in message
    assert words in message


def test_errors_name_the_config_path(tmp_path):
    path = write(tmp_path, "c.py", "optimizer = dict(type='SGD', lr=compute(0.1))\n")
    with pytest.raises(ConfigError) as caught:
        load_pyfile(path)
    assert caught.value.path == "optimizer.lr"


def test_malicious_configs_have_no_side_effect(tmp_path):
    marker = tmp_path / "pwned"
    sources = [
        f"import os\nos.system('touch {marker}')\n",
        f"x = __import__('os').system('touch {marker}')\n",
        f"x = open('{marker}', 'w')\n",
        f"x = ().__class__.__base__.__subclasses__()\nopen('{marker}', 'w')\n",
        f"x = dict(a=1)\nexec(\"open('{marker}', 'w')\")\n",
    ]
    for i, source in enumerate(sources):
        with pytest.raises(ConfigError):
            load_pyfile(write(tmp_path, f"evil{i}.py", source))
    assert not marker.exists()


def test_huge_powers_are_refused_without_computing_them(tmp_path):
    path = write(tmp_path, "c.py", "x = 10 ** 10 ** 10\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match="numbers only|4096 bits"):
        load_pyfile(path)
    assert time.monotonic() - started < 5


def test_the_core_loader_reads_py_files(tmp_path):
    path = write(tmp_path, "c.py", "optimizer = dict(type='SGD', lr=0.1)\n")
    assert load_file(path) == {"optimizer": {"type": "SGD", "lr": 0.1}}


def test_a_billion_laughs_is_refused_before_it_is_built(tmp_path):
    lines = ["a0 = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]"] + [
        f"a{i} = [{', '.join([f'a{i - 1}'] * 10)}]" for i in range(1, 9)
    ]
    path = write(tmp_path, "laughs.py", "\n".join(lines) + "\n")
    started = time.monotonic()
    with pytest.raises(ConfigError, match=r"laughs.py, line 6: the file makes more than 1,000,000 values"):
        load_pyfile(path)
    assert time.monotonic() - started < 5


def test_names_copied_into_each_other_within_the_budget_are_fine(tmp_path):
    lines = ["a0 = [1, 2]"] + [f"a{i} = [a{i - 1}, a{i - 1}]" for i in range(1, 12)]
    data = load_pyfile(write(tmp_path, "c.py", "\n".join(lines) + "\n"))
    assert len(data["a11"]) == 2 and data["a11"][0] is not data["a11"][1]


def test_a_chain_of_names_nested_too_deeply_is_refused_with_its_line(tmp_path):
    source = "a0 = [1]\n" + "".join(f"a{i} = [a{i - 1}]\n" for i in range(1, 3000))
    with pytest.raises(ConfigError, match=r"c.py, line \d+: nested too deeply to be a config"):
        load_pyfile(write(tmp_path, "c.py", source))


def test_a_base_that_is_not_a_regular_file_is_refused_without_reading_it(tmp_path):
    (tmp_path / "folder.py").mkdir()
    with pytest.raises(ConfigError, match="folder.py: not a regular file"):
        load_pyfile(write(tmp_path, "c.py", "_base_ = 'folder.py'\n"))
    os.symlink("/dev/zero", tmp_path / "zero.py")  # would never end, and fill the memory
    with pytest.raises(ConfigError, match="zero.py: not a regular file"):
        load_pyfile(write(tmp_path, "d.py", "_base_ = 'zero.py'\n"))


def test_a_huge_base_file_is_refused_by_its_size(tmp_path):
    huge = tmp_path / "huge.py"
    with huge.open("wb") as out:
        out.truncate(17 * 2**20)
    with pytest.raises(ConfigError, match=r"huge.py: 17,825,792 bytes, more than a config's 16,777,216"):
        load_pyfile(write(tmp_path, "c.py", "_base_ = 'huge.py'\n"))


def test_a_symlinked_directory_loop_is_a_cycle_not_a_hang(tmp_path):
    write(tmp_path, "sub/a.py", "_base_ = 'loop/loop/loop/a.py'\nx = 1\n")
    os.symlink(tmp_path / "sub", tmp_path / "sub" / "loop")
    with pytest.raises(ConfigError, match=r"include each other \(a.py -> a.py\)"):
        load_pyfile(tmp_path / "sub" / "a.py")


def test_bases_nested_too_deep_are_refused(tmp_path):
    for i in range(40):
        write(tmp_path, f"b{i}.py", f"_base_ = 'b{i + 1}.py'\nv{i} = {i}\n")
    write(tmp_path, "b40.py", "v40 = 40\n")
    with pytest.raises(ConfigError, match="_base_ files nested more than 32 deep"):
        load_pyfile(tmp_path / "b0.py")
    assert load_pyfile(tmp_path / "b10.py")["v40"] == 40


def test_a_base_outside_the_directory_is_read_like_any_other(tmp_path):
    write(tmp_path, "shared/schedule.py", "lr_config = dict(policy='Fixed')\n")
    data = load_pyfile(write(tmp_path, "project/configs/c.py", f"_base_ = {str(tmp_path / 'shared/schedule.py')!r}\n"))
    assert data == {"lr_config": {"policy": "Fixed"}}


def test_nothing_a_refused_file_says_is_run_even_partly(tmp_path):
    """The whole file is checked before anything is used: names before the bad line have no effect either."""
    marker = tmp_path / "pwned"
    source = f"x = dict(path={str(marker)!r})\ny = open(x['path'], 'w')\n"
    with pytest.raises(ConfigError, match="line 2: a call to open"):
        load_pyfile(write(tmp_path, "c.py", source))
    assert not marker.exists()
