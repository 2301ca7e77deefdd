"""Write the documentation's pictures into docs/images/ with ``optiplug plot`` and ``optiplug run``.

Run from the repository root after a change that moves a curve: ``python docs/gen_images.py``
(about a minute). Each picture is what a reader gets by running the command shown in
the page that embeds it. The example plugin's picture needs the plugin: it is installed
by pip into a temporary directory for the run.

``architecture.png`` (docs/architecture.md) is drawn here with matplotlib, not by a
command: the core's layers and which may import which. After moving a module, redraw
only it with ``python docs/gen_images.py architecture``.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
IMAGES = ROOT / "docs" / "images"
RECIPES = "docs/examples/recipes"
EXAMPLE_PLUGIN = ROOT / "docs" / "examples" / "optiplug-example-plugin"

# (picture, config, extra `optiplug plot` arguments)
PLOTS: list[tuple[str, str, list[str]]] = [
    ("warmup_cosine", f"{RECIPES}/warmup_cosine.yaml", []),
    ("step_decay", f"{RECIPES}/step_decay.yaml", []),
    ("clr", f"{RECIPES}/clr.yaml", []),
    ("sgdr", f"{RECIPES}/sgdr.yaml", []),
    ("adamwr", f"{RECIPES}/adamwr.yaml", []),
    ("layer_decay_vit", f"{RECIPES}/layer_decay_vit.yaml", ["--model", "vit_like", "--log"]),
    ("vissl_linear_warmup_cosine", "examples/vissl/linear_warmup_cosine.yaml", ["--steps-per-epoch", "100"]),
    (
        "vissl_multiple_linear_warmups_cosine",
        "examples/vissl/multiple_linear_warmups_cosine.yaml",
        ["--steps-per-epoch", "100"],
    ),
    (
        "vissl_linear_warmup_cosine_warm_restart",
        "examples/vissl/linear_warmup_cosine_warm_restart.yaml",
        ["--steps-per-epoch", "100"],
    ),
    ("vissl_cosine_warm_restart", "examples/vissl/cosine_warm_restart.yaml", ["--steps-per-epoch", "100"]),
    ("vissl_multistep", "examples/vissl/multistep.yaml", ["--steps-per-epoch", "100"]),
    (
        "vissl_auto_scaling",
        "examples/vissl/auto_scaling.yaml",
        ["--steps-per-epoch", "100", "--batch-size", "32", "--world-size", "64"],
    ),
    ("mmcv_warmup_linear_by_iter", "examples/mmcv/warmup_linear_by_iter.py", ["--steps-per-epoch", "1252"]),
    ("mmcv_warmup_exp_by_epoch", "examples/mmcv/warmup_exp_by_epoch.py", ["--steps-per-epoch", "100"]),
    ("mmcv_cyclic_lr_momentum", "examples/mmcv/cyclic_lr_momentum.py", ["--steps-per-epoch", "100"]),
    ("mmcv_simclr_lars_cosine", "examples/mmcv/simclr_lars_cosine.py", ["--steps-per-epoch", "100"]),
]
PLUGIN_PLOTS: list[tuple[str, str, list[str]]] = [("lion_wsd", f"{RECIPES}/lion_wsd.yaml", [])]


def plot(name: str, config: str, extra: list[str]) -> None:
    """``optiplug plot CONFIG -o docs/images/NAME.png ...``, its terminal preview swallowed."""
    from optiplug.cli import main

    output = IMAGES / f"{name}.png"
    with contextlib.redirect_stdout(io.StringIO()):
        status = main(["plot", config, "-o", str(output), *extra])
    if status != 0:
        raise SystemExit(f"optiplug plot {config} failed")
    print(f"wrote {output.relative_to(ROOT)}")


def demo() -> None:
    """``optiplug run -o docs/images``: the demo's curves and loss (optiplug-run.png)."""
    from optiplug.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        status = main(["run", "-o", str(IMAGES)])
    if status != 0:
        raise SystemExit("optiplug run failed")
    print(f"wrote {(IMAGES / 'optiplug-run.png').relative_to(ROOT)}")


# (picture, `optiplug` arguments, the exit statuses it may end with) of the researcher's tools (docs/cli.md)
TOOLS: list[tuple[str, list[str], tuple[int, ...]]] = [
    (
        "explain_mistakes_vit",
        ["explain", "docs/examples/lint/mistakes_vit.yaml", "--model", "vit_like", "--lint"],
        (0,),
    ),
    ("find_lr_demo", ["find-lr", f"{RECIPES}/warmup_cosine.yaml", "--recipe", "one_cycle"], (0,)),
    (
        "diff_mmcv_warmups",
        [
            "plot",
            "examples/mmcv/warmup_linear_by_iter.py",
            "examples/mmcv/warmup_exp_by_epoch.py",
            "--steps-per-epoch",
            "100",
        ],
        (0, 3),
    ),
]


def tools() -> None:
    """``optiplug explain -o``, ``find-lr -o`` and ``plot A B -o``: the pictures of docs/cli.md's tool sections.

    Only them: ``python docs/gen_images.py tools``.
    """
    from optiplug.cli import main

    for name, argv, statuses in TOOLS:
        output = IMAGES / f"{name}.png"
        with contextlib.redirect_stdout(io.StringIO()):
            status = main([*argv, "-o", str(output)])
        if status not in statuses:
            raise SystemExit(f"optiplug {' '.join(argv)} failed")
        print(f"wrote {output.relative_to(ROOT)}")


# The architecture diagram: boxes (x, y, width, height, title, modules) in data units, and arrows.
Box = tuple[float, float, float, float, str, str]
LAYERS: dict[str, Box] = {
    "base": (0.8, 0.3, 11.0, 0.8, "errors.py   version.py", "the exceptions and their message helpers; the version"),
    "recipe": (
        0.8,
        1.5,
        11.0,
        0.9,
        "recipe/",
        "model (attrs Recipe classes)  validators  numbers  strict_converter  loaders  files\n"
        "pyfile  pyeval  pyscope  pyexpressions  pystatements  pyvalues (.py read as data)",
    ),
    "plugin_system": (
        0.8,
        2.8,
        11.0,
        0.9,
        "plugin_system/",
        "markers  records (RECORD_TYPES)  hookspecs  manager (entry points)  catalogues  user  host  registration",
    ),
    "engine": (
        0.8,
        4.1,
        11.0,
        1.1,
        "engine/",
        "build  dialects  structuring  run_figures  scaling  grouping  rule_kinds  optimizer_options\n"
        "schedules  composite  binding  value_table  torch_scheduler  resume  compiling  freezing  loss_scaling\n"
        "wrapping  built_result  explain  tolerance  core_plugin",
    ),
    "user_api": (0.8, 5.6, 2.9, 0.9, "optiplug", "user API: build, Built, Recipe,\nerrors, register_*"),
    "plugin_api": (3.9, 5.6, 2.9, 0.9, "optiplug.plugin", "THE public plugin API"),
    "tooling": (
        7.0,
        5.6,
        2.9,
        0.9,
        "tooling/",
        "curves  plotting  demo  conversion\nschema  find_lr  compare  factories",
    ),
    "integrations": (10.1, 5.6, 1.7, 0.9, "integrations.py", "Lightning, HF"),
    "algorithms": (
        0.8,
        6.9,
        6.0,
        0.9,
        "algorithm plugins",
        "optiplug_torch  larc  cyclic  restarts  adamw  lamb\nlayer_decay  zero  wsd  schedulefree  multi  compile",
    ),
    "cli": (7.0, 6.9, 2.9, 0.9, "cli/", "the optiplug command,\none module per command"),
    "dialects": (0.8, 8.2, 6.0, 0.9, "dialect plugins", "optiplug_vissl  optiplug_mmcv  optiplug_mmengine"),
}
# (importer, imported): each arrow points from the importing layer to the one it imports.
IMPORTS: list[tuple[str, str]] = [
    ("recipe", "base"),
    ("plugin_system", "recipe"),
    ("engine", "plugin_system"),
    ("user_api", "engine"),
    ("plugin_api", "engine"),
    ("tooling", "engine"),
    ("integrations", "engine"),
    ("cli", "tooling"),
    ("algorithms", "user_api"),
    ("algorithms", "plugin_api"),
    ("dialects", "algorithms"),
]
COLOURS = {
    "base": "#e8e8e8",
    "recipe": "#dbe9f6",
    "plugin_system": "#d5ecd4",
    "engine": "#fde7c8",
    "user_api": "#f6d5d5",
    "plugin_api": "#f6d5d5",
    "tooling": "#ece0f3",
    "integrations": "#ece0f3",
    "cli": "#ece0f3",
    "algorithms": "#fff6bf",
    "dialects": "#fff6bf",
}


def architecture() -> None:
    """The layers of optiplug and the direction of imports (architecture.png), drawn with matplotlib."""
    from matplotlib.figure import Figure
    from matplotlib.patches import FancyBboxPatch

    figure = Figure(figsize=(12.5, 10.0), dpi=110)
    axes = figure.add_axes((0.0, 0.0, 1.0, 0.94))
    axes.set_xlim(0, 12.2)
    axes.set_ylim(0, 9.5)
    axes.axis("off")
    figure.suptitle("optiplug: layers and import directions", fontsize=16, fontweight="bold", y=0.985)
    for name, (x, y, width, height, title, modules) in LAYERS.items():
        box = FancyBboxPatch(
            (x, y), width, height, boxstyle="round,pad=0.02,rounding_size=0.08", fc=COLOURS[name], ec="#444444", lw=1.2
        )
        axes.add_patch(box)
        axes.text(x + width / 2, y + height - 0.2, title, ha="center", va="center", fontsize=12, fontweight="bold")
        axes.text(x + width / 2, y + (height - 0.35) / 2, modules, ha="center", va="center", fontsize=9.5)
    for importer, imported in IMPORTS:
        _arrow(axes, LAYERS[importer], LAYERS[imported])
    _entry_points(axes)
    _legend(axes)
    output = IMAGES / "architecture.png"
    figure.savefig(output, facecolor="white")
    print(f"wrote {output.relative_to(ROOT)}")


def _arrow(axes: Any, importer: Box, imported: Box) -> None:
    """A solid arrow from the bottom of ``importer`` to the top of ``imported``, over their common span."""
    left = max(importer[0], imported[0])
    right = min(importer[0] + importer[2], imported[0] + imported[2])
    x = (left + right) / 2 if left < right else importer[0] + importer[2] / 2
    start, end = (x, importer[1] - 0.02), (x, imported[1] + imported[3] + 0.02)
    axes.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "-|>", "lw": 1.8, "color": "#222222"})


def _entry_points(axes: Any) -> None:
    """The dashed path: the plugin manager loads every plugin through the entry points (no import)."""
    x = 0.4
    manager_y = LAYERS["plugin_system"][1] + LAYERS["plugin_system"][3] / 2
    plugins_y = LAYERS["dialects"][1] + LAYERS["dialects"][3] / 2
    style = {"color": "#2f6f2f", "lw": 1.6, "ls": (0, (5, 3))}
    axes.plot([0.8, x, x], [manager_y, manager_y, plugins_y], **style)
    for y in (plugins_y, LAYERS["algorithms"][1] + LAYERS["algorithms"][3] / 2):
        axes.annotate("", xy=(0.8, y), xytext=(x, y), arrowprops={"arrowstyle": "-|>", "lw": 1.6, "color": "#2f6f2f"})
    axes.text(
        0.22,
        (manager_y + plugins_y) / 2,
        "loads through the optiplug entry-point group",
        rotation=90,
        ha="center",
        va="center",
        fontsize=9,
        color="#2f6f2f",
    )


def _legend(axes: Any) -> None:
    """What the arrows mean, and the rules the tests enforce, in the top-right corner."""
    x, y = 7.2, 9.2
    axes.annotate("", xy=(x + 0.6, y), xytext=(x, y), arrowprops={"arrowstyle": "-|>", "lw": 1.8, "color": "#222222"})
    axes.text(x + 0.75, y, "imports: any layer below, never one above", va="center", fontsize=10)
    axes.plot([x, x + 0.6], [y - 0.3, y - 0.3], color="#2f6f2f", lw=1.6, ls=(0, (5, 3)))
    axes.text(x + 0.75, y - 0.3, "loads at run time, no import", va="center", fontsize=10)
    rules = (
        "no import cycles; plugins import only optiplug and\n"
        "optiplug.plugin; dialects may import algorithms,\n"
        "never the reverse"
    )
    axes.text(x, y - 0.88, rules, va="center", fontsize=9.5, style="italic")


def wsd() -> None:
    """The ``wsd`` cooldown shapes and cooldowns branched from one run (wsd.png, docs/plugins/wsd.md)."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from torch import nn

    import optiplug
    import optiplug_wsd
    from optiplug.tooling.curves import compute_curves

    run = {"optimizer": {"name": "AdamW", "lr": 1e-3}, "run": {"total_steps": 10_000}}
    lr = {"name": "wsd", "value": 1e-3, "warmup": 0.05, "decay": 0.2}
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    shapes, branches = figure.subplots(1, 2)
    for shape in ("linear", "cosine", "1-sqrt"):
        recipe = run | {"schedules": {"lr": lr | {"decay_shape": shape}}}
        shapes.plot(compute_curves(optiplug.build(recipe, nn.Linear(2, 1))).values["lr"][0], label=shape)
    shapes.set(title="wsd: warmup 0.05, decay 0.2", xlabel="update", ylabel="lr")
    shapes.legend(title="decay_shape")
    long = run | {"schedules": {"lr": lr | {"decay_shape": "1-sqrt"}}}
    branches.plot(compute_curves(optiplug.build(long, nn.Linear(2, 1))).values["lr"][0], color="black", label="the run")
    for at in (2_000, 4_000, 6_000):
        branch = optiplug_wsd.cooldown_recipe(long, at)
        values = compute_curves(optiplug.build(branch, nn.Linear(2, 1))).values["lr"][0]
        branches.plot(range(at, len(values)), values[at:], linestyle="--", label=f"cooldown_recipe(at={at})")
    branches.set(title="cooldowns branched from the stable phase", xlabel="update")
    branches.legend()
    figure.savefig(IMAGES / "wsd.png", dpi=110)
    print(f"wrote {(IMAGES / 'wsd.png').relative_to(ROOT)}")


def resume() -> None:
    """A run resumed with a new horizon under each policy (resume.png, docs/resume.md)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure
    from torch import nn

    import optiplug

    def recipe(lr: dict, total: int) -> dict:
        return {"optimizer": {"name": "SGD", "lr": 0.1}, "schedules": {"lr": lr}, "run": {"total_steps": total}}

    def lrs(built: optiplug.Built, start: int) -> list[float]:
        values = []
        for step in range(start, int(built.scheduler.total_steps or 0)):
            built.scheduler.set_step(step)
            values.append(built.optimizer.param_groups[0]["lr"])
        return values

    cosine = {"name": "cosine", "start_value": 0.1, "end_value": 0.0}
    wsd = {"name": "wsd", "value": 0.1, "warmup": 0.05, "decay": 0.2}
    cases = [
        ("cosine: saved at 4000 of 10000, resumed for 15000", cosine, 10_000, 4_000, 15_000, ("rescale", "extend")),
        ("wsd: saved at 6000 of 10000, resumed for 8000", wsd, 10_000, 6_000, 8_000, ("rescale", "extend", "branch")),
    ]
    figure = Figure(figsize=(10, 3.6), layout="constrained")
    for axes, (title, lr, total, at, new_total, policies) in zip(figure.subplots(1, 2), cases, strict=True):
        saved = optiplug.build(recipe(lr, total), nn.Linear(2, 1))
        axes.plot(lrs(saved, 0), color="0.6", linestyle=":", label="the saved run, uninterrupted")
        axes.plot(range(at), lrs(saved, 0)[:at], color="black", label="the saved run, to its checkpoint")
        saved.scheduler.set_step(at)
        state = saved.state_dict()
        for policy in policies:
            built = optiplug.build(recipe(lr, new_total), nn.Linear(2, 1))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optiplug.OptiplugWarning)
                built.load_state_dict(state, resume=policy)
            values = lrs(built, built.scheduler.last_epoch)
            axes.plot(range(at, at + len(values)), values, linestyle="--", label=f"resume={policy!r}")
        axes.axvline(at, color="0.8", linewidth=0.8)
        axes.set(title=title, xlabel="updates trained", ylabel="lr")
        axes.legend(fontsize=8)
    figure.savefig(IMAGES / "resume.png", dpi=110)
    print(f"wrote {(IMAGES / 'resume.png').relative_to(ROOT)}")


def compile_() -> None:
    """Compiles of a ``torch.compile``d AdamW step with floats and with run.compile (compile.png)."""
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import torch
    from matplotlib.figure import Figure
    from torch import nn

    import optiplug

    updates = 60
    recipe = {
        # the per-tensor loop, the kernel run.compile picks on the CPU, for the float runs too
        "optimizer": {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.05, "foreach": False},
        "schedules": {"lr": {"name": "cosine", "start_value": 1e-3, "end_value": 0.0}},
    }

    def run(compile_: bool, specialize_float: bool) -> tuple[list[int], list[float]]:
        """Graphs compiled so far and the lr applied, at each update of a compiled step."""
        graphs = 0

        def counting(graph: Any, _inputs: Any) -> Any:  # compiles nothing: counts and runs the graph
            nonlocal graphs
            graphs += 1
            return graph.forward

        torch._dynamo.reset()
        torch.manual_seed(0)
        model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 2))
        built = optiplug.build(recipe, model, steps_per_epoch=updates, num_epochs=1, compile=compile_)
        step = torch.compile(built.optimizer.step, backend=counting)
        compiled, lrs = [], []
        with torch._dynamo.config.patch(specialize_float=specialize_float), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for k in range(updates):
                for p in model.parameters():
                    p.grad = torch.randn(p.shape, generator=torch.Generator().manual_seed(k))
                lrs.append(float(built.optimizer.param_groups[0]["lr"]))
                step()
                compiled.append(graphs)
                built.scheduler.step()
        torch._dynamo.reset()
        return compiled, lrs

    limit = torch._dynamo.config.recompile_limit
    cases = [  # label, run.compile, specialize_float, (color, line style, line width)
        ("floats (torch's defaults): lr a graph input after 1 recompile", False, False, ("C1", "-", 4)),
        ("floats, specialize_float=True: a graph per lr, then eager", False, True, ("C3", "--", 2)),
        ("run.compile: a 0-dim lr tensor, written in place", True, False, ("C0", "-", 1.2)),
    ]
    figure = Figure(figsize=(11, 3.8), layout="constrained")
    graphs_axes, lr_axes = figure.subplots(1, 2)
    for label, compile_, specialize_float, (color, style, width) in cases:
        compiled, lrs = run(compile_, specialize_float)
        line = {"color": color, "linestyle": style, "linewidth": width}
        graphs_axes.plot(range(1, updates + 1), compiled, drawstyle="steps-post", label=label, **line)
        lr_axes.plot(lrs, alpha=0.8, **line)
    graphs_axes.set(
        title=f"torch.compile(optimizer.step), AdamW, cosine lr (torch {torch.__version__.split('+')[0]})",
        xlabel="updates run",
        ylabel="graphs compiled so far",
        ylim=(0, limit + 1.5),
    )
    graphs_axes.axhline(limit, color="0.8", linewidth=0.8)
    graphs_axes.annotate(f"recompile_limit = {limit}", (updates, limit), ha="right", va="bottom", fontsize=8)
    graphs_axes.legend(fontsize=8, loc="center right")
    lr_axes.set(title="lr each run's step applied (the same values)", xlabel="update", ylabel="lr")
    figure.savefig(IMAGES / "compile.png", dpi=110)
    print(f"wrote {(IMAGES / 'compile.png').relative_to(ROOT)}")


def schedulefree() -> None:
    """A schedule-free AdamW's loss at the train point y and at the average x (schedulefree.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import torch
    from matplotlib.figure import Figure
    from torch import nn

    import optiplug

    torch.manual_seed(0)
    inputs = torch.randn(512, 16)
    targets = inputs @ torch.randn(16, 1) + 0.3 * torch.randn(512, 1)
    model = nn.Linear(16, 1)
    recipe = {"optimizer": {"name": "schedulefree_adamw", "lr": 0.05, "warmup_steps": 20}}
    built = optiplug.build(recipe, model)
    at_y, at_x = [], []
    for step in range(300):
        rows = torch.randint(0, 512, (16,), generator=torch.Generator().manual_seed(step))
        loss = nn.functional.mse_loss(model(inputs[rows]), targets[rows])
        built.step(loss)
        with torch.no_grad():
            at_y.append(float(nn.functional.mse_loss(model(inputs), targets)))
            built.eval(model)
            at_x.append(float(nn.functional.mse_loss(model(inputs), targets)))
            built.train(model)
    figure = Figure(figsize=(6, 3.4), layout="constrained")
    axes = figure.subplots()
    axes.plot(at_y, label="train mode: y (where gradients are taken)", alpha=0.7)
    axes.plot(at_x, label="eval mode: x (the average, what is saved)")
    axes.set(yscale="log", xlabel="update", ylabel="full-batch loss", title="schedulefree_adamw, lr 0.05, no schedule")
    axes.legend()
    figure.savefig(IMAGES / "schedulefree.png", dpi=110)
    print(f"wrote {(IMAGES / 'schedulefree.png').relative_to(ROOT)}")


def multi() -> None:
    """Training loss of AdamW alone and of Muon for the matrices + AdamW for the rest (multi.png)."""
    import matplotlib

    matplotlib.use("Agg")
    import torch
    from matplotlib.figure import Figure
    from torch import nn

    import optiplug

    torch.manual_seed(0)
    inputs = torch.randn(1024, 32)
    targets = torch.sin(inputs @ torch.randn(32, 8))
    lr = {"name": "wsd", "value": 3e-3, "warmup": 0.05, "decay": 0.2}
    recipes = {
        "AdamW for every parameter": {"optimizer": {"name": "AdamW", "lr": 3e-3, "weight_decay": 0.01}},
        "Muon (match_rms_adamw) for the hidden matrices, AdamW for the rest": {
            "optimizer": {"name": "AdamW", "lr": 3e-3, "weight_decay": 0.01},
            "rules": [
                {"kind": "ndim", "min": 2, "set": {"optimizer": "Muon", "adjust_lr_fn": "match_rms_adamw"}},
                {"kind": "module_path", "prefix": "4", "set": {"optimizer": "AdamW"}},
            ],
        },
    }
    figure = Figure(figsize=(6, 3.4), layout="constrained")
    axes = figure.subplots()
    for label, recipe in recipes.items():
        torch.manual_seed(1)
        model = nn.Sequential(nn.Linear(32, 128), nn.ReLU(), nn.Linear(128, 128), nn.ReLU(), nn.Linear(128, 8))
        built = optiplug.build(recipe | {"schedules": {"lr": lr}}, model, steps_per_epoch=50, num_epochs=6)
        losses = []
        for step in range(300):
            rows = torch.randint(0, 1024, (64,), generator=torch.Generator().manual_seed(step))
            loss = nn.functional.mse_loss(model(inputs[rows]), targets[rows])
            losses.append(float(loss.detach()))
            built.step(loss)
        axes.plot(losses, label=label, alpha=0.8)
    axes.set(yscale="log", xlabel="update", ylabel="training loss", title="one optimizer, two algorithms (wsd lr)")
    axes.legend(fontsize=8)
    figure.savefig(IMAGES / "multi.png", dpi=110)
    print(f"wrote {(IMAGES / 'multi.png').relative_to(ROOT)}")


def with_example_plugin(target: Path) -> None:
    """Install the example plugin into ``target`` and make optiplug find it."""
    import optiplug.plugin_system.host

    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "--target", str(target), str(EXAMPLE_PLUGIN)], check=True)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    optiplug.plugin_system.host.reset()


def main(only: list[str] | None = None) -> None:
    """Every picture, or only ``architecture`` when asked (``python docs/gen_images.py architecture``)."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    if only == ["tools"]:
        tools()
        return
    if only == ["compile"]:
        compile_()
        return
    architecture()
    if only == ["architecture"]:
        return
    if only:
        raise SystemExit(f"unknown picture(s) {only}: give none (all), 'architecture', 'tools' or 'compile'")
    for name, config, extra in PLOTS:
        plot(name, config, extra)
    demo()
    tools()
    wsd()
    resume()
    compile_()
    schedulefree()
    multi()
    with tempfile.TemporaryDirectory() as target:
        with_example_plugin(Path(target))
        for name, config, extra in PLUGIN_PLOTS:
            plot(name, config, extra)


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    main(sys.argv[1:])
