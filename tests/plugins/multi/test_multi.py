"""One optimizer, several algorithms: against the algorithms' own optimizers run separately, bit for bit.

Both sides run the same torch kernels on the same parameters, gradients and lrs (the
routed AdamW is fused on the CPU, as optiplug's AdamW is, so the reference is too), and
the router adds no arithmetic: each algorithm's ``step()`` runs on its own groups.
Parameters are compared with ``torch.equal``.
"""

from __future__ import annotations

import inspect
import io

import pytest
import torch
from torch import nn

import optiplug
from optiplug.plugin import PluginHost, use_host
from optiplug.tooling.curves import compute_curves


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(10, 8)
        self.hidden = nn.Linear(8, 16)
        self.norm = nn.LayerNorm(16)
        self.block = nn.Linear(16, 16)
        self.head = nn.Linear(16, 3)

    def forward(self, tokens):
        x = self.embed(tokens).mean(dim=1)
        return self.head(torch.relu(self.block(self.norm(torch.relu(self.hidden(x))))))


def loss_of(model, step):
    generator = torch.Generator().manual_seed(step)
    tokens = torch.randint(0, 10, (8, 5), generator=generator)
    targets = torch.randint(0, 3, (8,), generator=generator)
    return nn.functional.cross_entropy(model(tokens), targets)


RECIPE = {
    "optimizer": {"name": "AdamW", "lr": 3e-3, "weight_decay": 0.05},
    "rules": [
        {"kind": "ndim", "min": 2, "set": {"optimizer": "muon", "adjust_lr_fn": "match_rms_adamw"}},
        {"kind": "module_type", "types": ["Embedding"], "set": {"optimizer": "AdamW"}},
        {"kind": "module_path", "prefix": "head", "set": {"optimizer": "AdamW"}},
        {"kind": "bias", "set": {"weight_decay": 0.0}},
        {"kind": "norm", "set": {"weight_decay": 0.0}},
    ],
    "schedules": {"lr": {"name": "wsd", "value": 3e-3, "warmup": 0.2, "decay": 0.3, "decay_shape": "linear"}},
    "run": {"num_epochs": 2, "steps_per_epoch": 5},
}
MUON = ("hidden.weight", "block.weight")


def pair():
    torch.manual_seed(0)
    model, reference = Net(), Net()
    reference.load_state_dict(model.state_dict())
    return model, reference


def reference_optimizers(model):
    """torch's Muon over the matrices, torch's AdamW (fused) over the rest, as the rules say."""
    named = dict(model.named_parameters())
    muon = torch.optim.Muon(
        [{"params": [named[n] for n in MUON]}], lr=3e-3, weight_decay=0.05, adjust_lr_fn="match_rms_adamw"
    )
    decayed = ["embed.weight", "head.weight"]
    undecayed = [n for n in named if n not in decayed and n not in MUON]
    adamw = torch.optim.AdamW(
        [{"params": [named[n] for n in decayed]}, {"params": [named[n] for n in undecayed], "weight_decay": 0.0}],
        lr=3e-3,
        weight_decay=0.05,
        fused=True,
    )
    return muon, adamw


def reference_steps(optimizers, model, steps, lrs):
    for step in steps:
        for optimizer in optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lrs[step]
        loss_of(model, step).backward()
        for optimizer in optimizers:
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)


def assert_same(a, b):
    for (name, x), y in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(x, y), name


def test_groups_are_routed_as_the_rules_say():
    model, _ = pair()
    built = optiplug.build(RECIPE, model)
    optimizer = built.optimizer
    assert isinstance(optimizer, torch.optim.Optimizer)
    routed = {n: g["optimizer"] for s, g in zip(built.groups, optimizer.param_groups, strict=True) for n in s.names}
    assert routed == {
        "embed.weight": "AdamW",
        "hidden.weight": "Muon",
        "hidden.bias": "AdamW",
        "norm.weight": "AdamW",
        "norm.bias": "AdamW",
        "block.weight": "Muon",
        "block.bias": "AdamW",
        "head.weight": "AdamW",
        "head.bias": "AdamW",
    }
    muon = next(g for g in optimizer.param_groups if g["optimizer"] == "Muon")
    # the recipe's lr and weight decay, Muon's own momentum, and the explicit lr coupling
    assert (muon["weight_decay"], muon["momentum"], muon["adjust_lr_fn"]) == (0.05, 0.95, "match_rms_adamw")
    assert type(optimizer.algorithms["Muon"]) is torch.optim.Muon
    assert optimizer.algorithms["AdamW"].param_groups[0]["fused"] is True


def test_parameters_equal_muon_and_adamw_run_separately_bit_for_bit():
    model, reference = pair()
    built = optiplug.build(RECIPE, model)
    lrs = compute_curves(built).values["lr"]
    assert all(row.tolist() == lrs[0].tolist() for row in lrs)  # the schedule reaches every group
    optimizers = reference_optimizers(reference)
    for step in range(10):
        built.step(loss_of(model, step))
    reference_steps(optimizers, reference, range(10), lrs[0].tolist())
    assert_same(model, reference)


def through_torch_save(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_one_state_dict_round_trips_into_a_fresh_build_that_continues_identically():
    model, _ = pair()
    built = optiplug.build(RECIPE, model)
    for step in range(4):
        built.step(loss_of(model, step))
    checkpoint = through_torch_save({"model": model.state_dict(), "built": built.state_dict()})
    state = checkpoint["built"]["optimizer"]
    assert len(state["param_groups"]) == len(built.optimizer.param_groups)
    kinds = [frozenset(s) - {"step"} for s in state["state"].values()]
    assert {"momentum_buffer"} in kinds and {"exp_avg", "exp_avg_sq"} in kinds  # Muon's and AdamW's, in one state

    torch.manual_seed(1)
    fresh_model = Net()
    fresh = optiplug.build(RECIPE, fresh_model)
    fresh_model.load_state_dict(checkpoint["model"])
    fresh.load_state_dict(checkpoint["built"])
    for step in range(4, 10):
        built.step(loss_of(model, step))
        fresh.step(loss_of(fresh_model, step))
    assert_same(model, fresh_model)
    assert fresh.scheduler.last_epoch == 10


def test_a_state_of_other_routes_is_refused():
    model, _ = pair()
    built = optiplug.build(RECIPE, model)
    built.step(loss_of(model, 0))
    state = built.state_dict()
    other = RECIPE | {"rules": RECIPE["rules"][1:]}  # no Muon: the same group count would differ anyway
    fresh = optiplug.build(
        other | {"rules": [{"kind": "ndim", "min": 2, "set": {"optimizer": "SGD"}}, *RECIPE["rules"][1:]]}, Net()
    )
    with pytest.raises(ValueError, match=r"^param group \d was stepped by 'Muon', here by 'SGD'$"):
        fresh.optimizer.load_state_dict(state["optimizer"])


def test_larc_still_wraps_the_router():
    model, _ = pair()
    recipe = RECIPE | {"optimizer": {"name": "SGD", "lr": 0.1, "momentum": 0.9}, "wrappers": [{"name": "larc"}]}
    recipe = recipe | {"schedules": {}}
    built = optiplug.build(recipe, model)
    assert type(built.optimizer).__name__ == "LARC"
    before = [p.detach().clone() for p in model.parameters()]
    for step in range(2):
        assert built.step(loss_of(model, step))
    assert all(not torch.equal(a, b) for a, b in zip(before, model.parameters(), strict=True))


NOT_ROUTED_HERE = {
    "multi": "the router itself",
    "LBFGS": "its step() needs a closure re-evaluating the loss, and it takes a single group",
    "SparseAdam": "it takes sparse gradients only",
    "Muon": "it takes 2-D parameters only (routed to matrices above; to a bias: the error test below)",
}


def takes(spec):
    """Whether the algorithm takes weight_decay, which it then gets from the recipe (0 here)."""
    return "weight_decay" in inspect.signature(spec.factory).parameters


@pytest.mark.parametrize("name", optiplug.get_registry().optimizers.names())
def test_every_registered_optimizer_is_routable_and_steps_as_run_separately(name):
    if name in NOT_ROUTED_HERE:
        pytest.skip(NOT_ROUTED_HERE[name])
    if name.startswith("schedulefree_"):
        pytest.importorskip("schedulefree", reason="pip install schedulefree")
    torch.manual_seed(0)
    model, reference = nn.Linear(4, 3), nn.Linear(4, 3)
    reference.load_state_dict(model.state_dict())
    recipe = {
        "optimizer": {"name": "SGD", "lr": 0.05, "weight_decay": 0.0},  # both given: the routed algorithm's too
        "rules": [{"kind": "bias", "set": {"optimizer": name}}],
    }
    built = optiplug.build(recipe, model)
    spec = optiplug.get_registry().optimizers.get(name)
    weight = torch.optim.SGD([reference.weight], lr=0.05, fused=True)
    bias = spec.factory([{"params": [reference.bias]}], lr=0.05, **({"weight_decay": 0} if takes(spec) else {}))
    inputs = torch.randn(6, 4)
    for _ in range(3):
        built.step(model(inputs).pow(2).mean())
        reference(inputs).pow(2).mean().backward()
        for optimizer in (weight, bias):
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    assert torch.equal(model.weight, reference.weight)
    assert torch.equal(model.bias, reference.bias), name


@pytest.mark.parametrize(
    ("rule", "message"),
    [
        ({"optimizer": "muonn"}, r"^rules\[0\]\.set\.optimizer: unknown optimizer 'muonn' \(did you mean 'Muon'\?\)"),
        ({"optimizer": 3}, r"^rules\[0\]\.set\.optimizer: names the group's algorithm, a registered optimizer; got 3$"),
        (
            {"optimizer_mult": 2},
            r"^rules\[0\]\.set\.optimizer_mult: (names the group's algorithm|optimizer_mult needs a number)",
        ),
        ({"optimizer": "Muon", "momentum": "high"}, r"^rules\[0\]\.set\.momentum: "),
        ({"optimizer": "Muon", "lrr": 0.1}, None),
    ],
)
def test_route_errors_name_the_rule(rule, message):
    recipe = {"optimizer": {"name": "AdamW"}, "rules": [{"kind": "ndim", "min": 2, "set": rule}]}
    if message is None:  # an unknown key: the optimizer-options check reports it (another check's job)
        try:
            optiplug.build(recipe, Net())
        except optiplug.ConfigError as exc:
            assert str(exc).startswith("rules[0].set.lrr"), exc
        return
    with pytest.raises(optiplug.ConfigError, match=message):
        optiplug.build(recipe, Net())


def test_an_algorithm_refusing_its_groups_is_named_with_the_rule_that_routed_them():
    recipe = {"optimizer": {"name": "AdamW"}, "rules": [{"kind": "bias", "set": {"optimizer": "Muon"}}]}
    with pytest.raises(optiplug.ConfigError, match=r"^rules\[0\]\.set\.optimizer: Muon refused its param groups: .*2D"):
        optiplug.build(recipe, Net())


def test_without_the_plugin_routing_is_refused_by_name():
    recipe = {"optimizer": {"name": "AdamW"}, "rules": [{"kind": "ndim", "min": 2, "set": {"optimizer": "Muon"}}]}
    with use_host(PluginHost(blocked=["multi"])):
        with pytest.raises(
            optiplug.ConfigError,
            match=r"^rules\[0\]\.set\.optimizer: routing param groups to several algorithms needs the optimizer "
            r"'multi' of the plugin optiplug_multi, which is not loaded$",
        ):
            optiplug.build(recipe, Net())


def test_optiplug_plugins_lists_the_router_under_the_multi_plugin(capsys):
    import json

    from optiplug.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["multi"]["provides"] == {"optimizers": ["multi"]}
