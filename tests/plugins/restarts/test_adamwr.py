"""The adamwr drop-in: per-batch lr and weight decay against adamwr's formulas, with its fixed bugs, written here."""

from __future__ import annotations

import math
import pickle

import pytest
import torch

import optiplug
from optiplug_adamw import AdamW
from optiplug_restarts import CyclicLRWithRestarts, ExpReduceMaxLROnIteration, ReduceMaxLROnRestart


def policy_value(policy, t_cur, period, step=0.5):
    """adamwr's policy functions, in epochs."""
    if policy == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * (t_cur / period)))
    if policy == "arccosine":
        return math.acos(max(-1, min(1, 2 * t_cur / period - 1))) / math.pi
    knee = step * period
    return t_cur / knee if t_cur < knee else 1.0 - (t_cur - knee) / (period - knee)


class Reference:
    """adamwr's CyclicLRWithRestarts with the fixes of docs/adamwr.md, one batch at a time: the restart comes
    before the batch, exp_range is gamma ** n, in-epoch progress is float64 j / nb, callbacks compose."""

    def __init__(
        self,
        *,
        batch_size,
        epoch_size,
        restart_period,
        t_mult,
        policy="cosine",
        min_lr=1e-7,
        restart_cbs=(),
        iteration_cbs=(),
        exp_gammas=(),
        policy_fn=None,
        triangular_step=0.5,
    ):
        self.nb = math.ceil(epoch_size / batch_size)
        self.norm = lambda period: math.sqrt(batch_size / (epoch_size * period))
        self.period, self.t_mult = math.ceil(restart_period), t_mult
        self.policy, self.policy_fn, self.min_lr = policy, policy_fn, min_lr
        self.step = 0.5 if policy == "exp_range" else triangular_step
        halving = policy == "triangular2" and policy_fn is None  # adamwr: policy_fn replaces the whole policy
        self.restart_cbs = list(restart_cbs) + ([ReduceMaxLROnRestart(0.5)] if halving else [])
        self.iteration_cbs, self.exp_gammas = list(iteration_cbs), list(exp_gammas)
        self.eta_min, self.eta_max = 0.0, 1.0

    def run(self, epochs, base_lr, base_wd):
        out, t_epoch, n = [], 0, 0
        for epoch in range(epochs):
            if epoch > 0:
                t_epoch += 1
            if t_epoch >= self.period:  # the restart comes before the batch (adamwr: after)
                t_epoch, self.period = 0, math.ceil(self.period * self.t_mult)
                for cb in self.restart_cbs:
                    self.eta_min, self.eta_max = cb(self.eta_min, self.eta_max)
            for j in range(self.nb):
                for cb in self.iteration_cbs:  # user callbacks: cumulative, once per update
                    self.eta_min, self.eta_max = cb(self.eta_min, self.eta_max, n)
                t_cur = t_epoch + j / self.nb
                p = (
                    self.policy_fn(t_cur, self.period)
                    if self.policy_fn
                    else policy_value(self.policy, t_cur, self.period, self.step)
                )
                peak = self.eta_max * math.prod(g**n for g in self.exp_gammas)  # gamma ** n
                eta = self.eta_min + (peak - self.eta_min) * p
                lr = self.min_lr + (base_lr - self.min_lr) * eta
                out.append((lr, base_wd * eta * self.norm(self.period)))
                n += 1
        return out


def model():
    torch.manual_seed(0)
    return torch.nn.Linear(4, 3)


def drive(scheduler, optimizer, epochs, batches):
    """adamwr's loop: step() at the start of each epoch, batch_step() after each optimizer.step()."""
    seen = []
    for _ in range(epochs):
        scheduler.step()
        for _ in range(batches):
            group = optimizer.param_groups[0]
            seen.append((group["lr"], group["weight_decay"]))
            optimizer.step()
            scheduler.batch_step()
    return seen


def run_both(epochs=30, base_lr=0.01, base_wd=1e-3, batch_size=8, epoch_size=50, **kwargs):
    optimizer = torch.optim.SGD(model().parameters(), lr=base_lr, weight_decay=base_wd)
    scheduler_kwargs = {k: v for k, v in kwargs.items() if k not in ("restart_cbs", "iteration_cbs", "exp_gammas")}
    reference_kwargs = {
        k: v for k, v in kwargs.items() if k not in ("eta_on_restart_cb", "eta_on_iteration_cb", "gamma")
    }
    scheduler = CyclicLRWithRestarts(optimizer, batch_size, epoch_size, **scheduler_kwargs)
    nb = math.ceil(epoch_size / batch_size)
    got = drive(scheduler, optimizer, epochs, nb)
    reference_kwargs.setdefault("restart_period", scheduler_kwargs.get("restart_period", 100))
    reference_kwargs.setdefault("t_mult", scheduler_kwargs.get("t_mult", 2))
    want = Reference(batch_size=batch_size, epoch_size=epoch_size, **reference_kwargs).run(epochs, base_lr, base_wd)
    return got, want


def assert_close(got, want):
    assert len(got) == len(want)
    for k, (g, w) in enumerate(zip(got, want, strict=True)):
        assert g == pytest.approx(w, rel=1e-12, abs=1e-18), f"update {k}"


@pytest.mark.parametrize("policy", ["cosine", "arccosine", "triangular"])
@pytest.mark.parametrize(("restart_period", "t_mult"), [(5, 1.2), (2, 2), (1.5, 1.0), (7, 0.8)])
def test_every_policy_with_t_mult_growth(policy, restart_period, t_mult):
    got, want = run_both(policy=policy, restart_period=restart_period, t_mult=t_mult, min_lr=1e-5)
    assert_close(got, want)


def test_triangular_step_and_peak_halving():
    got, want = run_both(policy="triangular2", restart_period=2, t_mult=1.5, triangular_step=0.2)
    assert_close(got, want)


def test_exp_range_is_gamma_to_the_update_count():
    got, want = run_both(policy="exp_range", restart_period=3, t_mult=1, gamma=0.99, exp_gammas=[0.99])
    assert_close(got, want)
    # not adamwr's gamma ** (n (n - 1) / 2): after 10 updates the peak factor is 0.99 ** 10
    assert want[10][0] != pytest.approx(1e-7 + (0.01 - 1e-7) * 0.99**45 * policy_value("triangular", 10 / 7, 3))


def test_ready_made_restart_callback_is_a_peak_decay():
    got, want = run_both(
        restart_period=2,
        t_mult=2,
        eta_on_restart_cb=ReduceMaxLROnRestart(0.75),
        restart_cbs=[ReduceMaxLROnRestart(0.75)],
    )
    assert_close(got, want)


def test_triangular2_composes_with_a_user_restart_callback():
    # adamwr replaced the user's callback by the halving; here both apply: 0.5 * 0.75 per restart
    kwargs = {"policy": "triangular2", "restart_period": 2, "t_mult": 1.5}
    got, want = run_both(
        eta_on_restart_cb=ReduceMaxLROnRestart(0.75), restart_cbs=[ReduceMaxLROnRestart(0.75)], **kwargs
    )
    assert_close(got, want)


def test_exp_range_composes_with_a_ready_made_iteration_callback():
    kwargs = {"policy": "exp_range", "restart_period": 2, "t_mult": 1, "gamma": 0.995}
    got, want = run_both(eta_on_iteration_cb=ExpReduceMaxLROnIteration(0.99), exp_gammas=[0.995, 0.99], **kwargs)
    assert_close(got, want)


def test_custom_callbacks_take_the_fallback_path():
    def on_restart(eta_min, eta_max):
        return eta_min + 0.01, eta_max * 0.9

    def on_iteration(eta_min, eta_max, n):
        return eta_min, eta_max * (0.9999 if n % 2 else 1.0)

    kwargs = {"policy": "triangular2", "restart_period": 2, "t_mult": 1.5}
    got, want = run_both(
        eta_on_restart_cb=on_restart,
        eta_on_iteration_cb=on_iteration,
        restart_cbs=[on_restart],
        iteration_cbs=[on_iteration],
        **kwargs,
    )
    assert_close(got, want)


def test_policy_fn_overrides_the_policy():
    def flat_then_drop(t_cur, period):
        return 1.0 if t_cur < period / 2 else 0.1

    got, want = run_both(policy="triangular2", policy_fn=flat_then_drop, restart_period=3, t_mult=2)
    assert_close(got, want)


def test_adamwr_spec_example_first_batch_of_a_restart_is_the_peak():
    # b=2, B=8, T=2, t_mult=2: adamwr gives [0.0, 0.99, 0.962, 0.916] in epoch 2; restarting before the batch,
    # the first is the peak
    optimizer = torch.optim.SGD(model().parameters(), lr=1.0, weight_decay=1.0)
    scheduler = CyclicLRWithRestarts(optimizer, 2, 8, restart_period=2, t_mult=2, min_lr=0.0)
    seen = drive(scheduler, optimizer, 3, 4)
    assert [round(lr, 3) for lr, _ in seen[8:]] == [1.0, 0.99, 0.962, 0.916]
    assert seen[0][1] == pytest.approx(math.sqrt(2 / 16))  # normalizer 0.3536 with T = 2
    assert seen[8][1] == pytest.approx(0.25)  # and 0.25 after the restart to T = 4


def test_groups_keep_their_own_base_and_min_lr():
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Linear(2, 2))
    groups = [
        {"params": net[0].parameters(), "lr": 0.1, "weight_decay": 0.01, "minimum_lr": 0.001},
        {"params": net[1].parameters(), "lr": 0.02, "weight_decay": 0.0},
    ]
    optimizer = torch.optim.SGD(groups, lr=0.5)
    scheduler = CyclicLRWithRestarts(optimizer, 4, 16, restart_period=1, t_mult=1, min_lr=1e-4)
    scheduler.step()
    scheduler.batch_step()  # batch 1 of 4: t_cur = 1/4
    eta = policy_value("cosine", 0.25, 1)
    first, second = optimizer.param_groups
    assert first["lr"] == pytest.approx(0.001 + (0.1 - 0.001) * eta)
    assert second["lr"] == pytest.approx(1e-4 + (0.02 - 1e-4) * eta)
    assert first["weight_decay"] == pytest.approx(0.01 * eta * math.sqrt(4 / 16))
    assert second["weight_decay"] == 0.0
    assert scheduler.get_last_lr() == [first["lr"], second["lr"]]


def test_drop_last_loader_skips_to_the_next_epoch():
    optimizer = torch.optim.SGD(model().parameters(), lr=1.0)
    scheduler = CyclicLRWithRestarts(optimizer, 3, 10, restart_period=4, t_mult=1, min_lr=0.0)  # nb = 4
    seen = drive(scheduler, optimizer, 2, 3)  # a drop_last loader gives 3 batches
    assert [lr for lr, _ in seen] == pytest.approx([policy_value("cosine", t, 4) for t in (0, 0.25, 0.5, 1, 1.25, 1.5)])


def test_too_many_batches_stop_with_a_clear_message():
    optimizer = torch.optim.SGD(model().parameters(), lr=1.0)
    scheduler = CyclicLRWithRestarts(optimizer, 4, 8, restart_period=2)
    scheduler.step()
    scheduler.batch_step()
    scheduler.batch_step()
    with pytest.raises(StopIteration, match="2 batches per epoch"):
        scheduler.batch_step()


def test_resume_mid_cycle_continues_identically():
    torch.manual_seed(7)
    data = iter([torch.randn(4, 4) for _ in range(40)] * 2)

    def setup():
        net = model()
        optimizer = AdamW(net.parameters(), lr=1e-2, weight_decay=1e-2)
        return net, optimizer, CyclicLRWithRestarts(optimizer, 4, 20, restart_period=3, t_mult=1.5)

    def batch(net, optimizer, scheduler, seen):
        seen.append((optimizer.param_groups[0]["lr"], optimizer.param_groups[0]["weight_decay"]))
        optimizer.zero_grad()
        net(next(data)).pow(2).mean().backward()
        optimizer.step()
        scheduler.batch_step()

    def epochs(net, optimizer, scheduler, count, seen):
        for _ in range(count):
            scheduler.step()
            for _ in range(5):
                batch(net, optimizer, scheduler, seen)

    whole = []
    net, optimizer, scheduler = setup()
    epochs(net, optimizer, scheduler, 8, whole)
    whole_params = [p.detach().clone() for p in net.parameters()]

    # stop after 2 batches of epoch 4 (inside the second period), checkpoint, resume in a new process-like setup
    split = []
    net, optimizer, scheduler = setup()
    epochs(net, optimizer, scheduler, 4, split)
    scheduler.step()
    for _ in range(2):
        batch(net, optimizer, scheduler, split)
    state = {"model": net.state_dict(), "opt": optimizer.state_dict(), "sched": scheduler.state_dict()}
    checkpoint = pickle.loads(pickle.dumps(state))

    net, optimizer, scheduler = setup()
    net.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["opt"])
    scheduler.load_state_dict(checkpoint["sched"])
    for _ in range(3):
        batch(net, optimizer, scheduler, split)
    epochs(net, optimizer, scheduler, 3, split)
    assert split == whole
    assert all(torch.equal(a, b) for a, b in zip(net.parameters(), whole_params, strict=True))


def test_resume_keeps_the_weight_decay_base_from_the_state():
    net = model()
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=0.01)
    scheduler = CyclicLRWithRestarts(optimizer, 2, 8, restart_period=2)
    drive(scheduler, optimizer, 1, 3)
    state = scheduler.state_dict()
    # the group now holds a scheduled, normalized decay; a new scheduler must not take it as the base
    fresh = torch.optim.SGD(net.parameters(), lr=0.1, weight_decay=optimizer.param_groups[0]["weight_decay"])
    resumed = CyclicLRWithRestarts(fresh, 2, 8, restart_period=2)
    resumed.load_state_dict(state)
    assert resumed.base_weight_decays == [0.01]
    assert fresh.param_groups[0]["weight_decay"] == optimizer.param_groups[0]["weight_decay"]


def test_fallback_state_round_trips():
    def on_restart(eta_min, eta_max):
        return eta_min, eta_max * 0.6

    def make():
        optimizer = torch.optim.SGD(model().parameters(), lr=1.0)
        return optimizer, CyclicLRWithRestarts(
            optimizer, 2, 8, restart_period=1, t_mult=1, eta_on_restart_cb=on_restart
        )

    optimizer, scheduler = make()
    whole = drive(scheduler, optimizer, 5, 4)
    optimizer, scheduler = make()
    head = drive(scheduler, optimizer, 2, 4)
    optimizer2, scheduler2 = make()
    scheduler2.load_state_dict(scheduler.state_dict())
    assert head + drive(scheduler2, optimizer2, 3, 4) == whole


def test_last_epoch_resumes_at_the_next_epoch():
    optimizer = torch.optim.SGD(model().parameters(), lr=1.0, weight_decay=0.1)
    whole = drive(CyclicLRWithRestarts(optimizer, 2, 8, restart_period=2, t_mult=2), optimizer, 6, 4)
    resumed = CyclicLRWithRestarts(optimizer, 2, 8, restart_period=2, t_mult=2, last_epoch=3)
    assert drive(resumed, optimizer, 2, 4) == whole[16:]


def test_verbose_announces_restarts(capsys):
    optimizer = torch.optim.SGD(model().parameters(), lr=1.0)
    drive(CyclicLRWithRestarts(optimizer, 2, 4, restart_period=1, t_mult=2, verbose=True), optimizer, 4, 2)
    assert capsys.readouterr().out.splitlines() == ["Restart 1 at epoch 1", "Restart 2 at epoch 3"]


@pytest.mark.parametrize(
    ("kwargs", "path", "words"),
    [
        ({"policy": "cosin"}, "policy", "'cosin'"),
        ({"restart_period": 0}, "restart_period", "> 0"),
        ({"t_mult": -1}, "t_mult", "-1"),
        ({"triangular_step": 2}, "triangular_step", "[0, 1]"),
        ({"gamma": 0}, "gamma", "> 0"),
        ({"batch_size": 0}, "batch_size", "whole number"),
        ({"epoch_size": 10.5}, "epoch_size", "10.5"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs, path, words):
    optimizer = torch.optim.SGD(model().parameters(), lr=1.0)
    arguments = {"batch_size": 2, "epoch_size": 8} | kwargs
    with pytest.raises(optiplug.ConfigError) as info:
        CyclicLRWithRestarts(optimizer, **arguments)
    assert info.value.path == path
    assert words in str(info.value)


def test_resuming_with_last_epoch_needs_the_saved_bases():
    optimizer = torch.optim.SGD(model().parameters(), lr=1.0)
    with pytest.raises(KeyError, match="initial_lr"):
        CyclicLRWithRestarts(optimizer, 2, 8, last_epoch=4)


def test_a_state_from_other_arguments_is_refused():
    optimizer = torch.optim.SGD(model().parameters(), lr=1.0)
    state = CyclicLRWithRestarts(optimizer, 2, 8, restart_period=2).state_dict()
    with pytest.raises(optiplug.StateError, match="restart_period"):
        CyclicLRWithRestarts(optimizer, 2, 8, restart_period=3).load_state_dict(state)


def test_the_recipe_of_the_guide_gives_the_drop_ins_values():
    """docs/adamwr.md: the drop-in is the recipe restarts + normalized_decay with steps_per_epoch = nb."""
    restarts = {"name": "restarts", "period_epochs": 5, "t_mult": 1.2, "rounding": "ceil", "min_value": 1e-7}
    recipe = {
        "optimizer": {"name": "adamwr", "lr": 1e-3, "weight_decay": 1e-5},
        "schedules": {
            "lr": restarts,
            "weight_decay": {"name": "normalized_decay", "batch_size": 32, "epoch_size": 1000, "schedule": restarts},
        },
    }
    built = optiplug.build(recipe, model(), steps_per_epoch=32, num_epochs=40)
    optimizer = AdamW(model().parameters(), lr=1e-3, weight_decay=1e-5)
    scheduler = CyclicLRWithRestarts(optimizer, 32, 1000, restart_period=5, t_mult=1.2)
    from_recipe = []
    for _ in range(40 * 32):
        group = built.optimizer.param_groups[0]
        from_recipe.append((group["lr"], group["weight_decay"]))
        built.optimizer.step()
        built.scheduler.step()
    assert drive(scheduler, optimizer, 40, 32) == from_recipe
