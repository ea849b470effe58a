// sugar::relu and sugar::relu_backward from C++: values, first and second order gradients against
// the float64 reference of reference.h, dtypes and layouts, and the errors for bad input.
#include "catch.h"
#include "helpers.h"
#include "reference.h"

#include <torch/torch.h>
#include <torch_sugar/sugar.h>

#include <set>
#include <string>
#include <vector>

using namespace test_helpers;

namespace {

// Every surrogate name the library lists, each with its default alpha and, where it takes one,
// a non-default alpha; full scope and negative_only.
std::vector<reference::Surrogate> cases() {
  std::vector<reference::Surrogate> out;
  for (const auto& info : sugar::surrogates()) {
    for (bool negative_only : {false, true}) {
      out.push_back({info.name, std::nullopt, negative_only});
      if (info.default_alpha.has_value()) {
        const double other = info.name == "leaky_relu" ? 0.2 : 0.37;
        out.push_back({info.name, other, negative_only});
      }
    }
  }
  return out;
}

std::string describe(const reference::Surrogate& s) {
  return s.name + " alpha=" + (s.alpha ? std::to_string(*s.alpha) : std::string("default")) +
         (s.negative_only ? " negative_only" : "");
}

// Both signs, zero, tiny and large magnitudes, and a random bulk.
at::Tensor sample_x(at::ScalarType dtype) {
  auto opts = at::TensorOptions().dtype(at::kDouble);
  at::Tensor special = torch::tensor(
      {0.0, -0.0, 1e-7, -1e-7, 0.5, -0.5, 1.0, -1.0, 3.0, -3.0, 8.0, -8.0, 20.0, -20.0}, opts);
  at::Tensor bulk = torch::randn({6, 7}, at::detail::createCPUGenerator(7), opts) * 3;
  return at::cat({special, bulk.flatten()}).reshape({8, 7}).to(dtype);
}

}  // namespace

CATCH_TEST_CASE("surrogates() lists every surrogate of DESIGN.md", "[ops]") {
  std::set<std::string> names;
  for (const auto& s : sugar::surrogates()) names.insert(s.name);
  const std::set<std::string> expected = {"relu", "bsilu",      "nelu", "elu",
                                          "selu", "leaky_relu", "gelu", "gelu_tanh",
                                          "silu", "swish",      "mish"};
  CATCH_CHECK(names == expected);
  for (const auto& s : sugar::surrogates()) {
    CATCH_INFO(s.name);
    if (s.default_alpha.has_value())
      CATCH_CHECK(*s.default_alpha == reference::default_alpha(s.name));
    CATCH_CHECK(s.alias_of == (s.name == "swish" ? "silu" : ""));
  }
}

CATCH_TEST_CASE("forward is torch.relu, bit for bit", "[ops]") {
  for (auto dtype : {at::kFloat, at::kDouble, at::kHalf, at::kBFloat16}) {
    at::Tensor x = sample_x(dtype);
    x.view(-1)[5].fill_(std::numeric_limits<double>::quiet_NaN());
    for (const auto& s : cases()) {
      CATCH_INFO(describe(s) << " " << dtype);
      at::Tensor y = sugar::relu(x, s.name, s.alpha, s.negative_only);
      CATCH_CHECK(y.scalar_type() == dtype);
      CATCH_CHECK(y.sizes() == x.sizes());
      CATCH_CHECK(at::equal(y.isnan(), at::relu(x).isnan()));
      CATCH_CHECK(at::equal(at::nan_to_num(y), at::nan_to_num(at::relu(x))));
    }
  }
}

CATCH_TEST_CASE("first-order gradient = grad_output * d(x) (float64 reference)", "[ops]") {
  torch::manual_seed(0);
  for (auto dtype : {at::kDouble, at::kFloat}) {
    // float64: the same formulas in the same precision; float32: rounding of x, v and the math.
    const double tol = dtype == at::kDouble ? 1e-12 : 2e-6;
    at::Tensor x0 = sample_x(dtype);
    at::Tensor v = torch::randn(x0.sizes(), at::TensorOptions().dtype(dtype));
    for (const auto& s : cases()) {
      CATCH_INFO(describe(s) << " " << dtype);
      at::Tensor x = x0.clone().requires_grad_(true);
      sugar::relu(x, s.name, s.alpha, s.negative_only).backward(v);
      at::Tensor want = v.to(at::kDouble) * reference::d(s, x0);
      CATCH_CHECK(max_abs_diff(x.grad(), want) <= tol * (1 + want.abs().max().item<double>()));
      // The backward op on its own gives the same numbers as autograd.
      at::Tensor direct = sugar::relu_backward(v, x0, s.name, s.alpha, s.negative_only);
      CATCH_CHECK(at::equal(direct, x.grad()));
      if (s.name == "relu") {
        // The control is exactly torch.relu's gradient.
        at::Tensor xr = x0.clone().requires_grad_(true);
        at::relu(xr).backward(v);
        CATCH_CHECK(at::equal(x.grad(), xr.grad()));
      }
    }
  }
}

CATCH_TEST_CASE("half types compute in float32 and round once", "[ops]") {
  torch::manual_seed(0);
  for (auto dtype : {at::kHalf, at::kBFloat16}) {
    at::Tensor x = sample_x(dtype);
    at::Tensor v = torch::randn(x.sizes()).to(dtype);
    for (const auto& s : cases()) {
      CATCH_INFO(describe(s) << " " << dtype);
      at::Tensor g = sugar::relu_backward(v, x, s.name, s.alpha, s.negative_only);
      CATCH_CHECK(g.scalar_type() == dtype);
      // Reference from the rounded inputs in float64, rounded once to the half type. The library
      // computes in float32 and rounds once, so the two are apart by at most one half-type ulp
      // (where the float32 result and the exact one straddle a rounding boundary) plus the float32
      // error itself, absolute (1e-6 |v|: it dominates near the roots of d, where the value is
      // tiny), plus the spacing of the subnormals (float16's is 2^-24).
      at::Tensor want = (v.to(at::kDouble) * reference::d(s, x)).to(dtype).to(at::kDouble);
      const double ulp = dtype == at::kHalf ? std::ldexp(1.0, -10) : std::ldexp(1.0, -7);
      const double tiny = dtype == at::kHalf ? std::ldexp(1.0, -24) : std::ldexp(1.0, -133);
      at::Tensor err = (g.to(at::kDouble) - want).abs();
      at::Tensor bound = want.abs() * ulp + 1e-6 * v.to(at::kDouble).abs() + tiny;
      CATCH_CHECK(at::le(err, bound).all().item<bool>());
    }
  }
}

CATCH_TEST_CASE("second order via torch::autograd::grad with create_graph", "[ops]") {
  torch::manual_seed(0);
  at::Tensor x0 = sample_x(at::kDouble);
  at::Tensor v0 = torch::randn(x0.sizes(), at::kDouble);
  at::Tensor w = torch::randn(x0.sizes(), at::kDouble);
  for (const auto& s : cases()) {
    CATCH_INFO(describe(s));
    at::Tensor x = x0.clone().requires_grad_(true);
    at::Tensor v = v0.clone().requires_grad_(true);
    at::Tensor y = sugar::relu(x, s.name, s.alpha, s.negative_only);
    at::Tensor g =
        torch::autograd::grad({y}, {x}, {v}, /*retain_graph=*/true, /*create_graph=*/true)[0];
    CATCH_CHECK(max_abs_diff(g, v0 * reference::d(s, x0)) <= 1e-12);
    // d(g)/dx = v * s''(x), d(g)/dv = d(x), both contracted with w.
    auto second = torch::autograd::grad(
        {g}, {x, v}, {w}, /*retain_graph=*/false, /*create_graph=*/false,
        /*allow_unused=*/true);
    at::Tensor want_x = w * v0 * reference::dd(s, x0);
    at::Tensor got_x = second[0].defined() ? second[0] : at::zeros_like(x0);
    CATCH_CHECK(max_abs_diff(got_x, want_x) <= 1e-11 * (1 + want_x.abs().max().item<double>()));
    CATCH_CHECK(max_abs_diff(second[1], w * reference::d(s, x0)) <= 1e-12);
  }
}

CATCH_TEST_CASE(
    "gradcheck-style finite differences of the second order (bsilu, nelu, mish)",
    "[ops]") {
  // The reference's s'' against central differences of the library's d, so the two derivative
  // formulas of reference.h are not taken on trust either.
  for (const std::string name : {"bsilu", "nelu", "mish", "gelu", "gelu_tanh", "silu"}) {
    CATCH_INFO(name);
    reference::Surrogate s{name, std::nullopt, false};
    at::Tensor x = torch::linspace(-4, 4, 33, at::kDouble) + 0.013;  // avoid x = 0 for nelu
    const double h = 1e-6;
    at::Tensor ones = at::ones_like(x);
    at::Tensor fd = (sugar::relu_backward(ones, x + h, name, std::nullopt, false) -
                     sugar::relu_backward(ones, x - h, name, std::nullopt, false)) /
                    (2 * h);
    CATCH_CHECK(max_abs_diff(fd, reference::dd(s, x)) <= 1e-7);
  }
}

CATCH_TEST_CASE("layouts: non-contiguous, channels_last, empty and 0-dim inputs", "[ops]") {
  reference::Surrogate s{"bsilu", std::nullopt, false};
  at::Tensor base = torch::randn({5, 6}, at::kDouble);
  at::Tensor t = base.t();  // non-contiguous
  at::Tensor v = torch::randn({6, 5}, at::kDouble);
  CATCH_CHECK(
      max_abs_diff(
          sugar::relu_backward(v, t, "bsilu", std::nullopt, false), v * reference::d(s, t)) <=
      1e-12);
  CATCH_CHECK(at::equal(sugar::relu(t), at::relu(t)));

  at::Tensor cl = torch::randn({2, 3, 4, 5}, at::kFloat).contiguous(at::MemoryFormat::ChannelsLast);
  at::Tensor y = sugar::relu(cl);
  CATCH_CHECK(y.is_contiguous(at::MemoryFormat::ChannelsLast));
  CATCH_CHECK(at::equal(y, at::relu(cl)));

  CATCH_CHECK(sugar::relu(torch::empty({0, 3})).numel() == 0);
  at::Tensor scalar = torch::tensor(-0.5, at::kDouble).requires_grad_(true);
  sugar::relu(scalar, "elu").backward();
  CATCH_CHECK(std::abs(scalar.grad().item<double>() - std::exp(-0.5)) <= 1e-15);
}

CATCH_TEST_CASE("bad input raises c10::Error with a message naming the problem", "[ops]") {
  at::Tensor x = torch::randn({3});
  at::Tensor xi = torch::arange(3);

  CATCH_CHECK_THROWS_AS(sugar::relu(xi), c10::TypeError);
  CATCH_CHECK(contains(
      error_of([&] { sugar::relu(xi); }),
      "sugar::relu: self must be a floating-point tensor of dtype torch.float16, "
      "torch.bfloat16, torch.float32 or torch.float64, but got dtype torch.int64"));

  CATCH_CHECK_THROWS_AS(sugar::relu(x, "sigmoid"), c10::ValueError);
  const std::string unknown = error_of([&] { sugar::relu(x, "sigmoid"); });
  CATCH_CHECK(contains(unknown, "unknown surrogate 'sigmoid'"));
  CATCH_CHECK(contains(unknown, "valid names are: relu, bsilu, nelu"));

  CATCH_CHECK_THROWS_AS(sugar::relu(x, "gelu", 0.5), c10::ValueError);
  CATCH_CHECK(contains(
      error_of([&] { sugar::relu(x, "gelu", 0.5); }),
      "surrogate 'gelu' takes no alpha, but alpha=0.5 was given"));

  CATCH_CHECK_THROWS_AS(sugar::relu(x, "leaky_relu", 2.0), c10::ValueError);
  CATCH_CHECK(contains(
      error_of([&] { sugar::relu(x, "leaky_relu", 2.0); }),
      "alpha for surrogate 'leaky_relu' must be a number in (0, 1], but got alpha=2"));
  CATCH_CHECK(contains(
      error_of([&] { sugar::relu(x, "nelu", -1.0); }),
      "alpha for surrogate 'nelu' must be a number in (0, 5e37], but got alpha=-1"));

  at::Tensor g = torch::randn({4});
  CATCH_CHECK_THROWS_AS(sugar::relu_backward(g, x, "bsilu", std::nullopt, false), c10::ValueError);
  CATCH_CHECK(contains(
      error_of([&] { sugar::relu_backward(g, x, "bsilu", std::nullopt, false); }),
      "must have the same shape"));
  CATCH_CHECK(contains(
      error_of([&] {
        sugar::relu_backward(g.to(at::kDouble).narrow(0, 0, 3), x, "bsilu", std::nullopt, false);
      }),
      "must have the same dtype"));
}
