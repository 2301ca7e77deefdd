"""The schedule-free optimizers against the ``schedulefree`` package's own, run separately.

Both sides run the same class of the package on the same groups, gradients and lrs, so
the parameters are compared bit for bit (``torch.equal``): optiplug adds no arithmetic
to a step, and its mode switches call the package's own ``train()`` / ``eval()``.
"""

from __future__ import annotations

import io
import sys

import pytest
import torch
from torch import nn

import optiplug
from optiplug.tooling.curves import compute_curves

RULE = {"kind": "bias", "set": {"weight_decay": 0.0}}


def needs_package():
    return pytest.importorskip(
        "schedulefree", reason="the schedule-free tests need the package: pip install schedulefree"
    )


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.hidden = nn.Linear(4, 8)
        self.norm = nn.BatchNorm1d(8)
        self.out = nn.Linear(8, 3)

    def forward(self, x):
        return self.out(torch.relu(self.norm(self.hidden(x))))


def batch(step):
    generator = torch.Generator().manual_seed(step)
    return torch.randn(16, 4, generator=generator), torch.randint(0, 3, (16,), generator=generator)


def loss_of(model, step):
    inputs, targets = batch(step)
    return nn.functional.cross_entropy(model(inputs), targets)


def model_pair():
    torch.manual_seed(0)
    model = Net()
    reference = Net()
    reference.load_state_dict(model.state_dict())
    return model, reference


CASES = {
    "schedulefree_adamw": ("AdamWScheduleFree", {"lr": 0.01, "betas": (0.9, 0.99), "weight_decay": 0.05}),
    "schedulefree_sgd": ("SGDScheduleFree", {"lr": 0.5, "momentum": 0.9, "weight_decay": 0.05}),
    "schedulefree_radam": ("RAdamScheduleFree", {"lr": 0.01, "weight_decay": 0.05}),
}


def reference_optimizer(name, model):
    package = needs_package()
    class_name, options = CASES[name]
    decay = [p for n, p in model.named_parameters() if not n.endswith("bias")]
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias")]
    optimizer = getattr(package, class_name)([{"params": decay}, {"params": no_decay, "weight_decay": 0.0}], **options)
    optimizer.train()
    return optimizer


def recipe(name, schedule=None):
    options = dict(CASES[name][1])
    if "betas" in options:
        options["betas"] = list(options["betas"])
    out = {"optimizer": {"name": name, **options}, "rules": [RULE]}
    if schedule:
        out["schedules"] = {"lr": schedule}
    return out


def reference_steps(optimizer, model, steps, lrs=None):
    for step in steps:
        if lrs is not None:
            for group in optimizer.param_groups:
                group["lr"] = lrs[step]
        loss_of(model, step).backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)


def assert_same_params(a, b):
    for (name, x), y in zip(a.named_parameters(), b.parameters(), strict=True):
        assert torch.equal(x, y), name


@pytest.mark.parametrize("name", list(CASES))
def test_steps_and_modes_are_the_packages_bit_for_bit(name):
    model, reference = model_pair()
    built = optiplug.build(recipe(name), model, steps_per_epoch=10, num_epochs=1)
    optimizer = reference_optimizer(name, reference)
    assert built.optimizer_mode == "train"
    for step in range(5):
        built.step(loss_of(model, step))
    reference_steps(optimizer, reference, range(5))
    assert_same_params(model, reference)

    built.eval(model)
    optimizer.eval()
    assert not model.training and built.optimizer_mode == "eval"
    assert_same_params(model, reference)
    built.train(model)
    optimizer.train()
    assert model.training and built.optimizer_mode == "train"
    for step in range(5, 8):
        built.step(loss_of(model, step))
    reference_steps(optimizer, reference, range(5, 8))
    assert_same_params(model, reference)


def test_a_scheduled_lr_reaches_the_optimizer():
    model, reference = model_pair()
    schedule = {"name": "wsd", "value": 0.01, "warmup": 0.2, "decay": 0.3, "decay_shape": "linear"}
    built = optiplug.build(recipe("schedulefree_adamw", schedule), model, steps_per_epoch=10, num_epochs=1)
    lrs = compute_curves(built).values["lr"][0].tolist()
    optimizer = reference_optimizer("schedulefree_adamw", reference)
    for step in range(10):
        built.step(loss_of(model, step))
    reference_steps(optimizer, reference, range(10), lrs)
    assert_same_params(model, reference)
    assert built.optimizer.param_groups[0]["lr_max"] == optimizer.param_groups[0]["lr_max"] == 0.01


def through_torch_save(state):
    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=True)


def test_a_checkpoint_is_written_in_eval_mode_and_resumes_identically():
    model, reference = model_pair()
    built = optiplug.build(recipe("schedulefree_adamw"), model, steps_per_epoch=10, num_epochs=1)
    optimizer = reference_optimizer("schedulefree_adamw", reference)
    for step in range(4):
        built.step(loss_of(model, step))
    reference_steps(optimizer, reference, range(4))

    checkpoint = through_torch_save({"built": built.state_dict(), "model": model.state_dict()})
    assert built.optimizer_mode == "eval"
    optimizer.eval()
    assert_same_params(model, reference)  # the weights saved are the evaluated average x
    assert all(group["train_mode"] is False for group in checkpoint["built"]["optimizer"]["param_groups"])
    with pytest.raises(optiplug.StateError, match=r"^the optimizer is in eval mode .*call built\.train\(model\)"):
        built.step(loss_of(model, 4))

    torch.manual_seed(1)
    fresh_model = Net()
    fresh = optiplug.build(recipe("schedulefree_adamw"), fresh_model, steps_per_epoch=10, num_epochs=1)
    fresh_model.load_state_dict(checkpoint["model"])
    fresh.load_state_dict(checkpoint["built"])
    assert fresh.optimizer_mode == "eval"
    for b, m in ((built, model), (fresh, fresh_model)):
        b.train(m)
        for step in range(4, 8):
            b.step(loss_of(m, step))
    optimizer.train()
    reference_steps(optimizer, reference, range(4, 8))
    assert_same_params(model, reference)
    assert_same_params(fresh_model, reference)


def test_batchnorm_recalibration_at_the_average_as_the_docs_show():
    needs_package()
    torch.manual_seed(0)
    model = Net()
    built = optiplug.build(recipe("schedulefree_sgd"), model, steps_per_epoch=10, num_epochs=1)
    for step in range(6):
        built.step(loss_of(model, step))
    # docs/plugins/schedulefree.md: eval mode for the optimizer, train mode for the model, forward without grads
    built.eval(model)
    model.train()
    for bn in (m for m in model.modules() if isinstance(m, nn.BatchNorm1d)):
        bn.reset_running_stats()
        bn.momentum = None  # a cumulative average over the recalibration batches
    with torch.no_grad():
        for step in range(100, 104):
            model(batch(step)[0])
    model.eval()
    with torch.no_grad():  # the expected statistics: the hidden layer's outputs at the average x
        hidden = torch.cat([model.hidden(batch(step)[0]) for step in range(100, 104)]).view(4, 16, 8)
    torch.testing.assert_close(model.norm.running_mean, hidden.mean(dim=1).mean(dim=0))
    torch.testing.assert_close(model.norm.running_var, hidden.var(dim=1).mean(dim=0))


def test_larc_still_wraps_it_and_the_modes_are_found_through_the_wrapper():
    needs_package()
    model = Net()
    config = recipe("schedulefree_sgd") | {"wrappers": [{"name": "larc"}]}
    built = optiplug.build(config, model, steps_per_epoch=10, num_epochs=1)
    assert type(built.optimizer).__name__ == "LARC" and built.optimizer_mode == "train"
    built.step(loss_of(model, 0))
    built.eval(model)
    assert built.optimizer_mode == "eval"
    built.train(model)
    assert built.step(loss_of(model, 1))


def test_optimizers_without_modes_only_switch_the_model():
    model = Net()
    built = optiplug.build({"optimizer": {"name": "SGD", "lr": 0.1}}, model)
    assert built.optimizer_mode is None
    built.eval(model)
    assert not model.training
    built.train(model)
    assert model.training and built.step(loss_of(model, 0))


def test_without_the_package_the_error_says_how_to_install_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "schedulefree", None)  # import schedulefree raises ImportError
    message = (
        r"^optimizer\.name: the schedule-free optimizers need the optional package schedulefree: "
        r"pip install schedulefree$"
    )
    with pytest.raises(optiplug.ConfigError, match=message):
        optiplug.build({"optimizer": {"name": "schedulefree_adamw", "lr": 0.01}}, nn.Linear(2, 1))


def test_arguments_are_checked_against_the_packages_signature():
    needs_package()
    with pytest.raises(
        optiplug.ConfigError, match=r"^optimizer\.warmup_step: unknown argument \(did you mean 'warmup_steps'\?\)"
    ):
        optiplug.build({"optimizer": {"name": "schedulefree_adamw", "warmup_step": 10}}, nn.Linear(2, 1))
    with pytest.raises(optiplug.ConfigError, match=r"^rules\[0\]\.set\.betas: expected 2 numbers, got \[0\.9\]$"):
        config = {"optimizer": {"name": "schedulefree_adamw"}, "rules": [{"kind": "bias", "set": {"betas": [0.9]}}]}
        optiplug.build(config, nn.Linear(2, 1))


def test_optiplug_plugins_lists_them_under_the_schedulefree_plugin(capsys):
    import json

    from optiplug.cli import main

    assert main(["plugins", "--json"]) == 0
    rows = {row["name"]: row for row in json.loads(capsys.readouterr().out)}
    assert rows["schedulefree"]["provides"] == {"optimizers": sorted(CASES)}
