"""Write the documentation's pictures into docs/images/ with ``optiplug plot`` and ``optiplug run``.

Run from the repository root after a change that moves a curve: ``python docs/gen_images.py``
(about a minute). Each picture is what a reader gets by running the command shown in
the page that embeds it. The example plugin's picture needs the plugin: it is installed
by pip into a temporary directory for the run.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import subprocess
import sys
import tempfile
from pathlib import Path

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


def with_example_plugin(target: Path) -> None:
    """Install the example plugin into ``target`` and make optiplug find it."""
    import optiplug.plugin_system.host

    command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation"]
    subprocess.run([*command, "--target", str(target), str(EXAMPLE_PLUGIN)], check=True)
    sys.path.insert(0, str(target))
    importlib.invalidate_caches()
    optiplug.plugin_system.host.reset()


def main() -> None:
    """Every picture."""
    IMAGES.mkdir(parents=True, exist_ok=True)
    for name, config, extra in PLOTS:
        plot(name, config, extra)
    demo()
    with tempfile.TemporaryDirectory() as target:
        with_example_plugin(Path(target))
        for name, config, extra in PLUGIN_PLOTS:
            plot(name, config, extra)


if __name__ == "__main__":
    import os

    os.chdir(ROOT)
    main()
