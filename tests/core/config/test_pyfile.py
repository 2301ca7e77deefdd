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
from optiplug.recipe.pyvalues import Unknown


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
        ("import os\nx = os.getcwd()\n", 2, "a call to os.getcwd()"),
        ("x = print('hi')\n", 1, "a call to print()"),
        ("x = 1\ny = __import__('os').system('true')\n", 2, "a call to __import__() (it may change any name)"),
        ("x = ().__class__\n", 1, "the attribute ().__class__"),
        ("x = lambda: 1\n", 1, "a lambda"),
        ("def x():\n    pass\n", 1, "x, defined by a def or class statement"),
        ("class x:\n    pass\n", 1, "x, defined by a def or class statement"),
        ("x = 1\nopen('/tmp/x', 'w')\n", 2, "a call to open() (it may change any name)"),
        ("x = y\n", 1, "the name 'y', assigned nowhere before"),
        ("dict = 1\nx = dict(a=1)\n", 2, "a call to dict()"),
        ("x = 1 / 0\n", 1, "1 / 0 (ZeroDivisionError"),
        ("x = b'raw'\n", 1, "the literal b'raw'"),
        ("x = 1j\n", 1, "the literal 1j"),
        ("x = dict(a=1, **print())\n", 1, "a call to print()"),
        ("x = __builtins__\n", 1, "the name '__builtins__'"),
        ("x = dict\n", 1, "the builtin dict used as a value"),
        ("x = 1\nwhile True:\n    x = 2\n", 2, "a while loop"),
        ("try:\n    x = 1\nexcept Exception:\n    pass\n", 1, "a try statement"),
        ("with open('f') as x:\n    pass\n", 1, "a with statement"),
        ("x = [1]\nx.y = 1\n", 2, "an assignment to x.y"),
        ("x = {**[1]}\n", 1, "**[1], which is not a dict"),
        ("x = 'a' + 1\n", 1, "'a' + 1 (not evaluated on these operands)"),
        ("x = 10.0 ** 400\n", 1, "OverflowError"),
        ("x = [1]\nexec('x = 2')\n", 2, "a call to exec() (it may change any name)"),
        ("x = dict(a=1)\nfoo(x)\n", 2, "a call to foo() (it may change any name)"),
        ("x = dict(a=1)\ny = foo(x)\n", 2, "a call to foo()"),
        ("x = dict(a=1)\ny = [x]\nfoo(y)\n", 3, "a call to foo()"),
        ("x = dict(a=1)\nx.update(foo())\n", 2, "a call to foo()"),
        ("x = 1\nfrom m import *\n", 2, "from m import * (it may change any name)"),
        ("x = [1]\nif flag:\n    x.append(2)\n", 2, "an if on flag, which is not known"),
        ("x = [1]\nfor i in items:\n    x.append(i)\n", 2, "a loop over items, which is not known"),
        ("x = [1]\ny = [x]\nglobals()['x'] = 2\n", 3, "a call to globals() (it may change any name)"),
        ("x = {}\nx[foo()] = 1\n", 2, "an assignment to x[foo()]"),
    ],
)
def test_what_is_not_evaluated_is_unknown_and_reading_it_names_the_line(tmp_path, source, line, words):
    """The file loads; only reading the value that depends on the construct is an error, naming it."""
    path = write(tmp_path, "bad.py", source)
    data = load_pyfile(path)
    assert "x" in data
    with pytest.raises(ConfigError) as caught:
        data["x"]
    message = str(caught.value)
    assert f"{path}, line {line}: not evaluated: " in message
    assert words in message
    assert "never runs them" in message
    assert caught.value.path == "x"
    assert isinstance(dict.__getitem__(data, "x"), Unknown)


@pytest.mark.parametrize(
    ("source", "line", "words"),
    [
        ("x = (\n", 1, "invalid Python syntax"),
        ("x = [0] * 10 ** 9\n", 1, "a sequence of more than 100,000 items"),
        ("x = 'ab' * 10 ** 9\n", 1, "a sequence of more than 100,000 items"),
        ("x = 2 ** 5000\n", 1, "more than 4096 bits"),
        ("x = 2 ** 4000 * 2 ** 4000\n", 1, "more than 4096 bits"),
        ("x = list(range(10 ** 9))\n", 1, "a range of more than 100,000 items"),
        ("x = [i for i in range(10 ** 9)]\n", 1, "a range of more than 100,000 items"),
        ("x = [[i, j] for i in range(1000) for j in range(1000)]\n", 1, "more than"),
        ("x = [1] * 1000\ny = [x] * 1000\n", 2, "more than 1,000,000 values"),
        ("x = []\nx.append(x)\ny = [x]\n", 3, "contains itself"),
        ("x = " + "-" * 2000 + "1\n", 1, "nested too deeply"),
        ("x = [1]\nfor i in range(100):\n    x = x + x\n", 3, "more than"),
    ],
)
def test_resource_bombs_still_refuse_the_file_with_the_line(tmp_path, source, line, words):
    path = write(tmp_path, "bad.py", source)
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        load_pyfile(path)
    message = str(caught.value)
    assert f"{path}, line {line}" in message or ("contains itself" in words and str(path) in message)
    assert words in message
    assert time.monotonic() - started < 10


def test_errors_name_the_config_path(tmp_path):
    path = write(tmp_path, "c.py", "optimizer = dict(type='SGD', lr=0.1, momentum=compute(0.9))\n")
    data = load_pyfile(path)
    assert data["optimizer"]["lr"] == 0.1
    with pytest.raises(ConfigError, match=r"c.py, line 1: not evaluated: a call to compute\(\)") as caught:
        data["optimizer"]["momentum"]
    assert "optimizer.momentum depends on it" in str(caught.value)
    with pytest.raises(ConfigError) as caught:
        data["optimizer"].get("momentum")
    assert "optimizer.momentum" in str(caught.value)


def test_malicious_configs_have_no_side_effect(tmp_path):
    """Nothing runs; what the hostile lines could change is unknown, and reading it is a ConfigError."""
    marker = tmp_path / "pwned"
    sources = [
        f"x = 1\nimport os\nos.system('touch {marker}')\n",
        f"x = __import__('os').system('touch {marker}')\n",
        f"x = open('{marker}', 'w')\n",
        f"x = ().__class__.__base__.__subclasses__()\nopen('{marker}', 'w')\n",
        f"x = dict(a=1)\nexec(\"open('{marker}', 'w')\")\n",
        "x = [c for c in ().__class__.__base__.__subclasses__()]\n",
        f"x = [open('{marker}', 'w') for i in range(2)]\n",
        f"x = sorted([3, 1], key=lambda v: open('{marker}', 'w'))\n",
        f"x = {{}}.get('a', open('{marker}', 'w'))\n",
        f"x = f\"{{open('{marker}', 'w')}}\"\n",
        f"x = 1 if open('{marker}', 'w') else 2\n",
        f"x = dict(a=1)\nx.update(b=__import__('os').system('touch {marker}'))\n",
        f"with open('{marker}', 'w') as x:\n    pass\n",
        f"x = [1]\ndef f():\n    open('{marker}', 'w')\nf()\n",
        f"x = [1]\nclass A:\n    open('{marker}', 'w')\n",
        f"import copy\nx = copy.deepcopy(open('{marker}', 'w'))\n",
        f"x = str.join('', open('{marker}', 'w'))\n",
    ]
    for i, source in enumerate(sources):
        data = load_pyfile(write(tmp_path, f"evil{i}.py", source))
        with pytest.raises(ConfigError, match=f"evil{i}.py, line"):
            value = data["x"]
            assert isinstance(value, list | dict)
            _ = value["b"] if isinstance(value, dict) else value[0] + 0  # an item used, as a dialect would
    assert not marker.exists()


def test_the_subset_is_plain_python(tmp_path):
    """The values equal what Python computes running the same (trusted) file: the reference."""
    source = textwrap.dedent(
        """
        import copy
        base_lr = 0.1
        num_layers = 12
        layer_ids = list(range(num_layers + 1))
        decay = [0.65 ** (num_layers - i) for i in layer_ids]
        scales = {f'layer_{i}': dict(lr_mult=round(d, 6)) for i, d in enumerate(decay) if i % 2 == 0}
        pixel = [1.0] * 133
        total = sum([len(pixel), max(3, 4), min([7, 2]), abs(-2), int('3'), int(2.9)])
        names = sorted(['b', 'a'] + ['c']) + list(reversed([1, 2])) + [n for n, _ in zip('xyz', range(2))]
        head, *_ = [10, 20, 30]
        a, b = b2, a2 = 1, 2
        merged = dict(a=1) | {'b': 2}
        merged.update(c=3, **{'d': 4})
        merged.setdefault('e', 5)
        popped = merged.pop('a')
        got = merged.get('zz', 'default')
        keys = list(merged.keys()) + list(merged.values())
        pipeline = [dict(type='Load'), dict(type='Crop', size=224)]
        prefetch = False
        if not prefetch:
            pipeline.extend([dict(type='ToTensor')])
        elif prefetch is None:
            pipeline = []
        else:
            pipeline.append(dict(type='Never'))
        pipeline.insert(0, dict(type='First'))
        data = dict(train=dict(pipeline=pipeline), val=copy.deepcopy(dict(pipeline=pipeline)))
        pipeline.append(dict(type='Last'))  # the same list as data.train.pipeline, not val's copy
        data['samples_per_gpu'] = 32
        data['train']['pipeline'][1]['size'] = 256
        del data['val']['pipeline'][0]['type']
        data['train']['pipeline'][1]['size'] *= 0.75
        data['samples_per_gpu'] += 32
        flags = [x > 1 and x < 4 or x == 9 for x in (0, 2, 9)] + [1 in [1], 'a' not in 'abc', None is None]
        sliced = pixel[:3] + pixel[-2:] + [names[0]] + [pipeline[-1]['type']]
        text = f'{base_lr:.3f}_{num_layers!r}_' + '-'.join(['a', 'b']).upper()
        counts = 0
        for i in range(4):
            counts += i
        cond = 'big' if counts > 3 else 'small'
        nested = [[j * 2 for j in range(i)] for i in range(3)]
        lr = base_lr * 4 / 2 - -0.05 + 2 ** -2 + 7 // 2 + 7 % 4
        tuple_of = tuple(x for x in 'ab') + ((1,) * 2)
        """
    )
    path = write(tmp_path, "c.py", source)
    namespace: dict = {}
    exec(compile(source, "reference", "exec"), namespace)  # the reference: Python runs the test's own file
    expected = {k: v for k, v in namespace.items() if not k.startswith("__") and not isinstance(v, type(textwrap))}
    assert load_pyfile(path) == expected


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
    """Nothing a file says is run, even partly: a call is never made, whatever comes before it."""
    marker = tmp_path / "pwned"
    source = f"x = dict(path={str(marker)!r})\ny = open(x['path'], 'w')\n"
    data = load_pyfile(write(tmp_path, "c.py", source))
    assert data["x"] == {"path": str(marker)}
    with pytest.raises(ConfigError, match="line 2: not evaluated: a call to open"):
        data["y"]
    assert not marker.exists()


def test_a_change_not_evaluated_makes_only_the_changed_value_unknown(tmp_path):
    source = "data = dict(pipeline=[dict(type='Crop')], batch=dict(size=32))\ndata['pipeline'][5]['size'] = 224\n"
    data = load_pyfile(write(tmp_path, "c.py", source))
    assert data["data"]["batch"] == {"size": 32}
    with pytest.raises(ConfigError, match=r"c.py, line 2: not evaluated: an assignment to data\['pipeline'\]\[5\]"):
        data["data"]["pipeline"]


def test_mmengine_base_values_are_read_and_changed_through_base(tmp_path):
    write(
        tmp_path,
        "base.py",
        "optim_wrapper = dict(optimizer=dict(type='SGD', lr=0.02))\nauto_scale_lr = dict(enable=False)\n",
    )
    source = """
    _base_ = 'base.py'
    lr = _base_.optim_wrapper.optimizer.lr * 2
    _base_['optim_wrapper']['optimizer']['momentum'] = 0.9
    _base_.optim_wrapper.optimizer.lr /= 4
    del _base_.auto_scale_lr
    """
    data = load_pyfile(write(tmp_path, "c.py", source))
    assert data == {"lr": 0.04, "optim_wrapper": {"optimizer": {"type": "SGD", "lr": 0.005, "momentum": 0.9}}}
