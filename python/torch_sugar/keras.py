"""SUGAR as a Keras 3 layer: ``torch_sugar.keras.SugarReLU``.

    import os; os.environ["KERAS_BACKEND"] = "torch"   # before keras is first imported
    import keras
    from torch_sugar.keras import SugarReLU

    model = keras.Sequential([keras.layers.Dense(64), SugarReLU("bsilu", alpha=1.67), keras.layers.Dense(1)])

Importing this module imports keras (``import torch_sugar`` alone never does).

- On the **torch** backend the layer calls the op ``torch.ops.sugar.relu``: the C++ kernels and
  the op's own autograd (only ``x`` saved), and under ``model.compile(jit_compile=True)``, which
  Keras runs as ``torch.compile``, inductor fuses the op's decomposition into its kernels. (Keras's
  default on this backend, ``jit_compile="auto"``, is eager.)
- On the **jax** and **tensorflow** backends, which cannot call a torch op, the layer computes the
  same thing with ``keras.ops``: ``keras.ops.relu`` forward and a ``keras.ops.custom_gradient``
  whose backward is ``upstream * s'(x)`` from the surrogates' formulas (the README's table, in
  stable forms; first order; half types in float32, rounded once). So a model saved on the torch
  backend loads, predicts and trains on the others. torch-sugar still needs torch there: the
  surrogate names, default alphas and the argument checks are the op library's.

The layer is registered with Keras's serialization (``"torch_sugar>SugarReLU"``): ``model.save``
writes it into a ``.keras`` file and ``keras.saving.load_model`` rebuilds it in any process that
has imported ``torch_sugar.keras``.
"""

import math
from typing import Optional

try:
    import keras
except ImportError as exc:
    raise ImportError(
        f"torch_sugar.keras needs Keras 3 ({exc}); install it with pip install 'torch-sugar[keras]'"
    ) from exc
if int(keras.__version__.split(".")[0]) < 3:
    raise ImportError(
        f"torch_sugar.keras needs Keras 3, but keras {keras.__version__} is installed; "
        "install it with pip install 'torch-sugar[keras]'"
    )

from keras import ops  # noqa: E402

from . import _decomp  # noqa: E402
from ._ops import relu as _torch_sugar_relu  # noqa: E402
from ._ops import validate  # noqa: E402

__all__ = ["SugarReLU"]


@keras.saving.register_keras_serializable(package="torch_sugar")
class SugarReLU(keras.layers.Layer):
    """ReLU in the forward pass, the derivative of a smooth surrogate in the backward pass.

    A drop-in for ``keras.layers.ReLU()``; the Keras twin of ``torch_sugar.SugarReLU``.

    Args:
        surrogate: surrogate name, see :func:`torch_sugar.surrogates` (default "bsilu").
        alpha: the surrogate's parameter, None for its default.
        negative_only: apply the surrogate only where x <= 0 (the exact gradient 1 where x > 0).
        **kwargs: Keras layer arguments (``name``, ``dtype``, ...).

    The seed article's TF2 layer ``BSiLU_SUGAR(alpha=1.67)`` is ``SugarReLU("bsilu", alpha=1.67)``.
    """

    def __init__(
        self, surrogate: str = "bsilu", alpha: Optional[float] = None, negative_only: bool = False, **kwargs
    ):
        validate(surrogate, alpha, negative_only, fn="torch_sugar.keras.SugarReLU")
        super().__init__(**kwargs)
        self.surrogate = surrogate
        self.alpha = None if alpha is None else float(alpha)
        self.negative_only = negative_only
        self.supports_masking = True
        self.built = True  # no weights to create

    def call(self, inputs):
        if keras.backend.backend() == "torch":
            return _torch_sugar_relu(inputs, self.surrogate, self.alpha, self.negative_only)
        return _portable_relu(inputs, self.surrogate, self.alpha, self.negative_only)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        config = super().get_config()
        config.update({"surrogate": self.surrogate, "alpha": self.alpha, "negative_only": self.negative_only})
        return config


# ---- the portable path (jax, tensorflow): keras.ops, a custom gradient -------------------------


def _portable_relu(x, surrogate: str = "bsilu", alpha: Optional[float] = None, negative_only: bool = False):
    """``keras.ops.relu(x)`` forward, ``upstream * s'(x)`` backward, on any Keras backend.

    Arguments as :class:`SugarReLU`'s (checked by the caller). The layer uses it on backends
    other than torch; on torch it is what the op computes, without the op's kernels."""
    dtype = keras.backend.standardize_dtype(x.dtype)
    if dtype not in _FLOAT_DTYPES:
        raise TypeError(
            f"torch_sugar.keras.SugarReLU: inputs must be a floating-point tensor of dtype "
            f"{', '.join(_FLOAT_DTYPES[:-1])} or {_FLOAT_DTYPES[-1]}, but got dtype {dtype}"
        )
    kind, a = _decomp.resolve(surrogate, alpha)

    @ops.custom_gradient
    def sugar_relu(x):
        def grad(*args, upstream=None):
            if upstream is None:  # jax and tensorflow pass it positionally, torch by keyword
                (upstream,) = args
            return _portable_input_grad(upstream, x, kind, a, negative_only)

        return ops.relu(x), grad

    return sugar_relu(x)


_FLOAT_DTYPES = ("float16", "bfloat16", "float32", "float64")  # the op's, as DESIGN.md lists them


def _portable_input_grad(upstream, x, kind: str, a: float, negative_only: bool):
    """``upstream * d(x)``, d = s' (1 where x > 0 with negative_only), in x's dtype.

    ``kind`` is a canonical surrogate name and ``a`` its alpha (0.0 if it takes none), as
    ``torch_sugar._decomp.resolve`` gives them."""
    if kind == "relu":  # ReLU's own gradient: a select, 0 where x <= 0 whatever the upstream
        return ops.where(x <= 0, ops.zeros_like(upstream), upstream)
    dtype = keras.backend.standardize_dtype(x.dtype)
    compute = "float32" if dtype in ("float16", "bfloat16") else dtype
    xc, gc = ops.cast(x, compute), ops.cast(upstream, compute)
    scaled = gc * _SURROGATE_GRADS[kind](xc, a)
    if negative_only:
        scaled = ops.where(xc > 0, gc, scaled)
    return ops.cast(scaled, dtype)


SELU_LAMBDA = _decomp.SELU_LAMBDA
SELU_ALPHA = _decomp.SELU_ALPHA
_SQRT_HALF = math.sqrt(0.5)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_TANH_COEF = 0.044715


# d(x) = s'(x) of each surrogate, as DESIGN.md's table gives it, in numerically stable forms:
# sigmoid(-x) instead of 1 - sigmoid(x), exp(-|x|) for exp(x) where x <= 0, erfc for the normal cdf, and no
# inf * 0 for any finite x. (x <= 0 is the second branch of the piecewise rows.) Constants that
# meet x in ops.where/ops.minimum are tensors of x's dtype: keras.ops turns a bare Python float
# there into a float32 tensor, which would round alpha (and the result) to float32.


def _exp_of_negative_part(x):
    # exp(x) where x <= 0 (the only branch that reads it), never inf. Not ops.minimum(x, 0):
    # on the torch backend that returns float32 even for two float64 tensors (keras 3.15).
    return ops.exp(-ops.abs(x))


def _bsilu_grad(x, a):
    sig, sig_neg = ops.sigmoid(x), ops.sigmoid(-x)
    return sig + (x + a) * (sig * sig_neg)


def _nelu_grad(x, a):
    u = 1.0 / (1.0 + x * x)
    return ops.where(x > 0, ops.ones_like(x), 2.0 * a * (x * u) * u)


def _elu_grad(x, a):
    return ops.where(x > 0, ops.ones_like(x), a * _exp_of_negative_part(x))


def _selu_grad(x, a):
    return ops.where(
        x > 0, ops.full_like(x, SELU_LAMBDA), (SELU_LAMBDA * SELU_ALPHA) * _exp_of_negative_part(x)
    )


def _leaky_relu_grad(x, a):
    return ops.where(x > 0, ops.ones_like(x), ops.full_like(x, a))


def _gelu_grad(x, a):
    return 0.5 * ops.erfc(-x * _SQRT_HALF) + x * (_INV_SQRT_2PI * ops.exp(-0.5 * x * x))


def _gelu_tanh_grad(x, a):
    # 0.5 (1 + tanh u) = sigmoid(2u) and 0.5 x (1 - tanh^2 u) u' = 2 x sigmoid(2u) sigmoid(-2u) u'.
    # Past |x| = 50, d is 1[x > 0] to every float's precision, and u, u' would overflow.
    far = ops.abs(x) > 50.0
    xn = ops.where(far, ops.zeros_like(x), x)
    u = _SQRT_2_OVER_PI * (xn + _GELU_TANH_COEF * xn * xn * xn)
    du = _SQRT_2_OVER_PI * (1.0 + 3.0 * _GELU_TANH_COEF * xn * xn)
    sig, sig_neg = ops.sigmoid(2.0 * u), ops.sigmoid(-2.0 * u)
    return ops.where(far, ops.cast(x > 0, x.dtype), sig + 2.0 * xn * (sig * sig_neg) * du)


def _mish_grad(x, a):
    # t = tanh(softplus(x)) and 1 - t^2 through q = exp(-2 softplus(x)) = sigmoid(-x)^2, so that
    # neither cancels: t = (1 - q) / (1 + q) = sigmoid(x) (1 + sigmoid(-x)) / (1 + q), and
    # 1 - t^2 = 4q / (1 + q)^2. (tanh near 1 would leave 1 - t^2 with a few ulp of 1 as error.)
    sig, sig_neg = ops.sigmoid(x), ops.sigmoid(-x)
    one_q = 1.0 + sig_neg * sig_neg
    t = sig * (1.0 + sig_neg) / one_q
    sech2 = 4.0 * (sig_neg * sig_neg) / (one_q * one_q)
    return t + x * sech2 * sig


# canonical surrogate name -> d(x, alpha); "relu" is handled as a select above.
_SURROGATE_GRADS = {
    "bsilu": _bsilu_grad,
    "silu": lambda x, a: _bsilu_grad(x, 0.0),
    "nelu": _nelu_grad,
    "elu": _elu_grad,
    "selu": _selu_grad,
    "leaky_relu": _leaky_relu_grad,
    "gelu": _gelu_grad,
    "gelu_tanh": _gelu_tanh_grad,
    "mish": _mish_grad,
}
