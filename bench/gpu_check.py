"""The GPU check: device tests, LARC/LARS/AdamW kernels and zero host syncs on CUDA, one table.

Run on a CUDA machine: ``python bench/gpu_check.py`` (under 10 minutes: ``--budget``
seconds, default 540, after which the remaining figures are reported as skipped).
``--dry-run`` does the same on the CPU with tiny sizes and only collects the tests
(CI runs it through tests/bench/test_gpu_check.py); it exits 0 unless a check fails.

Rows:

* the tests marked ``device`` (run with ``-m device``; they add CUDA cases when a GPU is present);
* LARC around fused SGD, and MMSelfSup's LARS, against torch's fused SGD, on 500 x 1024
  and ResNet-50 shapes (goal 1.6), and timm's foreach ``Lars`` when installed;
* AdamW fused against AdamW foreach (both built by optiplug);
* the compiled step (``run.compile``): AdamW with a cosine lr compiled by inductor against
  the same step eager, and its recompiles over 200 scheduled updates (at most one);
* zero host syncs: ``Built.step`` with ``sync_free = True`` under
  ``torch.cuda.set_sync_debug_mode("error")`` (on the CPU: no tensor converted to a
  Python value), for SGD+LARC, LARS and fused AdamW, a non-finite update included.

GPU times are wall-clock with ``torch.cuda.synchronize`` around each timed batch of
steps; the figure is the median ratio over interleaved rounds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

import optiplug

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from _shapes import resnet50_shapes  # noqa: E402
from bench_lars import timm_lars  # noqa: E402

SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
TARGET = 1.6
CONVERSIONS = ("item", "tolist", "numpy", "__bool__", "__float__", "__int__", "__index__")


class Check:
    """Collects the table's rows and keeps the time budget."""

    def __init__(self, device: torch.device, budget: float, dry_run: bool) -> None:
        self.device, self.budget, self.dry_run = device, budget, dry_run
        self.start = time.monotonic()
        self.rows: list[tuple[str, str, str, str]] = []

    def left(self) -> float:
        return self.budget - (time.monotonic() - self.start)

    def row(self, name: str, measured: str, target: str, ok: bool | None) -> None:
        verdict = "n/a" if ok is None else ("ok" if ok else "FAIL")
        self.rows.append((name, measured, target, verdict))
        print(f"{name:<58} {measured:<28} {target:<10} {verdict}", flush=True)

    def timed(self, name: str, make: Callable[[], None]) -> None:
        if self.left() <= 0:
            self.row(name, "skipped: over the time budget", "", None)
            return
        try:
            make()
        except Exception as exc:  # noqa: BLE001 - every row is reported, the table goes on
            self.row(name, f"error: {type(exc).__name__}: {exc}"[:120], "", False)

    def table(self) -> str:
        lines = ["| check | measured | target | result |", "|---|---|---|---|"]
        lines += [f"| {name} | {measured} | {target} | {verdict} |" for name, measured, target, verdict in self.rows]
        return "\n".join(lines)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def ratio(a: Callable[[], Any], b: Callable[[], Any], device: torch.device, rounds: int, steps: int) -> float:
    """Median of time(a) / time(b) over interleaved rounds (wall clock, device synchronised)."""

    def run(fn: Callable[[], Any]) -> float:
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        sync(device)
        return time.perf_counter() - start

    for _ in range(2):
        a()
        b()
    ratios = []
    for r in range(rounds):
        ta, tb = (run(a), run(b)) if r % 2 == 0 else tuple(reversed((run(b), run(a))))
        ratios.append(ta / tb)
    return statistics.median(ratios)


def params(shapes: list[tuple[int, ...]], device: torch.device) -> list[tuple[str, torch.nn.Parameter]]:
    generator = torch.Generator().manual_seed(0)
    out = []
    for i, shape in enumerate(shapes):
        p = torch.nn.Parameter(torch.randn(shape, generator=generator).to(device))
        p.grad = torch.randn(shape, generator=generator).to(device)
        out.append((f"p{i}", p))
    return out


def clone(named: list[tuple[str, torch.nn.Parameter]]) -> list[tuple[str, torch.nn.Parameter]]:
    copies = []
    for name, p in named:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = None if p.grad is None else p.grad.clone()
        copies.append((name, q))
    return copies


def optimizer(recipe: dict[str, Any], named: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    return optiplug.build(recipe, clone(named)).optimizer


def kernels(check: Check, sizes: dict[str, list[tuple[int, ...]]], rounds: int, steps: int) -> None:
    device = check.device
    fused_sgd = {"optimizer": {"name": "SGD", "fused": True, **SGD}}
    larc = {**fused_sgd, "wrappers": [{"name": "larc", "trust_coefficient": 1.0, "clip": False}]}
    lars = {"optimizer": {"name": "LARS", **SGD}}
    timm = timm_lars()
    for label, shapes in sizes.items():
        named = params(shapes, device)

        def versus(name: str, mine: torch.optim.Optimizer, theirs: torch.optim.Optimizer, target: float | None) -> None:
            def make() -> None:
                value = ratio(mine.step, theirs.step, device, rounds, steps)
                check.row(
                    name,
                    f"{value:.3f}",
                    "" if target is None else f"<= {target}",
                    None if target is None else value <= target,
                )

            check.timed(name, make)

        versus(f"LARC+SGD fused vs SGD fused, {label}", optimizer(larc, named), optimizer(fused_sgd, named), TARGET)
        versus(f"MMSelfSup LARS vs SGD fused, {label}", optimizer(lars, named), optimizer(fused_sgd, named), TARGET)
        if timm is not None:
            theirs = timm([p for _, p in clone(named)], foreach=True, **SGD)
            versus(f"timm Lars (foreach) vs SGD fused, {label}", theirs, optimizer(fused_sgd, named), None)
            versus(f"MMSelfSup LARS vs timm Lars (foreach), {label}", optimizer(lars, named), theirs, 1.0)
        adamw = {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.05}
        versus(
            f"AdamW fused vs AdamW foreach, {label}",
            optimizer({"optimizer": {**adamw, "fused": True}}, named),
            optimizer({"optimizer": {**adamw, "foreach": True}}, named),
            1.0,
        )
    if timm is None:
        check.row("timm Lars (foreach)", "timm not installed", "", None)
    compiled_step(check, sizes, rounds, steps)


class CountingCompiler:
    """A torch.compile backend counting the graphs it compiles; ``inner`` compiles them (inductor on a GPU)."""

    def __init__(self, inner: str) -> None:
        self.graphs = 0
        self.inner = torch._dynamo.lookup_backend(inner)

    def __call__(self, graph: Any, inputs: Any) -> Any:
        self.graphs += 1
        return self.inner(graph, inputs)


def compiled_step(check: Check, sizes: dict[str, list[tuple[int, ...]]], rounds: int, steps: int) -> None:
    """``run.compile``: the compiled AdamW step (cosine lr) against the same step eager, and its recompiles.

    On the GPU, inductor (capturable kernels); in the dry run, the "eager" backend (nothing generated).
    """
    device, updates = check.device, 20 if check.dry_run else 200
    recipe = {
        "optimizer": {"name": "AdamW", "lr": 1e-3, "weight_decay": 0.05},
        "schedules": {"lr": {"name": "cosine", "start_value": 1e-3, "end_value": 0.0}},
    }
    for label, shapes in sizes.items():
        name = f"compiled step (run.compile), AdamW, {label}"

        def make(shapes: list[tuple[int, ...]] = shapes, name: str = name) -> None:
            torch._dynamo.reset()
            named = params(shapes, device)
            mine = optiplug.build(recipe, clone(named), steps_per_epoch=updates, num_epochs=100, compile=True)
            eager = optiplug.build(recipe, clone(named), steps_per_epoch=updates, num_epochs=100, compile=True)
            backend = CountingCompiler("eager" if check.dry_run else "inductor")
            compiled = torch.compile(mine.optimizer.step, backend=backend)

            def step_compiled() -> None:
                with warnings.catch_warnings():
                    # torch.compile's tracer touches torch.jit internals that warn of their deprecation (torch 2.13)
                    warnings.filterwarnings("ignore", ".*torch.jit.*is deprecated", DeprecationWarning)
                    compiled()
                mine.scheduler.step()

            def step_eager() -> None:
                eager.optimizer.step()
                eager.scheduler.step()

            for _ in range(updates):
                step_compiled()
            recompiles = backend.graphs - 1
            value = ratio(step_compiled, step_eager, device, rounds, steps)
            check.row(name, f"{value:.3f}, {recompiles} recompiles / {updates}", "<= 1 recompile", recompiles <= 1)

        check.timed(name, make)


@contextmanager
def no_host_reads(device: torch.device) -> Iterator[list[str]]:
    """CUDA: sync debug mode "error" (a sync raises); CPU: every tensor-to-Python conversion recorded."""
    seen: list[str] = []
    if device.type == "cuda":
        torch.cuda.set_sync_debug_mode("error")
        try:
            yield seen
        finally:
            torch.cuda.set_sync_debug_mode("default")
        return
    originals = {name: getattr(torch.Tensor, name) for name in CONVERSIONS}

    def counted(name: str) -> Any:
        def wrapper(self: torch.Tensor, *args: Any, **kwargs: Any) -> Any:
            seen.append(name)
            return originals[name](self, *args, **kwargs)

        return wrapper

    try:
        for name in CONVERSIONS:
            setattr(torch.Tensor, name, counted(name))
        yield seen
    finally:
        for name, original in originals.items():
            setattr(torch.Tensor, name, original)


def zero_syncs(check: Check, updates: int) -> None:
    recipes = {
        "SGD+LARC": {"optimizer": {"name": "sgd", **SGD}, "wrappers": [{"name": "larc"}], "clip": {"max_norm": 1.0}},
        "LARS": {"optimizer": {"name": "lars", **SGD}},
        "AdamW fused": {"optimizer": {"name": "adamw", "lr": 1e-3, "weight_decay": 0.05, "fused": True}},
    }
    for label, recipe in recipes.items():
        name = f"zero host syncs in Built.step (sync_free), {label}"

        def make(recipe: dict[str, Any] = recipe, name: str = name) -> None:
            torch.manual_seed(0)
            model = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 8)).to(
                check.device
            )
            built = optiplug.build(recipe, model, steps_per_epoch=updates + 1, num_epochs=1)
            built.sync_free = True
            data = torch.randn(updates + 1, 16, 32, device=check.device)
            built.step(model(data[0]).square().mean())  # the first update makes the state: checked on the host
            losses = []
            with no_host_reads(check.device) as seen:
                for i in range(1, updates + 1):
                    loss = model(data[i]).square().mean()
                    built.step(loss * float("nan") if i == updates // 2 + 1 else loss)
                    losses.append(loss.detach())
            skipped = built.skipped_updates
            ok = not seen and skipped == 1
            check.row(name, f"{len(seen)} host reads, {skipped} skipped", "0, 1", ok)

        check.timed(name, make)


def device_tests(check: Check) -> None:
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-m", "device", str(ROOT / "tests")]
    if check.dry_run:
        command.append("--collect-only")
    if check.left() <= 0:
        check.row("tests marked device", "skipped: over the time budget", "", None)
        return
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=max(check.left(), 1))
    tail = [line for line in done.stdout.splitlines() if line.strip()][-1:] or ["(no output)"]
    check.row(
        "tests marked device" + (" (collected only)" if check.dry_run else ""),
        tail[0][:60],
        "rc 0",
        done.returncode == 0,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry-run", action="store_true", help="on the CPU, tiny sizes, tests collected only")
    parser.add_argument("--budget", type=float, default=540.0, help="seconds for the whole check (default 540)")
    parser.add_argument("--no-tests", action="store_true", help="leave out the pytest run")
    args = parser.parse_args(argv)
    if not args.dry_run and not torch.cuda.is_available():
        print("no CUDA device: run with --dry-run for the CPU version", file=sys.stderr)
        return 2
    device = torch.device("cpu" if args.dry_run else "cuda")
    check = Check(device, args.budget, args.dry_run)
    if args.dry_run:
        sizes = {
            "20 x 64": [(64,)] * 20,
            "ResNet-50 shapes / 64": [tuple(max(1, d // 8) for d in s) for s in resnet50_shapes()],
        }
        rounds, steps, updates = 3, 1, 4
    else:
        sizes = {"500 x 1024": [(1024,)] * 500, "ResNet-50 shapes": resnet50_shapes()}
        rounds, steps, updates = 21, 10, 8
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu (dry run)"
    print(f"device: {name}, torch {torch.__version__}")
    if not args.no_tests:
        device_tests(check)
    zero_syncs(check, updates)
    kernels(check, sizes, rounds, steps)
    print()
    print(check.table())
    failed = [name for name, measured, _, verdict in check.rows if verdict == "FAIL"]
    if args.dry_run:  # tiny sizes time nothing: only the tests, the sync checks and errors count
        failed = [
            name
            for name, measured, _, verdict in check.rows
            if verdict == "FAIL" and (name.startswith(("zero", "tests")) or measured.startswith("error"))
        ]
    if failed:
        print(f"\n{len(failed)} check(s) failed: {'; '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
