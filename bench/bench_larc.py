"""LARC (built through optiplug) against torch SGD foreach and against an apex-style per-tensor loop.

Run: ``python bench/bench_larc.py``. Figures (time ratios, lower is better):

* LARC + SGD vs SGD foreach alone, 500 tensors x 1024 elements (launch-bound, GPU-like);
* LARC vs the same LARC rules written as apex does, one tensor at a time;
* LARC + SGD vs SGD foreach on ResNet-50's parameter shapes (25.6M elements, bandwidth-bound);
* LARC around fused SGD vs fused SGD alone, on both shapes (goal 1.6: fused SGD's memory
  traffic plus one more read of each param and grad for the norms is about 1.4x), with
  the floor beside it: fused SGD plus the two norm passes alone (``torch._foreach_norm``
  of the params and of the grads), which any LARC step on eager kernels must pay; and
  the two norm passes alone. These rows run with 1 thread (thread CPU time) and with
  2 threads (wall clock of each side's fastest round: ``thread_time`` would miss the
  second thread's work, and other jobs on the machine stall whole rounds).

``python bench/bench_larc.py --threads 2`` runs only the fused rows, with 2 threads.

LARC runs in scale mode with trust_coefficient 1 so that gradients keep their size
from step to step (a smaller coefficient shrinks them towards denormals; the work done
is the same for any value).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import torch

import optiplug

try:
    from bench._shapes import resnet50_shapes
    from bench._timing import compare, figure, interleaved, print_row, setup_threads
except ImportError:  # run as a script from bench/
    from _shapes import resnet50_shapes  # type: ignore[no-redef]
    from _timing import compare, figure, interleaved, print_row, setup_threads  # type: ignore[no-redef]

SGD = {"lr": 0.1, "momentum": 0.9, "weight_decay": 1e-4}
LARC = {"name": "larc", "trust_coefficient": 1.0, "clip": False}


def named_params(shapes: list[tuple[int, ...]]) -> list[tuple[str, torch.nn.Parameter]]:
    """Parameters with gradients, named so that no rule sees them as norms or biases."""
    torch.manual_seed(0)
    params = []
    for i, shape in enumerate(shapes):
        p = torch.nn.Parameter(torch.randn(shape))
        p.grad = torch.randn(shape)
        params.append((f"p{i}", p))
    return params


def clone(params: list[tuple[str, torch.nn.Parameter]]) -> list[tuple[str, torch.nn.Parameter]]:
    """Copies of the parameters and of their gradients (deepcopy leaves ``.grad`` behind)."""
    copies = []
    for name, p in params:
        q = torch.nn.Parameter(p.detach().clone())
        q.grad = None if p.grad is None else p.grad.clone()
        copies.append((name, q))
    return copies


def larc_optimizer(params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    recipe = {"optimizer": {"name": "SGD", "foreach": True, **SGD}, "wrappers": [LARC]}
    return optiplug.build(recipe, params).optimizer


def sgd_optimizer(params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    return torch.optim.SGD([p for _, p in params], foreach=True, **SGD)


def fused_sgd(params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    """torch's fused SGD (one kernel per tensor that reads each array once): what a user picks for speed."""
    return torch.optim.SGD([p for _, p in params], fused=True, **SGD)


def larc_fused_optimizer(params: list[tuple[str, torch.nn.Parameter]]) -> torch.optim.Optimizer:
    """LARC (built through optiplug) around fused SGD."""
    recipe = {"optimizer": {"name": "SGD", "fused": True, **SGD}, "wrappers": [LARC]}
    return optiplug.build(recipe, params).optimizer


FUSED_TARGET = 1.6
"""Goal against fused SGD: its traffic plus one more read of each param and grad for the norms (~1.4x)."""

SIZES = {"500 x 1024": {}, "ResNet-50 shapes": {"rounds": 11, "steps": 2}}
"""Rounds and steps per round of each shape (ResNet-50 steps take ~15 ms on one thread)."""


def compare_at(threads: int, a: Callable[[], Any], b: Callable[[], Any], **sizes: int) -> dict[str, float]:
    """``compare`` on one thread (thread CPU time); with more threads, wall clock of the fastest rounds.

    With several threads ``thread_time`` would miss the other threads' work, and on a
    shared machine a round whose threads lose their cores takes many times longer: the
    figure is then the ratio of A's and B's fastest rounds (``min`` and ``max`` are the
    per-round ratios' extremes, as usual).
    """
    if threads == 1:
        return compare(a, b, **sizes)
    rounds, steps = sizes.get("rounds", 31), sizes.get("steps", 5)
    for _ in range(3):
        a()
        b()
    times: dict[str, list[float]] = {"a": [], "b": []}

    def timer(fn: Callable[[], Any], key: str) -> Callable[[], float]:
        def timed() -> float:
            start = time.perf_counter()
            for _ in range(steps):
                fn()
            times[key].append((time.perf_counter() - start) / steps)
            return times[key][-1]

        return timed

    measured = interleaved(timer(a, "a"), timer(b, "b"), rounds)
    fastest_a, fastest_b = min(times["a"]), min(times["b"])
    return {**measured, "median": fastest_a / fastest_b, "a_ms": fastest_a * 1e3, "b_ms": fastest_b * 1e3}


def norm_passes(params: list[tuple[str, torch.nn.Parameter]]) -> Callable[[], Any]:
    """The two norm passes LARC and LARS need (params, then grads), the cheapest way torch's eager kernels allow.

    Small tensors (at most 4096 elements) that share a shape are stacked into a buffer
    made once and normed with one ``vector_norm`` (a ``_foreach_norm`` over 500 small
    tensors costs several times more); the others go through ``torch._foreach_norm``.
    """
    tensors = [p for _, p in params]
    shapes: dict[torch.Size, list[int]] = {}
    for i, t in enumerate(tensors):
        if t.numel() <= 4096:
            shapes.setdefault(t.shape, []).append(i)
    stacked = [members for members in shapes.values() if len(members) > 1]
    in_stacks = {i for members in stacked for i in members}
    rest = [i for i in range(len(tensors)) if i not in in_stacks]

    def one_pass(arrays: list[torch.Tensor]) -> Callable[[], None]:
        lists = [[arrays[i] for i in members] for members in stacked]
        buffers = [torch.empty((len(items), *items[0].shape)) for items in lists]
        singles = [arrays[i] for i in rest]

        def norms() -> None:
            for items, buffer in zip(lists, buffers, strict=True):
                torch.linalg.vector_norm(torch.stack(items, out=buffer).view(len(items), -1), dim=1)
            if singles:
                torch._foreach_norm(singles)

        return norms

    of_params = one_pass([t.detach() for t in tensors])
    of_grads = one_pass([t.grad for t in tensors if t.grad is not None])
    return lambda: (of_params(), of_grads())


def floor_step(params: list[tuple[str, torch.nn.Parameter]]) -> Callable[[], Any]:
    """Fused SGD plus the two norm passes alone: the least a LARC or LARS step costs with torch's eager kernels."""
    optimizer, norms = fused_sgd(params), norm_passes(params)
    return lambda: (norms(), optimizer.step())


def threads_label(threads: int) -> str:
    return "1 thread" if threads == 1 else f"{threads} threads, fastest rounds"


def fused_rows(
    threads: int,
    shapes: dict[str, list[tuple[str, torch.nn.Parameter]]],
    make: Callable[..., list[dict[str, Any]]],
    floor: bool = True,
) -> list[dict[str, Any]]:
    """The rows against fused SGD at ``threads``: the floor and the norms alone (if ``floor``), then ``make``'s.

    ``make(threads, name, params, sizes)`` returns the rows of one shape.
    """
    torch.set_num_threads(threads)
    rows = []
    for label, params in shapes.items():
        sizes = SIZES[label]
        name = f"{label}, {threads_label(threads)}"
        if floor:
            base = fused_sgd(clone(params))
            least = compare_at(threads, floor_step(clone(params)), base.step, **sizes)
            rows.append(figure(f"floor: SGD fused + 2 norm passes vs SGD fused, {name}", least, FUSED_TARGET))
            norms = compare_at(threads, norm_passes(clone(params)), base.step, **sizes)
            rows.append(figure(f"2 norm passes alone vs SGD fused, {name}", norms, float("inf")))
        rows.extend(make(threads, name, params, sizes))
    return rows


class ApexStyleLarc:
    """apex's LARC.step written out: a Python loop over tensors, two norms and a branch each."""

    def __init__(self, optimizer: torch.optim.Optimizer, trust_coefficient: float, eps: float = 1e-8) -> None:
        self.optimizer, self.trust, self.eps = optimizer, trust_coefficient, eps

    @torch.no_grad()
    def step(self) -> None:
        decays = []
        for group in self.optimizer.param_groups:
            weight_decay = group.get("weight_decay", 0)
            decays.append(weight_decay)
            group["weight_decay"] = 0
            for p in group["params"]:
                if p.grad is None:
                    continue
                param_norm, grad_norm = torch.norm(p), torch.norm(p.grad)
                if param_norm != 0 and grad_norm != 0:
                    rate = self.trust * param_norm / (grad_norm + param_norm * weight_decay + self.eps)
                    p.grad.add_(p, alpha=weight_decay).mul_(rate)
        self.optimizer.step()
        for group, weight_decay in zip(self.optimizer.param_groups, decays, strict=True):
            group["weight_decay"] = weight_decay


def larc_fused_rows(
    threads: int, name: str, params: list[tuple[str, torch.nn.Parameter]], sizes: dict[str, int]
) -> list[dict[str, Any]]:
    measured = compare_at(threads, larc_fused_optimizer(clone(params)).step, fused_sgd(clone(params)).step, **sizes)
    return [figure(f"LARC+SGD fused vs SGD fused, {name}", measured, FUSED_TARGET)]


def shapes() -> dict[str, list[tuple[str, torch.nn.Parameter]]]:
    return {"500 x 1024": named_params([(1024,)] * 500), "ResNet-50 shapes": named_params(resnet50_shapes())}


def run(threads: tuple[int, ...] = (1, 2), fused_only: bool = False) -> list[dict[str, Any]]:
    """Measure every figure; returns one row per figure (see ``_timing.figure``).

    The rows against fused SGD run at each of ``threads``; the others on one thread.
    """
    setup_threads()
    rows = []
    both = shapes()
    if not fused_only:
        rows.extend(foreach_rows(both))
    for count in threads:
        rows.extend(fused_rows(count, both, larc_fused_rows))
    torch.set_num_threads(1)
    return rows


def foreach_rows(both: dict[str, list[tuple[str, torch.nn.Parameter]]]) -> list[dict[str, Any]]:
    """LARC around foreach SGD against foreach SGD and against apex's per-tensor loop (one thread)."""
    rows = []
    small = both["500 x 1024"]
    ours = larc_optimizer(clone(small))
    rows.append(
        figure("LARC+SGD vs SGD foreach, 500 x 1024", compare(ours.step, sgd_optimizer(clone(small)).step), 1.3)
    )
    apex = ApexStyleLarc(sgd_optimizer(clone(small)), LARC["trust_coefficient"])
    rows.append(figure("LARC+SGD vs apex-style per-tensor LARC+SGD, 500 x 1024", compare(ours.step, apex.step), 0.35))
    big = both["ResNet-50 shapes"]
    measured = compare(larc_optimizer(clone(big)).step, sgd_optimizer(clone(big)).step, rounds=11, steps=2)
    rows.append(figure("LARC+SGD vs SGD foreach, ResNet-50 shapes", measured, 1.2))
    return rows


def main(run_fn: Callable[..., list[dict[str, Any]]]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0] if __doc__ else None)
    parser.add_argument("--threads", type=int, help="only the rows against fused SGD, at this many threads")
    args = parser.parse_args()
    rows = run_fn() if args.threads is None else run_fn(threads=(args.threads,), fused_only=True)
    for row in rows:
        print_row(row)


if __name__ == "__main__":
    main(run)
