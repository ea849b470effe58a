"""torch_sugar.DeadUnitMonitor on networks whose dead units are known by construction."""

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
    assert d["layers"]["3"] == {"units": 3, "dead": 2, "fraction": pytest.approx(2 / 3), "samples": 16}


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
