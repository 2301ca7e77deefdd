"""Compiled optimizer step with ``run.compile`` (issue 16): step time against eager, and the recompiles.

An AdamW recipe with a cosine lr over 10 tensors of 256 x 256. ``run.compile: true`` makes
the lr a 0-dim tensor the scheduler writes in place; ``torch.compile`` (inductor) of
``built.optimizer.step`` is then timed against the same optimizer stepped eagerly (the
per-tensor loop run.compile picks on the CPU) and against optiplug's default eager step
(torch's fused CPU kernel, floats). The recompiles are counted over 1,000 scheduled
updates with a counting backend; without run.compile every update is a new graph until
torch's recompile limit.
"""

from __future__ import annotations

import warnings
from typing import Any

import torch

import optiplug

try:
    from bench._timing import compare, count, figure, print_row, setup_threads
except ImportError:  # run as a script from bench/
    from _timing import compare, count, figure, print_row, setup_threads  # type: ignore[no-redef]

UPDATES = 1000
RECIPE: dict[str, Any] = {
    "optimizer": {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.05},
    "schedules": {"lr": {"name": "cosine", "start_value": 1e-3, "end_value": 0.0}},
}


def named_params(shapes: int = 10, size: int = 256) -> list[tuple[str, torch.nn.Parameter]]:
    generator = torch.Generator().manual_seed(0)
    out = []
    for i in range(shapes):
        p = torch.nn.Parameter(torch.randn(size, size, generator=generator))
        p.grad = torch.randn(size, size, generator=generator) * 1e-3
        out.append((f"p{i}", p))
    return out


def built(compile_: bool, shapes: int = 10, size: int = 256, *, loop: bool = False) -> optiplug.Built:
    """The benchmark's build; ``loop``: torch's per-tensor loop (``foreach: false``), which compile traces."""
    recipe = {**RECIPE, "optimizer": {**RECIPE["optimizer"], "foreach": False}} if loop else RECIPE
    return optiplug.build(
        recipe, named_params(shapes, size), steps_per_epoch=UPDATES, num_epochs=1000, compile=compile_
    )


class CountingBackend:
    """Counts the graphs torch.compile hands it and runs them as they are."""

    def __init__(self) -> None:
        self.graphs = 0

    def __call__(self, graph: Any, _inputs: Any) -> Any:
        self.graphs += 1
        return graph.forward


def compiles(compile_: bool, updates: int = UPDATES, *, loop: bool = False) -> int:
    """Graphs compiled over ``updates`` scheduled updates (a tiny model: only the count matters)."""
    torch._dynamo.reset()
    b = built(compile_, shapes=2, size=4, loop=loop)
    backend = CountingBackend()
    step = torch.compile(b.optimizer.step, backend=backend)
    for _ in range(updates):
        step()
        b.scheduler.step()
    return backend.graphs


def scheduled(b: optiplug.Built, step: Any) -> Any:
    def run() -> None:
        step()
        b.scheduler.step()

    return run


def run(quick: bool = False) -> list[dict[str, Any]]:
    setup_threads()
    torch._dynamo.reset()
    rounds = 5 if quick else 21
    compiled_build, loop_build, fused_build = built(True), built(True), built(False)
    compiled = scheduled(compiled_build, torch.compile(compiled_build.optimizer.step))
    loop = scheduled(loop_build, loop_build.optimizer.step)
    fused = scheduled(fused_build, fused_build.optimizer.step)
    compiled()  # the one compile, outside the timing
    rows = [
        figure(
            "compiled AdamW step (run.compile, inductor) vs the same step eager, 10 x 256^2",
            compare(compiled, loop, rounds=rounds),
            1.25,  # no worse than the eager loop, within this machine's noise
        ),
        figure(
            "compiled AdamW step (run.compile) vs optiplug's default eager step (fused CPU, floats)",
            compare(compiled, fused, rounds=rounds),
            5.0,  # a bound, not a goal: on the CPU the fused kernel wins (docs/plugins/compile.md)
        ),
        figure(
            f"recompiles of a compiled step over {UPDATES:,} cosine updates (run.compile)",
            count(compiles(True) - 1),
            1,
            unit="recompiles",
        ),
    ]
    torch._dynamo.reset()
    return rows


def main() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        rows = run()
        without = compiles(False, updates=20, loop=True)
        with torch._dynamo.config.patch(specialize_float=True):
            specialized = compiles(False, updates=20, loop=True)
    for row in rows:
        print_row(row)
    print(
        f"without run.compile (float options, the per-tensor loop): {without} graphs over 20 updates; "
        f"with torch's specialize_float: {specialized} (a new graph per new lr, up to the recompile limit)"
    )


if __name__ == "__main__":
    main()
