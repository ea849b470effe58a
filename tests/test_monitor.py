"""torch_sugar.DeadUnitMonitor on networks whose dead units are known by construction, and its
tau-dormant units (ReDo) against hand-computed cases and a float64 numpy computation."""

import os
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import torch_sugar
from torch_sugar import DeadUnitMonitor


def _linear(weight, bias) -> nn.Linear:
    weight = torch.tensor(weight, dtype=torch.float32)
    layer = nn.Linear(weight.shape[1], weight.shape[0])
    with torch.no_grad():
        layer.weight.copy_(weight)
        layer.bias.copy_(torch.tensor(bias, dtype=torch.float32))
    return layer


def known_mlp() -> nn.Sequential:
    """Inputs are >= 0 (see positive_inputs). First layer (4 units):
    0: x0 > 0 for some inputs -> alive;  1: -x0 - x1 <= 0 always -> dead;
    2: constant 0 (0 is not > 0) -> dead; 3: constant 0.1 -> alive.
    Second layer (3 units) reads h = relu(first) with h1 = h2 = 0:
    0: h0 + h3 -> alive;  1: -h0 - h3 - 1 -> dead;  2: 5 * h1 (a dead input) + 0 -> dead."""
    return nn.Sequential(
        _linear([[1.0, 0.0], [-1.0, -1.0], [0.0, 0.0], [0.0, 0.0]], [0.0, 0.0, 0.0, 0.1]),
        nn.ReLU(),
        _linear([[1.0, 0.0, 0.0, 1.0], [-1.0, 0.0, 0.0, -1.0], [0.0, 5.0, 0.0, 0.0]], [0.0, -1.0, 0.0]),
        nn.ReLU(),
        _linear([[1.0, 1.0, 1.0]], [0.0]),
    )


def positive_inputs(n=16, seed=0) -> torch.Tensor:
    return torch.rand(n, 2, generator=torch.Generator().manual_seed(seed)) + 0.01


EXPECTED_DEAD = {"1": [False, True, True, False], "3": [False, True, True]}


def test_known_dead_units_mlp():
    model = known_mlp()
    with DeadUnitMonitor(model) as monitor:
        model(positive_inputs())
        res = monitor.results()
        masks = monitor.dead_masks()
    assert [layer.name for layer in res.layers] == ["1", "3"]
    for name, expected in EXPECTED_DEAD.items():
        assert masks[name].tolist() == expected
    assert (res["1"].units, res["1"].dead, res["1"].samples) == (4, 2, 16)
    assert (res["3"].units, res["3"].dead) == (3, 2)
    assert res.units == 7 and res.dead == 4
    assert res.fraction == pytest.approx(4 / 7)
    assert res["1"].fraction == pytest.approx(0.5)
    d = res.as_dict()
    # Units 1 and 2 of layer 3 are 0 on every input (dead, so dormant); unit 0 has score 3 (> tau).
    assert d["layers"]["3"] == {
        "units": 3,
        "dead": 2,
        "fraction": pytest.approx(2 / 3),
        "samples": 16,
        "dormant": 2,
        "dormant_fraction": pytest.approx(2 / 3),
    }
    assert (d["dead"], d["units"], d["tau"]) == (4, 7, 0.1)
    assert d["dormant"] == res.dormant and d["dormant_fraction"] == res.dormant_fraction


def test_after_convert_counts_are_the_same():
    """SugarReLU's forward is ReLU's, so the same units are dead; the hooks sit on SugarReLU."""
    model = torch_sugar.convert(known_mlp(), "bsilu")
    assert all(not isinstance(m, nn.ReLU) for m in model.modules())
    with DeadUnitMonitor(model) as monitor:
        model(positive_inputs())
        assert {k: v.tolist() for k, v in monitor.dead_masks().items()} == EXPECTED_DEAD


def test_a_unit_alive_in_any_batch_is_alive():
    """Unit 0 of the first layer fires only for x0 > 0.5: absent from batch 1, present in batch 2."""
    model = nn.Sequential(_linear([[1.0], [-1.0]], [-0.5, 0.0]), nn.ReLU())
    monitor = DeadUnitMonitor(model)
    model(torch.full((4, 1), 0.2))
    assert monitor.dead_masks()["1"].tolist() == [True, True]
    model(torch.tensor([[0.1], [0.9]]))
    assert monitor.dead_masks()["1"].tolist() == [False, True]
    assert monitor.results()["1"].samples == 6
    monitor.reset()
    assert monitor.results().layers == () and monitor.results().fraction == 0.0
    model(torch.full((3, 1), 0.2))
    assert monitor.dead_masks()["1"].tolist() == [True, True]
    monitor.remove()


def test_conv_channels_any_position_counts():
    """Channel 0: x (positive images) -> alive; 1: -x -> dead; 2: x - 10 -> alive only because one
    pixel of one image is 20."""
    conv = nn.Conv2d(1, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.tensor([1.0, -1.0, 1.0]).view(3, 1, 1, 1))
        conv.bias.copy_(torch.tensor([0.0, 0.0, -10.0]))
    model = nn.Sequential(conv, nn.ReLU(inplace=True))
    x = torch.rand(5, 1, 6, 6) + 0.1
    with DeadUnitMonitor(model) as monitor:
        model(x)
        assert monitor.dead_masks()["1"].tolist() == [False, True, True]
        x2 = torch.rand(2, 1, 6, 6) + 0.1
        x2[1, 0, 3, 4] = 20.0
        model(x2)
        assert monitor.dead_masks()["1"].tolist() == [False, True, False]
        assert monitor.results()["1"].units == 3


def test_enabled_flag_and_context_manager_remove_hooks():
    model = known_mlp()
    monitor = DeadUnitMonitor(model, enabled=False)
    model(positive_inputs())
    assert monitor.results().layers == ()
    monitor.enabled = True
    with monitor:
        model(positive_inputs(4))
    assert monitor.results()["1"].samples == 4
    model(positive_inputs(8))  # hooks removed on exit: not counted
    assert monitor.results()["1"].samples == 4
    assert not any(m._forward_hooks for m in model.modules())
    assert not model._forward_pre_hooks


def test_module_reused_in_one_forward_gets_one_entry_per_call():
    class Reuse(nn.Module):
        def __init__(self):
            super().__init__()
            self.a = _linear([[1.0], [-1.0]], [0.0, 0.0])
            self.b = _linear([[-1.0, 0.0], [1.0, 0.0]], [0.0, 0.0])
            self.act = nn.ReLU()

        def forward(self, x):
            return self.act(self.b(self.act(self.a(x))))

    model = Reuse()
    with DeadUnitMonitor(model) as monitor:
        model(torch.rand(8, 1) + 0.1)  # a: [x, -x] -> unit 1 dead; b: [-x, x] -> unit 0 dead
        model(torch.rand(8, 1) + 0.1)
        masks = monitor.dead_masks()
    assert list(masks) == ["act", "act#1"]
    assert masks["act"].tolist() == [False, True]
    assert masks["act#1"].tolist() == [True, False]
    assert monitor.results()["act#1"].samples == 16


def test_does_not_change_outputs_or_gradients():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 7), nn.ReLU(), nn.Linear(7, 1))
    x = torch.randn(9, 5)
    model(x).sum().backward()
    plain = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    with DeadUnitMonitor(model):
        out = model(x)
        out.sum().backward()
    assert torch.equal(out, model(x))
    assert all(torch.equal(p.grad, g) for p, g in zip(model.parameters(), plain))


def test_bad_arguments():
    with pytest.raises(ValueError, match="no ReLU or SugarReLU modules"):
        DeadUnitMonitor(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), functional=False)
    with pytest.raises(TypeError, match="must be an nn.Module"):
        DeadUnitMonitor("model")
    monitor = DeadUnitMonitor(nn.Sequential(nn.Linear(2, 2), nn.Tanh()), module_types=[nn.Tanh])
    assert monitor.layer_names == ["1"]
    with pytest.raises(KeyError, match="no layer named 'nope'"):
        monitor.results()["nope"]


def test_exported():
    assert "DeadUnitMonitor" in torch_sugar.__all__


# ---------------------------------------------------------------------------------------------
# ReLUs written as calls in forward methods (functional=True, the default)


class FunctionalKnown(nn.Module):
    """known_mlp's network with its two ReLUs written as calls: the same dead units."""

    def __init__(self, in_place=False):
        super().__init__()
        seq = known_mlp()
        self.fc1, self.fc2, self.fc3 = seq[0], seq[2], seq[4]
        self.in_place = in_place

    def forward(self, x):
        h = torch.relu_(self.fc1(x)) if self.in_place else F.relu(self.fc1(x))
        return self.fc3(self.fc2(h).relu())


class Block(nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def forward(self, x):
        return self.inner(x)


class Nested(nn.Module):
    """block1 computes F.relu(fc1) and reuses an nn.ReLU; the model's own forward the second."""

    def __init__(self):
        super().__init__()
        seq = known_mlp()
        self.block1 = Block(seq[0])
        self.act = nn.ReLU()
        self.fc2, self.fc3 = seq[2], seq[4]

    def forward(self, x):
        h = F.relu(self.block1(x))
        h2 = torch_sugar.relu(self.fc2(h), "nelu")
        return self.fc3(self.act(h2)) + self.act(h2).sum()


@pytest.mark.parametrize("in_place", [False, True])
def test_functional_relus_are_counted_and_named_after_their_module(in_place):
    model = FunctionalKnown(in_place)
    with DeadUnitMonitor(model) as monitor:
        model(positive_inputs())
        model(positive_inputs(seed=1))  # a second forward pass: the same call sites
    masks = monitor.dead_masks()
    assert list(masks) == ["(model)#relu0", "(model)#relu1"]
    assert masks["(model)#relu0"].tolist() == EXPECTED_DEAD["1"]
    assert masks["(model)#relu1"].tolist() == EXPECTED_DEAD["3"]
    assert monitor.results()["(model)#relu0"].samples == 32


def test_functional_and_module_relus_together_counted_once():
    model = Nested()
    with DeadUnitMonitor(model) as monitor:
        model(positive_inputs())
    res = monitor.results()
    # F.relu after block1 is the model's own call (block1's forward returned before it).
    assert [layer.name for layer in res.layers] == ["(model)#relu0", "(model)#relu1", "act", "act#1"]
    assert monitor.dead_masks()["(model)#relu0"].tolist() == EXPECTED_DEAD["1"]
    assert monitor.dead_masks()["(model)#relu1"].tolist() == EXPECTED_DEAD["3"]


def test_a_call_inside_a_submodule_is_named_after_it():
    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = known_mlp()[0]

        def forward(self, x):
            return F.relu(self.fc(x)) + x.relu().sum()

    model = nn.Sequential(Inner(), nn.Linear(4, 1))
    with DeadUnitMonitor(model) as monitor:
        model(positive_inputs())
    assert [layer.name for layer in monitor.results().layers] == ["0#relu0", "0#relu1"]
    assert monitor.dead_masks()["0#relu0"].tolist() == EXPECTED_DEAD["1"]


def test_functional_counting_under_patch_and_convert_functional():
    for wrap in ("patch", "convert"):
        model = FunctionalKnown()
        if wrap == "convert":
            torch_sugar.convert(model, "bsilu", functional=True)
        with DeadUnitMonitor(model) as monitor:
            if wrap == "patch":
                with torch_sugar.patch("bsilu"):
                    model(positive_inputs())
            else:
                model(positive_inputs())
        masks = monitor.dead_masks()
        assert list(masks) == ["(model)#relu0", "(model)#relu1"], wrap
        assert masks["(model)#relu1"].tolist() == EXPECTED_DEAD["3"]


def test_paused_monitor_adds_no_mode_and_no_counts():
    depth = []

    class Probe(nn.Module):
        def forward(self, x):
            depth.append(torch._C._len_torch_function_stack())
            return F.relu(x)

    model = Probe()
    monitor = DeadUnitMonitor(model, enabled=False)
    model(torch.randn(3, 2))
    monitor.enabled = True
    model(torch.randn(3, 2))
    assert depth == [0, 1]
    assert monitor.results()["(model)#relu0"].samples == 3
    monitor.remove()
    model(torch.randn(3, 2))
    assert depth[-1] == 0


def test_warns_when_the_model_computes_no_visible_relu():
    model = nn.Sequential(nn.Linear(2, 2), nn.Tanh())
    monitor = DeadUnitMonitor(model)
    model(torch.randn(3, 2))
    with pytest.warns(RuntimeWarning, match="computed no ReLU the monitor can see"):
        assert monitor.results().units == 0


# -- tau-dormant units (ReDo, Sokar et al. 2023) --------------------------------------------------
# Six units whose mean ReLU outputs over the four rows are 0, 1/16, 1/8, 1/2, 3/2 and 61/16: the
# layer's average of those means is 6/6 = 1, so each score equals the unit's mean, exactly (every
# number here is a binary fraction, so the float arithmetic is exact and ties with tau are ties).
HAND_ROWS = torch.tensor(
    [
        [-1.0, 0.25, 0.0, 0.5, 6.0, 3.8125],
        [-2.0, 0.0, 0.5, 0.5, 0.0, 3.8125],
        [0.0, -1.0, 0.0, 0.5, 0.0, 3.8125],
        [-0.5, 0.0, -3.0, 0.5, -4.0, 3.8125],
    ]
)
HAND_SCORES = [0.0, 0.0625, 0.125, 0.5, 1.5, 3.8125]


def _relu_only() -> nn.Sequential:
    return nn.Sequential(nn.ReLU())


@pytest.mark.parametrize(
    "tau, dormant",
    [
        (0.1, [0, 1]),  # the default: the dead unit and the one at 1/16 of the average
        (0.0, [0]),  # tau = 0: exactly the units that are 0 on every input, here the dead one
        (0.0625, [0, 1]),  # s <= tau, not <: a score equal to tau is dormant
        (0.125, [0, 1, 2]),
        (1.0, [0, 1, 2, 3]),
    ],
)
def test_dormant_hand_computed(tau, dormant):
    model = _relu_only()
    kwargs = {} if tau == 0.1 else {"tau": tau}
    with DeadUnitMonitor(model, **kwargs) as monitor:
        model(HAND_ROWS[:3])  # two batches: the running sums must give the one-shot means
        model(HAND_ROWS[3:])
        res = monitor.results()
        assert monitor.dormancy_scores()["0"].tolist() == HAND_SCORES
        assert monitor.dormant_masks()["0"].nonzero().flatten().tolist() == dormant
        assert monitor.dead_masks()["0"].nonzero().flatten().tolist() == [0]
    assert res.tau == tau
    assert (res["0"].units, res["0"].dead, res["0"].dormant, res["0"].samples) == (6, 1, len(dormant), 4)
    assert res["0"].dormant_fraction == pytest.approx(len(dormant) / 6)
    assert (res.dormant, res.dormant_fraction) == (len(dormant), pytest.approx(len(dormant) / 6))


def test_dormant_scale_invariant_and_all_zero_layer():
    """Scores are ratios: scaling a layer's activations changes none; a layer that is 0 on every
    input (0/0 scores) has every unit dormant, as in the authors' code, and every unit dead."""
    model = nn.Sequential(nn.ReLU(), nn.Linear(6, 3), nn.ReLU())
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.fill_(-1.0)
    with DeadUnitMonitor(model) as monitor:
        model(HAND_ROWS * 1e-30)
        scores = monitor.dormancy_scores()
        res = monitor.results()
    torch.testing.assert_close(scores["0"], torch.tensor(HAND_SCORES, dtype=torch.float64), rtol=1e-6, atol=0)
    assert scores["2"].tolist() == [0.0, 0.0, 0.0]
    assert (res["0"].dormant, res["2"].dead, res["2"].dormant) == (2, 3, 3)
    assert (res.units, res.dead, res.dormant) == (9, 4, 5)


def test_dormant_conv_channels_average_over_batch_and_positions():
    """(2, 3, 2, 2) outputs: channel 0 is 1 everywhere (mean 1), channel 1 is 0.4 at one of its 8
    positions (mean 0.05), channel 2 is never positive. Average of the means: 0.35; scores 1/0.35,
    0.05/0.35 = 1/7 and 0: tau 0.1 finds channel 2 dormant, tau 0.15 channels 1 and 2."""
    out = torch.zeros(2, 3, 2, 2)
    out[:, 0] = 1.0
    out[1, 1, 0, 1] = 0.4
    out[:, 2] = -torch.rand(2, 2, 2)
    for tau, dormant in ((0.1, [False, False, True]), (0.15, [False, True, True])):
        model = _relu_only()
        with DeadUnitMonitor(model, tau=tau) as monitor:
            model(out[:1])
            model(out[1:])
            torch.testing.assert_close(
                monitor.dormancy_scores()["0"], torch.tensor([1 / 0.35, 1 / 7, 0.0], dtype=torch.float64)
            )
            assert monitor.dormant_masks()["0"].tolist() == dormant
            assert monitor.dead_masks()["0"].tolist() == [False, False, True]


def _numpy_scores(batches, unit_dim):
    """The ReDo scores from Definition 3.1, in float64 numpy, from all batches at once."""
    h = np.maximum(np.concatenate([b.double().numpy() for b in batches]), 0.0)
    h = np.moveaxis(h, unit_dim, -1).reshape(-1, h.shape[unit_dim])  # (samples x positions, units)
    means = np.abs(h).mean(axis=0)
    return means / means.mean(), (h > 0).any(axis=0)


def _random_batches(shape, unit_dim, dtype, seed, count=4):
    """Units on very different scales (log-uniform over 1e-3 .. 10) and shifts, so that some are
    dead, some dormant and most neither."""
    gen = torch.Generator().manual_seed(seed)
    units = shape[unit_dim]
    view = [1] * len(shape)
    view[unit_dim] = units
    scale = (10 ** (torch.rand(units, generator=gen) * 4 - 3)).view(view)
    shift = torch.where(torch.rand(units, generator=gen) < 0.2, -50.0, -0.5).view(view)
    sizes = [shape[0] + k for k in range(count)]  # batches of different sizes
    return [
        ((torch.randn((n,) + tuple(shape[1:]), generator=gen) + 1 + shift) * scale).to(dtype) for n in sizes
    ]


@pytest.mark.parametrize(
    "shape, unit_dim, dtype",
    [
        ((7, 40), 1, torch.float32),
        ((7, 40), -1, torch.float64),
        ((7, 40), 1, torch.float16),
        ((5, 12, 4, 3), 1, torch.float32),  # conv feature maps: the unit is the channel
        ((5, 6, 24), -1, torch.float32),  # (batch, tokens, features)
    ],
)
@pytest.mark.parametrize("tau", [0.1, 0.3])
def test_dormant_matches_numpy_over_several_batches(shape, unit_dim, dtype, tau):
    batches = _random_batches(shape, unit_dim, dtype, seed=hash((shape, unit_dim, tau)) % 1000)
    want_scores, want_active = _numpy_scores(batches, unit_dim)
    # No score is within 1e-4 (relative) of tau, so float32 partial sums cannot flip a unit.
    assert np.all(np.abs(want_scores - tau) > 1e-4 * tau), "regenerate: a score ties with tau"
    model = _relu_only()
    with DeadUnitMonitor(model, tau=tau, unit_dim=unit_dim) as monitor:
        for batch in batches:
            model(batch)
        scores = monitor.dormancy_scores()["0"]
        res = monitor.results()["0"]
        np.testing.assert_allclose(scores.numpy(), want_scores, rtol=1e-6, atol=1e-12)
        assert monitor.dormant_masks()["0"].numpy().tolist() == (want_scores <= tau).tolist()
        assert monitor.dead_masks()["0"].numpy().tolist() == (~want_active).tolist()
    want_dormant, want_dead = int((want_scores <= tau).sum()), int((~want_active).sum())
    assert 0 < want_dead < want_dormant < shape[unit_dim], (
        "the data should have dead, dormant and other units"
    )
    assert (res.units, res.dead, res.dormant) == (shape[unit_dim], want_dead, want_dormant)
    assert res.samples == sum(b.shape[0] for b in batches)


def test_reset_forgets_the_dormancy_sums():
    model = _relu_only()
    with DeadUnitMonitor(model) as monitor:
        model(torch.tensor([[100.0, 0.01]]))
        monitor.reset()
        assert monitor.dormancy_scores() == {} and monitor.results().dormant == 0
        model(HAND_ROWS)
        assert monitor.dormancy_scores()["0"].tolist() == HAND_SCORES


def test_unit_dim_last_and_bad_unit_dim():
    """(batch, tokens, features) with unit_dim=-1: the unit is the feature, whatever the number of
    tokens in each batch."""
    model = _relu_only()
    with DeadUnitMonitor(model, unit_dim=-1) as monitor:
        model(HAND_ROWS.view(2, 2, 6))
        model(HAND_ROWS[:3].view(1, 3, 6))
        model(HAND_ROWS[3:].view(1, 1, 6))
        assert monitor.results()["0"].samples == 4
        sums = (HAND_ROWS.relu().sum(0) + HAND_ROWS[:3].relu().sum(0) + HAND_ROWS[3:].relu().sum(0)).double()
        torch.testing.assert_close(monitor.dormancy_scores()["0"], sums / sums.mean())
    with (
        DeadUnitMonitor(model, unit_dim=2) as monitor,
        pytest.raises(RuntimeError, match="no unit dimension 2"),
    ):
        model(HAND_ROWS)
    with pytest.raises(ValueError, match="unit_dim must be a nonzero int"):
        DeadUnitMonitor(model, unit_dim=0)
    with pytest.raises(TypeError, match="unit_dim must be an int"):
        DeadUnitMonitor(model, unit_dim=1.0)


@pytest.mark.parametrize("tau", [-0.1, float("nan"), float("inf")])
def test_bad_tau_values(tau):
    with pytest.raises(ValueError, match=r"tau must be a finite number >= 0 \(default 0.1\), got"):
        DeadUnitMonitor(_relu_only(), tau=tau)


@pytest.mark.parametrize("tau", ["0.1", True, None])
def test_bad_tau_types(tau):
    with pytest.raises(TypeError, match="tau must be a number"):
        DeadUnitMonitor(_relu_only(), tau=tau)


def test_tau_accepts_ints_and_numpy_floats():
    assert DeadUnitMonitor(_relu_only(), tau=0).tau == 0.0
    assert DeadUnitMonitor(_relu_only(), tau=np.float32(0.25)).tau == 0.25


# -- counts of several processes (torch.distributed) ---------------------------------------------
def _rank_worker(rank, world_size, init_file, out_dir):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        model = known_mlp()
        monitor = DeadUnitMonitor(model)
        # Rank 0 sees rows 0-1 and rank 1 rows 2-3 of the hand case, plus the mlp's inputs split.
        model[1](HAND_ROWS[2 * rank : 2 * rank + 2, :4])
        model(positive_inputs(16)[8 * rank : 8 * rank + 8])
        res = monitor.results(all_ranks=True)
        torch.save(res.as_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(sys.platform == "win32", reason="gloo with a file store on POSIX here")
def test_results_all_ranks_combine_the_counts_of_every_rank(tmp_path):
    """Two gloo processes that each see half of the data give, on both ranks, the results of one
    process that sees all of it; without a process group, all_ranks=True is the local count."""
    import torch.multiprocessing as mp

    # fork: the children inherit the imported torch and torch_sugar (spawn re-imports them, ~10 s here)
    mp.start_processes(
        _rank_worker,
        args=(2, str(tmp_path / "init"), str(tmp_path)),
        nprocs=2,
        join=True,
        start_method="fork",
    )
    model = known_mlp()
    with DeadUnitMonitor(model) as monitor:
        model[1](HAND_ROWS[:, :4])
        model(positive_inputs(16))
        assert monitor.results(all_ranks=True) == monitor.results()
        want = monitor.results().as_dict()
    for rank in range(2):
        got = torch.load(tmp_path / f"rank{rank}.pt")
        assert got["layers"].keys() == want["layers"].keys()
        for name in want["layers"]:
            assert got["layers"][name] == pytest.approx(want["layers"][name]), (rank, name)
        assert got["dormant"] == want["dormant"] and got["dead"] == want["dead"]


def test_counts_begun_under_inference_mode_continue_outside_it():
    """Lightning validates under torch.inference_mode; counts begun there are tensors that cannot be
    updated in place outside it (the monitor used to raise on the next batch)."""
    model = _relu_only()
    with DeadUnitMonitor(model) as monitor:
        with torch.inference_mode():
            model(HAND_ROWS[:2])
        model(HAND_ROWS[2:])
        assert monitor.dormancy_scores()["0"].tolist() == HAND_SCORES
        assert monitor.dead_masks()["0"].nonzero().flatten().tolist() == [0]
