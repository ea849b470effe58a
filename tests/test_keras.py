"""torch_sugar.keras.SugarReLU, the Keras 3 layer, on the torch backend and (in a second process)
on the jax backend.

Keras fixes its backend when it is first imported (KERAS_BACKEND), so this file imports keras
itself with the backend named by SUGAR_KERAS_TEST_BACKEND (default "torch"), leaving KERAS_BACKEND
as it was for every other test. The tests marked ``on_every_backend`` run unchanged on each
backend: test_the_jax_backend_passes_the_same_tests runs this file again under pytest with the jax
backend (where the layer is keras.ops code with a custom gradient) and requires each of them to
pass there, together with loading a .keras file saved here on torch. By hand, the same file runs on
tensorflow too: SUGAR_KERAS_TEST_BACKEND=tensorflow pytest tests/test_keras.py (with
SUGAR_KERAS_TEST_SAVED_ON_TORCH=DIR, a directory holding the torch run's model.keras and
predictions.npz, it loads that file as well). The whole file is skipped where keras is not
installed (pip install 'torch-sugar[keras]').
"""

import importlib.util
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ElementTree
import zipfile

import numpy as np
import pytest

from reference import SPECIAL_X, SURROGATES, TOLERANCES, bits, grad_input

BACKEND = os.environ.get("SUGAR_KERAS_TEST_BACKEND", "torch")


def import_keras(backend):
    """keras, imported with `backend` (KERAS_BACKEND is restored afterwards)."""
    if importlib.util.find_spec("keras") is None:
        pytest.skip("keras is not installed (pip install 'torch-sugar[keras]')", allow_module_level=True)
    if "keras" not in sys.modules:
        saved = os.environ.get("KERAS_BACKEND")
        os.environ["KERAS_BACKEND"] = backend
        try:
            import keras
        finally:
            if saved is None:
                del os.environ["KERAS_BACKEND"]
            else:
                os.environ["KERAS_BACKEND"] = saved
    import keras

    if keras.backend.backend() != backend:
        raise RuntimeError(
            f"tests/test_keras.py needs keras on the {backend} backend, but keras was imported earlier "
            f"in this process with the {keras.backend.backend()} backend"
        )
    return keras


keras = import_keras(BACKEND)
from keras import ops  # noqa: E402

if BACKEND == "torch":
    import torch
    from test_pt2 import fresh_compile  # noqa: F401 (the fixture: no inductor cache answers)
elif BACKEND == "jax":
    import jax
elif BACKEND == "tensorflow":
    import tensorflow as tf

import torch_sugar.keras  # noqa: E402
from torch_sugar._ops import validate  # noqa: E402
from torch_sugar.keras import SugarReLU  # noqa: E402

# Keras's torch backend calls np.array(tensor), and NumPy 2 warns on each call that torch's
# Tensor.__array__ takes no copy keyword (neither our code nor our call; hundreds of lines).
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation doesn't accept a copy keyword")

# Tests that must pass on every backend; the jax run of this file is checked against this set.
EVERY_BACKEND = set()


def on_every_backend(test):
    EVERY_BACKEND.add(test.__name__)
    return test


torch_backend_only = pytest.mark.skipif(BACKEND != "torch", reason="about the torch backend (the op)")
# float64 needs jax_enable_x64 on jax, which Keras users rarely set: the jax run leaves it out.
DTYPES = (
    ["float32", "float64", "float16", "bfloat16"] if BACKEND != "jax" else ["float32", "float16", "bfloat16"]
)


def tensor(values, dtype):
    return ops.cast(ops.convert_to_tensor(np.asarray(values, np.float64)), dtype)


def to_float64(t):
    """The values of t as float64 NumPy (through float32, which holds every half value exactly)."""
    wide = "float64" if keras.backend.standardize_dtype(t.dtype) == "float64" else "float32"
    return np.asarray(ops.convert_to_numpy(ops.cast(t, wide)), np.float64)


def raw_bits(t):
    """The bits of each element (NaN payloads and the sign of zero included)."""
    if BACKEND == "torch":
        return bits(t.detach()).numpy()
    a = np.asarray(t)
    return a.view(f"u{a.itemsize}")


def output_and_input_grad(fn, x, upstream):
    """fn(x) and the gradient of sum(fn(x) * upstream) with respect to x, on this backend."""
    if BACKEND == "torch":
        x = x.detach().clone().requires_grad_()
        y = fn(x)
        y.backward(upstream)
        return y.detach(), x.grad
    if BACKEND == "jax":
        y, vjp = jax.vjp(fn, x)
        return y, vjp(upstream)[0]
    if BACKEND == "tensorflow":
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = fn(x)
        return y, tape.gradient(y, x, output_gradients=upstream)
    raise NotImplementedError(f"tests/test_keras.py has no gradient helper for the {BACKEND} backend")


def samples(n=2000, seed=0):
    """x: the special values of the reference (kinks, huge and tiny magnitudes) and N(0, 4^2)
    draws; upstream: N(0, 1)."""
    rng = np.random.default_rng(seed)
    x = np.concatenate([SPECIAL_X, rng.standard_normal(n) * 4])
    return x, rng.standard_normal(x.shape)


# ---- the forward pass and the input gradient ----------------------------------------------------


@on_every_backend
@pytest.mark.parametrize("dtype", DTYPES)
def test_forward_is_relu_bit_for_bit(dtype):
    x, _ = samples()
    x = tensor(np.concatenate([x, [np.nan, -np.nan, np.inf, -np.inf]]), dtype)
    for layer in (SugarReLU(dtype=dtype), SugarReLU("nelu", 0.05, True, dtype=dtype)):
        y = layer(x)
        assert y.dtype == x.dtype
        np.testing.assert_array_equal(raw_bits(y), raw_bits(ops.relu(x)))


# (surrogate, alpha): the seed article's bsilu with its alpha and another, a piecewise one, the
# normal cdf, the one with the most cancellation, and the control.
GRAD_CASES = [("bsilu", None), ("bsilu", 0.5), ("nelu", 0.05), ("gelu", None), ("mish", None), ("relu", None)]


@on_every_backend
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("negative_only", [False, True], ids=["full", "negative_only"])
@pytest.mark.parametrize("surrogate,alpha", GRAD_CASES)
def test_input_gradient_is_upstream_times_surrogate_derivative(surrogate, alpha, negative_only, dtype):
    x, upstream = samples()
    x, upstream = tensor(x, dtype), tensor(upstream, dtype)
    layer = SugarReLU(surrogate, alpha, negative_only, dtype=dtype)
    _, grad = output_and_input_grad(layer, x, upstream)
    assert grad.dtype == x.dtype
    want = grad_input(surrogate, to_float64(upstream), to_float64(x), alpha, negative_only)
    rtol, atol = TOLERANCES[dtype]
    np.testing.assert_allclose(to_float64(grad), want, rtol=rtol, atol=atol)


@torch_backend_only
@pytest.mark.parametrize("surrogate,alpha", GRAD_CASES)
def test_torch_backend_calls_the_op(surrogate, alpha):
    """The layer's output comes from sugar::relu's autograd node, and its gradient is the op's,
    bit for bit."""
    x, upstream = (torch.from_numpy(a).float() for a in samples())
    for negative_only in (False, True):
        y, grad = output_and_input_grad(SugarReLU(surrogate, alpha, negative_only), x, upstream)
        x_op = x.clone().requires_grad_()
        y_op = torch.ops.sugar.relu(x_op, surrogate, alpha, negative_only)
        assert y_op.grad_fn.name() == "SugarReluBackward0"
        y_op.backward(upstream)
        np.testing.assert_array_equal(raw_bits(grad), raw_bits(x_op.grad))
        x_layer = x.clone().requires_grad_()
        assert SugarReLU(surrogate, alpha, negative_only)(x_layer).grad_fn.name() == "SugarReluBackward0"


@torch_backend_only
@pytest.mark.parametrize("dtype", DTYPES)
def test_portable_path_matches_the_reference_for_every_surrogate_on_torch_tensors(dtype):
    """The keras.ops code that the jax and tensorflow backends run, here on torch tensors (through
    keras's torch custom_gradient), so the suite checks its math for every surrogate, scope and
    dtype, float64 included, even without jax."""
    x, upstream = samples()
    x, upstream = tensor(x, dtype), tensor(upstream, dtype)
    rtol, atol = TOLERANCES[dtype]
    for surrogate in SURROGATES:
        for negative_only in (False, True):
            y, grad = output_and_input_grad(
                lambda t: torch_sugar.keras._portable_relu(t, surrogate, None, negative_only), x, upstream
            )
            np.testing.assert_array_equal(raw_bits(y), raw_bits(torch.relu(x)))
            want = grad_input(surrogate, to_float64(upstream), to_float64(x), None, negative_only)
            np.testing.assert_allclose(
                to_float64(grad),
                want,
                rtol=rtol,
                atol=atol,
                err_msg=f"{surrogate} negative_only={negative_only}",
            )


# ---- training: model.fit ------------------------------------------------------------------------

FEATURES = 8


def regression_data(rows=256):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((rows, FEATURES)).astype("float32")
    return x, (x @ rng.standard_normal((FEATURES, 1))).astype("float32")


def dead_hidden_layer_model(activation):
    """Dense(16) -> activation -> Dense(1), whose hidden pre-activations start below zero for
    every input (bias -2, weights ~ N(0, 0.1^2)): every hidden ReLU unit is dead."""
    keras.utils.set_random_seed(0)
    inputs = keras.Input((FEATURES,))
    hidden = keras.layers.Dense(
        16,
        kernel_initializer=keras.initializers.RandomNormal(0.0, 0.1, seed=1),
        bias_initializer=keras.initializers.Constant(-2.0),
        name="hidden",
    )(inputs)
    outputs = keras.layers.Dense(1, name="out")(activation(hidden))
    return keras.Model(inputs, outputs)


def hidden_pre_activations(model, x):
    return ops.convert_to_numpy(keras.Model(model.input, model.get_layer("hidden").output)(x))


def fit(model, x, y, epochs=1, batch_size=32, **compile_args):
    model.compile(keras.optimizers.SGD(0.1), "mse", **compile_args)
    return model.fit(x, y, epochs=epochs, batch_size=batch_size, shuffle=False, verbose=0).history["loss"]


@on_every_backend
def test_fit_trains_and_revives_dead_units_where_relu_cannot():
    x, y = regression_data()
    relu_model = dead_hidden_layer_model(keras.layers.ReLU())
    sugar_model = dead_hidden_layer_model(SugarReLU("bsilu"))
    assert (hidden_pre_activations(relu_model, x) <= 0).all(), "the premise: every hidden unit starts dead"
    hidden_before = [ops.convert_to_numpy(w).copy() for w in relu_model.get_layer("hidden").weights]
    sugar_kernel_before = ops.convert_to_numpy(sugar_model.get_layer("hidden").kernel).copy()

    relu_loss = fit(relu_model, x, y, epochs=10)
    sugar_loss = fit(sugar_model, x, y, epochs=10)
    # Keras's default jit_compile="auto" (the README says so): XLA on jax, eager on torch and on
    # tensorflow without a GPU.
    assert sugar_model.jit_compile is (BACKEND == "jax")

    # ReLU: zero gradient into the dead layer, so SGD leaves it exactly as it was.
    for before, after in zip(hidden_before, relu_model.get_layer("hidden").weights):
        np.testing.assert_array_equal(ops.convert_to_numpy(after), before)
    assert (hidden_pre_activations(relu_model, x) <= 0).all()
    # SUGAR: the surrogate's gradient reaches the dead units; some come back and the model learns
    # the linear target that the ReLU model, left with its output bias, cannot.
    kernel_change = np.abs(
        ops.convert_to_numpy(sugar_model.get_layer("hidden").kernel) - sugar_kernel_before
    ).max()
    assert kernel_change > 0.1
    revived = int((hidden_pre_activations(sugar_model, x) > 0).any(axis=0).sum())
    assert revived >= 2, f"only {revived} of 16 hidden units came back"
    assert sugar_loss[-1] < 0.2 * sugar_loss[0], sugar_loss
    assert sugar_loss[-1] < 0.2 * relu_loss[-1], (sugar_loss, relu_loss)


@torch_backend_only
def test_jit_compile_runs_torch_compile_and_inductor_fuses_the_op(fresh_compile):
    """Keras's jit_compile=True on the torch backend is torch.compile (inductor): the op's
    decomposition compiles into generated kernels (no call into the op library), with the
    numbers of the eager run. The default, jit_compile="auto", is eager on this backend. (One
    training step: each compiles for half a minute of CPU.)"""
    from torch._inductor.utils import run_and_get_code

    x, y = regression_data(64)
    eager = dead_hidden_layer_model(SugarReLU("bsilu"))
    eager_loss = fit(eager, x, y, epochs=1, batch_size=64)
    assert eager.jit_compile is False, "keras's default on the torch backend (the README says so)"

    compiled = dead_hidden_layer_model(SugarReLU("bsilu"))
    compiled_loss, codes = run_and_get_code(fit, compiled, x, y, epochs=1, batch_size=64, jit_compile=True)
    assert compiled.jit_compile is True
    assert codes, "torch.compile generated no code"
    code_lines = [line for code in codes for line in code.splitlines() if not line.lstrip().startswith("#")]
    calls = [line for line in code_lines if "sugar" in line]
    assert not calls, f"an extern call to a sugar op survived in the compiled code: {calls[:3]}"
    # The surrogate's exp(-|x|) sits in a generated kernel that inductor fused from the op.
    fused = [code for code in codes if "sugar.relu" in code and "exp" in code]
    assert fused, "no generated kernel holds the op's decomposition"
    np.testing.assert_allclose(compiled_loss, eager_loss, rtol=1e-5)
    for a, b in zip(compiled.weights, eager.weights):
        np.testing.assert_allclose(ops.convert_to_numpy(a), ops.convert_to_numpy(b), rtol=1e-5, atol=1e-6)


# ---- configuration and .keras files -------------------------------------------------------------


@on_every_backend
def test_get_config_and_from_config():
    layer = SugarReLU("nelu", alpha=2, negative_only=True, name="act", dtype="float32")
    config = layer.get_config()
    assert {k: config[k] for k in ("surrogate", "alpha", "negative_only", "name")} == {
        "surrogate": "nelu",
        "alpha": 2.0,
        "negative_only": True,
        "name": "act",
    }
    assert type(config["alpha"]) is float
    again = SugarReLU.from_config(config)
    assert again.get_config() == config
    assert SugarReLU().get_config()["alpha"] is None  # the default stays "the surrogate's default"
    # Registered: Keras's own (de)serialization finds the class by its registered name.
    serialized = keras.saving.serialize_keras_object(layer)
    assert serialized["registered_name"] == "torch_sugar>SugarReLU"
    restored = keras.saving.deserialize_keras_object(serialized)
    assert isinstance(restored, SugarReLU) and restored.get_config() == config


def two_activation_model():
    keras.utils.set_random_seed(0)
    inputs = keras.Input((FEATURES,))
    h = SugarReLU(name="default_act")(keras.layers.Dense(16)(inputs))
    h = SugarReLU("nelu", alpha=0.05, negative_only=True, name="nelu_act")(keras.layers.Dense(16)(h))
    return keras.Model(inputs, keras.layers.Dense(1)(h))


@on_every_backend
def test_keras_file_round_trip(tmp_path):
    x, y = regression_data(64)
    model = two_activation_model()
    fit(model, x, y, epochs=1)
    path = tmp_path / "model.keras"
    model.save(path)
    with zipfile.ZipFile(path) as archive:
        assert '"registered_name": "torch_sugar>SugarReLU"' in archive.read("config.json").decode()

    loaded = keras.saving.load_model(path)
    for name in ("default_act", "nelu_act"):
        assert isinstance(loaded.get_layer(name), SugarReLU)
        assert loaded.get_layer(name).get_config() == model.get_layer(name).get_config()
    xt, upstream = tensor(x, "float32"), tensor(np.ones((64, 1)), "float32")
    out, grad = output_and_input_grad(model, xt, upstream)
    loaded_out, loaded_grad = output_and_input_grad(loaded, xt, upstream)
    np.testing.assert_array_equal(raw_bits(loaded_out), raw_bits(out))
    np.testing.assert_array_equal(raw_bits(loaded_grad), raw_bits(grad))


# The torch run leaves a .keras file and its predictions here for the jax run to load.
SAVED_DIR_VARIABLE = "SUGAR_KERAS_TEST_SAVED_ON_TORCH"


@pytest.mark.skipif(
    BACKEND == "torch" or SAVED_DIR_VARIABLE not in os.environ,
    reason="runs in the jax run of test_the_jax_backend_passes_the_same_tests, on a file saved on torch",
)
def test_loads_a_keras_file_saved_on_the_torch_backend():
    saved = os.environ[SAVED_DIR_VARIABLE]
    loaded = keras.saving.load_model(os.path.join(saved, "model.keras"))
    expected = np.load(os.path.join(saved, "predictions.npz"))
    assert loaded.get_layer("nelu_act").get_config()["alpha"] == 0.05
    predictions = loaded.predict(expected["x"], verbose=0)
    # Another backend's matmuls: equal to float32 rounding, not bit for bit.
    np.testing.assert_allclose(predictions, expected["predictions"], rtol=1e-5, atol=1e-6)
    fit(loaded, expected["x"], expected["y"], epochs=1)  # and it trains on


# ---- errors ---------------------------------------------------------------------------------------

BAD_ARGUMENTS = [
    ({"surrogate": "bogus"}, ValueError, "unknown surrogate 'bogus'"),
    ({"surrogate": 3}, TypeError, "surrogate must be a str"),
    ({"surrogate": "gelu", "alpha": 1.0}, ValueError, "surrogate 'gelu' takes no alpha"),
    ({"surrogate": "nelu", "alpha": -1.0}, ValueError, "alpha for surrogate 'nelu' must be a number in"),
    ({"alpha": "1.67"}, TypeError, "alpha must be a float or None, got str"),
    ({"alpha": True}, TypeError, "alpha must be a float or None, got bool"),
    ({"negative_only": "yes"}, TypeError, "negative_only must be a bool"),
]


@on_every_backend
@pytest.mark.parametrize("kwargs,error,message", BAD_ARGUMENTS, ids=[str(case[0]) for case in BAD_ARGUMENTS])
def test_bad_arguments_raise_the_projects_errors(kwargs, error, message):
    """The same errors, word for word, as torch_sugar's own validation (with the layer's name)."""
    args = {"surrogate": "bsilu", "alpha": None, "negative_only": False, **kwargs}
    with pytest.raises(error) as expected:
        validate(args["surrogate"], args["alpha"], args["negative_only"], fn="torch_sugar.keras.SugarReLU")
    with pytest.raises(error, match=message) as got:
        SugarReLU(**kwargs)
    assert str(got.value) == str(expected.value)
    # from_config (what load_model calls): Keras re-raises as a TypeError that quotes the error.
    config = {**SugarReLU().get_config(), **kwargs}
    with pytest.raises((error, TypeError), match=re.escape(str(expected.value))):
        SugarReLU.from_config(config)


@on_every_backend
def test_integer_input_is_a_dtype_error():
    """As the op says it on torch (and the portable path on the other backends)."""
    with pytest.raises(TypeError, match="must be a floating-point tensor of dtype .* but got dtype .*int32"):
        SugarReLU()(ops.convert_to_tensor(np.arange(3, dtype=np.int32)))


# ---- imports and the second backend -------------------------------------------------------------


# Imports torch_sugar, checks that keras was not imported, then imports torch_sugar.keras as
# where keras is not installed (a sys.meta_path finder refuses the name).
WITHOUT_KERAS = """
import sys
import torch_sugar, torch_sugar.cli, torch_sugar.monitor

assert not [m for m in sys.modules if m.split(".")[0] == "keras"], "import torch_sugar imported keras"

class NoKeras:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "keras":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NoKeras())
try:
    import torch_sugar.keras
except ImportError as exc:
    print(exc)
"""


@torch_backend_only
def test_import_torch_sugar_does_not_import_keras():
    result = subprocess.run(
        [sys.executable, "-c", WITHOUT_KERAS], capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert (
        "torch_sugar.keras needs Keras 3" in result.stdout
        and "pip install 'torch-sugar[keras]'" in result.stdout
    )


def run_this_file_on(backend, junit_xml, **env):
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit_xml}", __file__],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
        env={**os.environ, "SUGAR_KERAS_TEST_BACKEND": backend, **env},
    )


def junit_outcomes(junit_xml):
    """test name (with its parameters) -> "passed", "failed", "error" or "skipped"."""
    outcomes = {}
    for case in ElementTree.parse(junit_xml).getroot().iter("testcase"):
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[case.get("name")] = {"failure": "failed"}.get(kinds[0], kinds[0]) if kinds else "passed"
    return outcomes


@torch_backend_only
@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_the_jax_backend_passes_the_same_tests(tmp_path):
    """Runs this file on the jax backend: every test marked on_every_backend must pass there (the
    layer is keras.ops code with a custom gradient), and a .keras file saved here must load there."""
    x, y = regression_data(64)
    model = two_activation_model()
    fit(model, x, y, epochs=1)
    model.save(tmp_path / "model.keras")
    np.savez(tmp_path / "predictions.npz", x=x, y=y, predictions=model.predict(x, verbose=0))

    junit_xml = tmp_path / "jax.xml"
    result = run_this_file_on("jax", junit_xml, **{SAVED_DIR_VARIABLE: str(tmp_path)})
    log = result.stdout[-6000:] + result.stderr[-3000:]
    assert result.returncode == 0, log
    outcomes = junit_outcomes(junit_xml)
    required = [name for name in outcomes if name.split("[")[0] in EVERY_BACKEND]
    required.append("test_loads_a_keras_file_saved_on_the_torch_backend")
    assert {name.split("[")[0] for name in required} >= EVERY_BACKEND, (sorted(outcomes), log)
    not_passed = {name: outcomes.get(name) for name in required if outcomes.get(name) != "passed"}
    assert not not_passed, (not_passed, log)
