// Float64 reference of the surrogate derivatives, written from the table in DESIGN.md with the
// plain <cmath> formulas and nothing from the library (not csrc/ops/surrogate_math.h), so the
// tests compare two independent implementations.
#pragma once

#include <ATen/ATen.h>

#include <cmath>
#include <optional>
#include <stdexcept>
#include <string>

namespace reference {

struct Surrogate {
  std::string name;
  std::optional<double> alpha;  // nullopt: the surrogate's default
  bool negative_only = false;
};

inline double default_alpha(const std::string& name) {
  if (name == "bsilu") return 1.67;
  if (name == "nelu") return 0.01;
  if (name == "elu") return 1.0;
  if (name == "leaky_relu") return 0.01;
  return 0.0;
}

inline double sigmoid(double x) {
  return 1.0 / (1.0 + std::exp(-x));
}
inline double softplus(double x) {
  return x > 30 ? x : std::log1p(std::exp(x));
}

constexpr double kSeluLambda = 1.0507009873554805;
constexpr double kSeluAlpha = 1.6732632423543772;
constexpr double kPi = 3.14159265358979323846;

// d(x) = s'(x) and s''(x) of the full-scope surrogate.
struct Derivatives {
  double d;
  double dd;
};

inline Derivatives full_scope(const std::string& name, double a, double x) {
  if (name == "relu") return {x > 0 ? 1.0 : 0.0, 0.0};
  if (name == "bsilu") {
    const double s = sigmoid(x);
    return {s + (x + a) * s * (1 - s), s * (1 - s) * (2 + (x + a) * (1 - 2 * s))};
  }
  if (name == "nelu") {
    if (x > 0) return {1.0, 0.0};
    const double q = 1 + x * x;
    return {2 * a * x / (q * q), 2 * a * (1 - 3 * x * x) / (q * q * q)};
  }
  if (name == "elu")
    return x > 0 ? Derivatives{1.0, 0.0} : Derivatives{a * std::exp(x), a * std::exp(x)};
  if (name == "selu") {
    return x > 0 ? Derivatives{kSeluLambda, 0.0}
                 : Derivatives{
                       kSeluLambda * kSeluAlpha * std::exp(x),
                       kSeluLambda * kSeluAlpha * std::exp(x)};
  }
  if (name == "leaky_relu") return {x > 0 ? 1.0 : a, 0.0};
  if (name == "gelu") {
    const double cdf = 0.5 * std::erfc(-x / std::sqrt(2.0));
    const double pdf = std::exp(-0.5 * x * x) / std::sqrt(2 * kPi);
    return {cdf + x * pdf, pdf * (2 - x * x)};
  }
  if (name == "gelu_tanh") {
    // s = x/2 (1 + tanh u), u = c (x + k x^3): the chain rule, twice.
    const double c = std::sqrt(2 / kPi), k = 0.044715;
    const double t = std::tanh(c * (x + k * x * x * x));
    const double du = c * (1 + 3 * k * x * x), ddu = c * 6 * k * x;
    const double sech2 = 1 - t * t;
    return {
        0.5 * (1 + t) + 0.5 * x * sech2 * du,
        sech2 * du + 0.5 * x * (-2 * t * sech2 * du * du + sech2 * ddu)};
  }
  if (name == "silu" || name == "swish") {
    const double s = sigmoid(x);
    return {s * (1 + x * (1 - s)), s * (1 - s) * (2 + x * (1 - 2 * s))};
  }
  if (name == "mish") {
    const double s = sigmoid(x), t = std::tanh(softplus(x));
    return {t + x * (1 - t * t) * s, (1 - t * t) * s * (2 + x * (1 - s - 2 * t * s))};
  }
  throw std::invalid_argument("reference: unknown surrogate " + name);
}

inline Derivatives derivatives(const Surrogate& s, double x) {
  const double a = s.alpha.value_or(default_alpha(s.name));
  if (s.negative_only && x > 0) return {1.0, 0.0};
  return full_scope(s.name, a, x);
}

// d(x) or s''(x) elementwise, as a float64 tensor of x's shape.
inline at::Tensor map(const Surrogate& s, const at::Tensor& x, bool second) {
  at::Tensor xd = x.to(at::kDouble).contiguous();
  at::Tensor out = at::empty_like(xd);
  const double* in = xd.data_ptr<double>();
  double* o = out.data_ptr<double>();
  for (int64_t i = 0; i < xd.numel(); ++i) {
    const Derivatives r = derivatives(s, in[i]);
    o[i] = second ? r.dd : r.d;
  }
  return out;
}
inline at::Tensor d(const Surrogate& s, const at::Tensor& x) {
  return map(s, x, false);
}
inline at::Tensor dd(const Surrogate& s, const at::Tensor& x) {
  return map(s, x, true);
}

}  // namespace reference
