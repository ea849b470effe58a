"""The experiment tool's metric functions and activation parsing, against hand-computed values."""

import math

import numpy as np
import pytest
import torch

import torch_sugar
from torch_sugar.experiments import UsageError
from torch_sugar.experiments.activations import SMOOTH_FUNCTIONS, SmoothActivation, parse_activations
from torch_sugar.experiments.metrics import auc, classification_metrics, paired_test, pr_auc, uauc


def auc_by_pairs(y, s):
    """AUC by counting every (positive, negative) pair: 1 if the positive scores higher, 1/2 on a tie."""
    pos = [si for yi, si in zip(y, s) if yi == 1]
    neg = [si for yi, si in zip(y, s) if yi == 0]
    if not pos or not neg:
        return None
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


# A tiny click table: group, label, score.
#   u1: positive 0.9 vs negatives 0.3 (win), 0.95 (loss)               -> AUC 1/2
#   u2: positives 0.4, 0.2 vs negatives 0.2, 0.1: 0.4>0.2, 0.4>0.1,
#       0.2=0.2 (tie, 1/2), 0.2>0.1                                    -> AUC 3.5/4 = 0.875
#   u3: positives only, u4: negatives only                             -> left out
#   uAUC = (0.5 + 0.875) / 2 = 0.6875
TABLE = [
    ("u1", 1, 0.9),
    ("u1", 0, 0.3),
    ("u1", 0, 0.95),
    ("u2", 0, 0.2),
    ("u2", 1, 0.4),
    ("u2", 1, 0.2),
    ("u2", 0, 0.1),
    ("u3", 1, 0.5),
    ("u3", 1, 0.7),
    ("u4", 0, 0.6),
]


def test_uauc_on_hand_table():
    groups, y, s = (np.array(col) for col in zip(*TABLE))
    value, n_groups = uauc(y, s, groups)
    assert n_groups == 2
    assert value == pytest.approx(0.6875, abs=1e-12)
    per_group = [auc_by_pairs(y[groups == g], s[groups == g]) for g in ("u1", "u2")]
    assert per_group == [0.5, 0.875]


def test_uauc_integer_groups_and_no_usable_group():
    y = np.array([1, 0, 1, 0])
    s = np.array([0.1, 0.2, 0.3, 0.4])
    assert uauc(y, s, np.array([7, 7, 8, 8])) == (0.0, 2)
    assert uauc(y, s, np.array([1, 2, 3, 4])) == (None, 0)


def test_auc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(3)
    for _ in range(20):
        n = int(rng.integers(2, 40))
        y = rng.integers(0, 2, n)
        s = rng.integers(0, 5, n) / 4.0  # many ties
        expected = auc_by_pairs(y, s)
        got = auc(y, s)
        assert (got is None) == (expected is None)
        if expected is not None:
            assert got == pytest.approx(expected, abs=1e-12)
    assert auc([1, 1], [0.1, 0.2]) is None


def test_pr_auc_by_hand():
    # ranked by score: 0.9 (pos), 0.8 (neg), 0.7 (pos), 0.1 (neg); precision at each positive:
    # 1/1 and 2/3; average precision = (1 + 2/3) / 2
    assert pr_auc([1, 0, 1, 0], [0.9, 0.8, 0.7, 0.1]) == pytest.approx((1 + 2 / 3) / 2, abs=1e-12)
    assert pr_auc([0, 0], [0.1, 0.2]) is None  # no positives
    assert pr_auc([1, 1], [0.1, 0.2]) == pytest.approx(1.0)


def test_weighted_loss_matches_torch_cross_entropy():
    rng = np.random.default_rng(0)
    logits = torch.tensor(rng.normal(size=(50, 2)))
    y = torch.tensor(rng.integers(0, 2, 50))
    weight = torch.tensor([1.0, 7.5], dtype=torch.float64)
    m = classification_metrics(y.numpy(), torch.log_softmax(logits, 1).numpy(), class_weight=weight.numpy())
    assert m["weighted_loss"] == pytest.approx(
        float(torch.nn.functional.cross_entropy(logits, y, weight=weight)), abs=1e-12
    )
    assert m["loss"] == pytest.approx(float(torch.nn.functional.cross_entropy(logits, y)), abs=1e-12)


def test_classification_metrics():
    probs = np.array([[0.8, 0.2], [0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])
    y = np.array([0, 1, 1, 1])
    m = classification_metrics(y, np.log(probs), groups=np.array(["a", "a", "b", "b"]))
    assert m["loss"] == pytest.approx(-(math.log(0.8) + math.log(0.7) + math.log(0.4) + math.log(0.9)) / 4)
    assert m["accuracy"] == pytest.approx(0.75)
    assert m["auc"] == pytest.approx(1.0)  # the one negative (0.2) is below every positive
    assert m["pr_auc"] == pytest.approx(1.0)
    assert m["uauc"] == pytest.approx(1.0) and m["uauc_groups"] == 1  # group b has no negative
    m3 = classification_metrics(np.array([2, 0]), np.log(np.array([[0.2, 0.3, 0.5], [0.1, 0.6, 0.3]])))
    assert m3["accuracy"] == 0.5 and m3["auc"] is None and m3["uauc"] is None


def test_paired_test_by_hand():
    a = [0.50, 0.60, 0.55, 0.70]
    b = [0.52, 0.65, 0.56, 0.74]
    d = np.array(b) - np.array(a)  # 0.02, 0.05, 0.01, 0.04
    t = d.mean() / (d.std(ddof=1) / 2)
    out = paired_test(a, b)
    assert out["n"] == 4
    assert out["diff_mean"] == pytest.approx(0.03)
    assert out["t"] == pytest.approx(t)
    # the two-sided p of Student's t with 3 degrees of freedom, from its closed form:
    # P(|T| >= t) = 1 - (2/pi) (theta + sin(theta) cos(theta)), theta = atan(t / sqrt(3))
    theta = math.atan(t / math.sqrt(3))
    p = 1 - 2 / math.pi * (theta + math.sin(theta) * math.cos(theta))
    assert out["p"] == pytest.approx(p, abs=1e-9)
    assert paired_test([1.0], [2.0])["p"] is None  # one pair: no test
    assert paired_test([1.0, 2.0], [2.0, 3.0])["p"] is None  # identical differences: no spread
    # the same difference up to rounding ((0.9445 + 0.00025) - 0.9445 and (0.1 + 0.00025) - 0.1
    # differ by 2e-17) is no spread either, not p = 0
    a, b = [0.9445, 0.1], [0.9445 + 0.00025, 0.1 + 0.00025]
    assert 0 < np.std(np.subtract(b, a), ddof=1) < 1e-15
    assert paired_test(a, b)["p"] is None


def test_parse_activations():
    specs = parse_activations("relu, bsilu,nelu:0.05,nelu-neg,bsilu:1.5-neg,plain:gelu,plain:elu:0.5")
    assert [s.label for s in specs] == [
        "relu",
        "bsilu",
        "nelu:0.05",
        "nelu-neg",
        "bsilu-neg:1.5",
        "plain:gelu",
        "plain:elu:0.5",
    ]
    assert [s.kind for s in specs] == ["relu", "sugar", "sugar", "sugar", "sugar", "plain", "plain"]
    assert specs[4].negative_only and specs[4].alpha == 1.5
    assert parse_activations("elu", negative_only=True)[0].label == "elu-neg"


@pytest.mark.parametrize(
    "text, match",
    [
        ("relu,foo", r"unknown activation 'foo'; valid names: relu, .*bsilu"),
        ("plain:foo", r"unknown smooth function in 'plain:foo'"),
        ("bsilu:abc", r"alpha in 'bsilu:abc' must be a number"),
        ("gelu:0.5", r"'gelu:0.5' is not valid"),
        ("relu,bsilu,bsilu", r"'bsilu' is listed twice"),
        ("relu-neg", r"unknown activation 'relu-neg'"),
        ("", r"empty name"),
    ],
)
def test_parse_activation_errors(text, match):
    with pytest.raises(UsageError, match=match):
        parse_activations(text)


def test_convert_spec_puts_the_right_modules_in():
    model = torch.nn.Sequential(
        torch.nn.Linear(2, 3), torch.nn.ReLU(), torch.nn.Linear(3, 3), torch.nn.ReLU()
    )
    relu, sugar, plain = parse_activations("relu,nelu-neg:0.05,plain:mish")
    assert relu.apply(model) is model and isinstance(model[1], torch.nn.ReLU)
    sugar.apply(model)
    assert isinstance(model[3], torch_sugar.SugarReLU)
    assert (model[3].surrogate, model[3].alpha, model[3].negative_only) == ("nelu", 0.05, True)
    model = plain.apply(torch.nn.Sequential(torch.nn.ReLU()))
    assert isinstance(model[0], SmoothActivation) and model[0].name == "mish"


@pytest.mark.parametrize("name", sorted(SMOOTH_FUNCTIONS))
def test_plain_function_derivative_is_the_ops_surrogate_derivative(name):
    """Two independent derivations must agree: autograd through the Python s(x) used by
    plain:NAME, and the hand-written d(x) of the C++ op (relu_backward with grad 1)."""
    x = torch.linspace(-6, 6, 241, dtype=torch.float64)
    x = x[x != 0]  # piecewise surrogates have a kink at 0
    xr = x.clone().requires_grad_(True)
    SmoothActivation(name)(xr).sum().backward()
    d = torch_sugar.relu_backward(torch.ones_like(x), x, name)
    torch.testing.assert_close(xr.grad, d, rtol=1e-7, atol=1e-9)
