"""Independent float64 reference for the SUGAR ops, transcribed from the table in DESIGN.md.

Nothing here is shared with the C++ code: the formulas are written as the table states them, in
NumPy float64 (with SciPy's expit/ndtr for a stable sigmoid and normal cdf). test_reference.py in
turn checks every d(x) and s''(x) here against high-precision numerical derivatives of s(x), so
the chain is: s(x) from the table -> this reference -> the ops.
"""

import math

import numpy as np
from scipy.special import expit, ndtr

SELU_LAMBDA = 1.0507009873554805
SELU_ALPHA = 1.6732632423543772

# name -> default alpha (None: takes no alpha), as DESIGN.md's table gives them.
DEFAULT_ALPHA = {
    "relu": None,
    "bsilu": 1.67,
    "nelu": 0.01,
    "elu": 1.0,
    "selu": None,
    "leaky_relu": 0.01,
    "gelu": None,
    "gelu_tanh": None,
    "silu": None,
    "swish": None,
    "mish": None,
}
SURROGATES = list(DEFAULT_ALPHA)
# Every distinct surrogate once (no aliases): what tests parametrize over.
CANONICAL_SURROGATES = [s for s in SURROGATES if s != "swish"]
# Surrogates that take an alpha.
ALPHA_SURROGATES = [s for s in SURROGATES if DEFAULT_ALPHA[s] is not None]
# The dtypes the ops accept, by name (torch.<name>).
DTYPE_NAMES = ["float32", "float64", "float16", "bfloat16"]
# Tolerances (rtol, atol) of a backward against this float64 reference, by dtype name. Half types
# are computed in float32 and rounded once, so they are within about one unit in the last place.
TOLERANCES = {
    "float64": (1e-12, 1e-14),
    "float32": (2e-6, 1e-7),
    "float16": (2e-3, 1e-5),
    "bfloat16": (1.6e-2, 1e-5),
}
# Inputs that probe the kinks, huge and tiny magnitudes (every sample set starts with them).
SPECIAL_X = [
    0.0,
    -0.0,
    1e-4,
    -1e-4,
    20.0,
    -20.0,
    60.0,
    -60.0,
    1.0,
    -1.0,
    0.5,
    -0.5,
    3.0,
    -3.0,
    7.5,
    -7.5,
    1e-30,
    -1e-30,
    150.0,
    -150.0,
]
# Surrogates whose d(x) jumps at x = 0 (finite differences must stay away from 0 for them).
KINKED = {"relu", "nelu", "elu", "selu", "leaky_relu"}


def bits(t):
    """The raw bits of a tensor as integers, so comparisons see NaN payloads and the sign of zero."""
    import torch

    t = t.contiguous().view(-1)
    return t.view({2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def _phi(x):
    return np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def d_and_d2(name, x, alpha=None):
    """(d(x), s''(x)) in float64 for surrogate `name` over the whole domain."""
    x = np.asarray(x, dtype=np.float64)
    a = DEFAULT_ALPHA[name] if alpha is None else alpha
    pos = x > 0
    if name == "relu":
        return pos.astype(np.float64), np.zeros_like(x)
    if name in ("bsilu", "silu", "swish"):
        a = 0.0 if name != "bsilu" else a
        sig, sig_n = expit(x), expit(-x)  # sigma and 1 - sigma
        d = sig + (x + a) * sig * sig_n
        d2 = sig * sig_n * (2 + (x + a) * (sig_n - sig))
        return d, d2
    if name == "nelu":
        d = np.where(pos, 1.0, 2 * a * x / (1 + x * x) ** 2)
        d2 = np.where(pos, 0.0, 2 * a * (1 - 3 * x * x) / (1 + x * x) ** 3)
        return d, d2
    if name == "elu":
        e = np.exp(np.minimum(x, 0.0))
        return np.where(pos, 1.0, a * e), np.where(pos, 0.0, a * e)
    if name == "selu":
        e = np.exp(np.minimum(x, 0.0))
        return (
            np.where(pos, SELU_LAMBDA, SELU_LAMBDA * SELU_ALPHA * e),
            np.where(pos, 0.0, SELU_LAMBDA * SELU_ALPHA * e),
        )
    if name == "leaky_relu":
        return np.where(pos, 1.0, a), np.zeros_like(x)
    if name == "gelu":
        return ndtr(x) + x * _phi(x), _phi(x) * (2 - x * x)
    if name == "gelu_tanh":
        k, c = math.sqrt(2 / math.pi), 0.044715
        u = k * (x + c * x**3)
        du = k * (1 + 3 * c * x * x)
        d2u = 6 * k * c * x
        t = np.tanh(u)
        sech2 = 1 / np.cosh(np.minimum(np.abs(u), 300)) ** 2  # = 1 - t^2 without cancellation (0 past 300)
        # 0.5 (1 + tanh u) = sigmoid(2u): no cancellation for x << 0, where 1 + tanh u rounds to 0.
        d = expit(2 * u) + 0.5 * x * sech2 * du
        d2 = sech2 * du + 0.5 * x * (sech2 * d2u - 2 * t * sech2 * du * du)
        return d, d2
    if name == "mish":
        sp = np.logaddexp(0.0, x)
        t = np.tanh(sp)
        sech2 = 1 / np.cosh(np.minimum(sp, 300)) ** 2  # = 1 - t^2 without cancellation (0 past 300)
        sig = expit(x)
        d = t + x * sech2 * sig
        d2 = sech2 * sig * (2 + x * (expit(-x) - 2 * t * sig))
        return d, d2
    raise KeyError(name)


def grad_input(name, grad, x, alpha=None, negative_only=False):
    """Reference for relu_backward: grad * d(x) (d = 1 where x > 0 with negative_only)."""
    x = np.asarray(x, dtype=np.float64)
    grad = np.asarray(grad, dtype=np.float64)
    if name == "relu":  # torch.relu's threshold_backward: a select, 0 where x <= 0
        return np.where(x <= 0, 0.0, grad)
    d, _ = d_and_d2(name, x, alpha)
    if negative_only:
        return np.where(x > 0, grad, grad * d)
    return grad * d


def grad_self_second(name, grad_grad, grad, x, alpha=None, negative_only=False):
    """Reference for d(grad_input)/dx contracted with grad_grad: grad_grad * grad * s''(x)."""
    x = np.asarray(x, dtype=np.float64)
    _, d2 = d_and_d2(name, x, alpha)
    if negative_only:
        d2 = np.where(x > 0, 0.0, d2)
    return np.asarray(grad_grad, np.float64) * np.asarray(grad, np.float64) * d2


def surrogate_value(name, x, alpha=None):
    """s(x) from the table, for mpmath numbers (used to check d and s'' numerically)."""
    import mpmath as mp

    a = DEFAULT_ALPHA[name] if alpha is None else alpha
    sig = 1 / (1 + mp.e ** (-x))
    if name == "bsilu":
        return (x + a) * sig - a / 2
    if name in ("silu", "swish"):
        return x * sig
    if name == "nelu":
        return x if x > 0 else -a / (1 + x * x)
    if name == "elu":
        return x if x > 0 else a * (mp.e**x - 1)
    if name == "selu":
        return SELU_LAMBDA * x if x > 0 else SELU_LAMBDA * SELU_ALPHA * (mp.e**x - 1)
    if name == "leaky_relu":
        return x if x > 0 else a * x
    if name == "gelu":
        return x * mp.ncdf(x)
    if name == "gelu_tanh":
        return 0.5 * x * (1 + mp.tanh(mp.sqrt(2 / mp.pi) * (x + mp.mpf("0.044715") * x**3)))
    if name == "mish":
        return x * mp.tanh(mp.log(1 + mp.e**x))
    if name == "relu":
        return x if x > 0 else mp.mpf(0)
    raise KeyError(name)


def fgi_bsilu(x, alpha=1.67):
    """The seed article's Keras BSiLU_SUGAR layer, in PyTorch: h = x*sg(g'(x));
    y = h - sg(h) + sg(relu(x))."""
    import torch

    sig = torch.sigmoid(x)
    gx = sig + (x + alpha) * sig * (1 - sig)
    m = x * gx.detach()
    return m - m.detach() + torch.relu(x).detach()
