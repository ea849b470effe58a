// Scalar math of every SUGAR surrogate: d(x) = s'(x) and s''(x).
//
// This header is the one source of truth for the surrogate math. The CPU and the CUDA kernels
// both include it, so the two backends cannot disagree. Everything here is C10_HOST_DEVICE and
// templated on the compute type T (float for float16/bfloat16/float32, double for float64).
//
// Numerics: every function is finite for every finite x. Exponentials are only ever taken of
// non-positive numbers (e = exp(-|x|)), so nothing overflows; products that could meet 0 * inf
// are rearranged so they cannot (see nelu and gelu_tanh).
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

namespace sugar {
namespace math {

enum class Surrogate : int8_t {
  relu = 0,
  bsilu,
  nelu,
  elu,
  selu,
  leaky_relu,
  gelu,
  gelu_tanh,
  silu,
  mish,
};

constexpr int kNumSurrogates = 10;

// SELU's fixed constants (Klambauer et al. 2017).
constexpr double kSeluLambda = 1.0507009873554805;
constexpr double kSeluAlpha = 1.6732632423543772;
// 1/sqrt(2), 1/sqrt(2*pi), sqrt(2/pi): GELU's constants.
constexpr double kSqrtHalf = 0.70710678118654752440;
constexpr double kInvSqrt2Pi = 0.39894228040143267794;
constexpr double kSqrt2OverPi = 0.79788456080286535588;
constexpr double kGeluTanhCoef = 0.044715;

// sigmoid(x) and sigmoid(x) * sigmoid(-x) from one exp(-|x|): the exponent is never positive.
template <typename T>
struct SigmoidParts {
  T sig;    // sigmoid(x)
  T sig_n;  // sigmoid(-x) = 1 - sigmoid(x), without cancellation
  T prod;   // sigmoid(x) * sigmoid(-x) = sigmoid'(x)
};

template <typename T>
C10_HOST_DEVICE inline SigmoidParts<T> sigmoid_parts(T x) {
  const T e = std::exp(-std::abs(x));
  const T inv = T(1) / (T(1) + e);
  const T big = inv;       // sigmoid(|x|)
  const T small = e * inv; // sigmoid(-|x|)
  SigmoidParts<T> p;
  p.sig = x >= T(0) ? big : small;
  p.sig_n = x >= T(0) ? small : big;
  p.prod = big * small;
  return p;
}

// ---- B-SiLU: s(x) = (x + a) * sigmoid(x) - a/2 (SiLU is the case a = 0) ----
template <typename T>
C10_HOST_DEVICE inline T bsilu_grad(T x, T a) {
  const auto p = sigmoid_parts(x);
  return p.sig + (x + a) * p.prod;
}

template <typename T>
C10_HOST_DEVICE inline T bsilu_grad2(T x, T a) {
  const auto p = sigmoid_parts(x);
  // 1 - 2 sigmoid(x) = sigmoid(-x) - sigmoid(x): no cancellation against 1. (x + a) multiplies the
  // vanishing factor first, so a huge x meets 0 before it can overflow.
  return T(2) * p.prod + ((x + a) * p.prod) * (p.sig_n - p.sig);
}

// ---- NeLU: s(x) = x (x > 0); -a / (1 + x^2) (x <= 0) ----
// With u = 1/(1+x^2): s'(x) = 2a x u^2 and s''(x) = 2a (1-3x^2) u^3 = 2a (4u - 3) u^2, which stay
// finite (and exact to rounding) even where x^2 overflows.
template <typename T>
C10_HOST_DEVICE inline T nelu_grad(T x, T a) {
  if (x > T(0)) return T(1);
  const T u = T(1) / (T(1) + x * x);
  return T(2) * a * (x * u) * u;
}

template <typename T>
C10_HOST_DEVICE inline T nelu_grad2(T x, T a) {
  if (x > T(0)) return T(0);
  const T u = T(1) / (T(1) + x * x);
  return T(2) * a * (T(4) * u - T(3)) * u * u;
}

// ---- ELU: s(x) = x (x > 0); a (e^x - 1) (x <= 0) ----
template <typename T>
C10_HOST_DEVICE inline T elu_grad(T x, T a) {
  return x > T(0) ? T(1) : a * std::exp(x);
}

template <typename T>
C10_HOST_DEVICE inline T elu_grad2(T x, T a) {
  return x > T(0) ? T(0) : a * std::exp(x);
}

// ---- SELU: lambda * ELU with alpha = a0; takes no alpha ----
template <typename T>
C10_HOST_DEVICE inline T selu_grad(T x) {
  return x > T(0) ? T(kSeluLambda) : T(kSeluLambda * kSeluAlpha) * std::exp(x);
}

template <typename T>
C10_HOST_DEVICE inline T selu_grad2(T x) {
  return x > T(0) ? T(0) : T(kSeluLambda * kSeluAlpha) * std::exp(x);
}

// ---- LeakyReLU: s(x) = x (x > 0); a x (x <= 0) ----
template <typename T>
C10_HOST_DEVICE inline T leaky_relu_grad(T x, T a) {
  return x > T(0) ? T(1) : a;
}

// ---- GELU (exact): s(x) = x Phi(x) ----
template <typename T>
C10_HOST_DEVICE inline T gelu_grad(T x) {
  const T cdf = T(0.5) * std::erfc(-x * T(kSqrtHalf));
  const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
  return cdf + x * pdf;
}

template <typename T>
C10_HOST_DEVICE inline T gelu_grad2(T x) {
  const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
  // phi (2 - x^2) written so that x^2 never multiplies a zero pdf: x (x pdf) is 0 there.
  return T(2) * pdf - x * (x * pdf);
}

// ---- GELU, tanh approximation: s(x) = x/2 (1 + tanh u), u = sqrt(2/pi) (x + c x^3) ----
// 0.5 (1 + tanh u) = sigmoid(2u) and 1 - tanh^2 u = 4 sigmoid(2u) sigmoid(-2u). Past |x| = 50 the
// sech^2 factor is exactly 0 even in double (|2u| > 8900), so the formula reduces to the step and
// is returned as such before u' = sqrt(2/pi)(1 + 3c x^2) can overflow into 0 * inf.
template <typename T>
C10_HOST_DEVICE inline T gelu_tanh_grad(T x) {
  if (std::abs(x) > T(50)) return x > T(0) ? T(1) : T(0);
  const T u = T(kSqrt2OverPi) * (x + T(kGeluTanhCoef) * x * x * x);
  const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCoef) * x * x);
  const auto p = sigmoid_parts(T(2) * u);
  return p.sig + T(2) * x * p.prod * du;
}

template <typename T>
C10_HOST_DEVICE inline T gelu_tanh_grad2(T x) {
  if (std::abs(x) > T(50)) return T(0);
  const T u = T(kSqrt2OverPi) * (x + T(kGeluTanhCoef) * x * x * x);
  const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCoef) * x * x);
  const T d2u = T(6 * kSqrt2OverPi * kGeluTanhCoef) * x;
  const auto p = sigmoid_parts(T(2) * u);
  const T t = p.sig - p.sig_n;  // tanh(u)
  // (1 - t^2) (u' + x u''/2 - x t u'^2)
  return T(4) * p.prod * (du + T(0.5) * x * d2u - x * t * du * du);
}

// ---- Mish: s(x) = x tanh(softplus(x)) ----
// With n = e^x, tanh(softplus(x)) = n(n+2) / (n(n+2) + 2) and sech^2(softplus(x)) =
// 4w / (w+1)^2, w = (1+n)^2. For x > 0 both are rewritten in m = e^-x so nothing overflows.
template <typename T>
struct MishParts {
  T t;       // tanh(softplus(x))
  T sech2;   // 1 - t^2
  T sig;     // sigmoid(x) = softplus'(x)
  T sig_n;   // sigmoid(-x)
};

template <typename T>
C10_HOST_DEVICE inline MishParts<T> mish_parts(T x) {
  const T e = std::exp(-std::abs(x));
  MishParts<T> p;
  if (x > T(0)) {
    const T m = e;
    const T onem = T(1) + m;
    p.t = (T(1) + T(2) * m) / (T(1) + T(2) * m + T(2) * m * m);
    const T den = onem * onem + m * m;
    p.sech2 = T(4) * (m * onem) * (m * onem) / (den * den);
    p.sig = T(1) / onem;
    p.sig_n = m / onem;
  } else {
    const T n = e;
    const T nn = n * (n + T(2));
    p.t = nn / (nn + T(2));
    const T w = (T(1) + n) * (T(1) + n);
    p.sech2 = T(4) * w / ((w + T(1)) * (w + T(1)));
    p.sig = n / (T(1) + n);
    p.sig_n = T(1) / (T(1) + n);
  }
  return p;
}

template <typename T>
C10_HOST_DEVICE inline T mish_grad(T x) {
  const auto p = mish_parts(x);
  return p.t + x * p.sech2 * p.sig;
}

template <typename T>
C10_HOST_DEVICE inline T mish_grad2(T x) {
  const auto p = mish_parts(x);
  // (1 - t^2) sigma (2 + x (1 - sigma - 2 t sigma)), with 1 - sigma = sigmoid(-x); x multiplies
  // the vanishing factor q first, so a huge x meets 0 before it can overflow.
  const T q = p.sech2 * p.sig;
  return T(2) * q + (x * q) * (p.sig_n - T(2) * p.t * p.sig);
}

// ---- dispatch on a compile-time surrogate ----

// d(x) = s'(x) of surrogate K. `a` is the resolved alpha (ignored by surrogates without one).
template <Surrogate K, typename T>
C10_HOST_DEVICE inline T surrogate_grad(T x, T a) {
  if constexpr (K == Surrogate::relu) {
    return x > T(0) ? T(1) : T(0);
  } else if constexpr (K == Surrogate::bsilu) {
    return bsilu_grad(x, a);
  } else if constexpr (K == Surrogate::nelu) {
    return nelu_grad(x, a);
  } else if constexpr (K == Surrogate::elu) {
    return elu_grad(x, a);
  } else if constexpr (K == Surrogate::selu) {
    return selu_grad(x);
  } else if constexpr (K == Surrogate::leaky_relu) {
    return leaky_relu_grad(x, a);
  } else if constexpr (K == Surrogate::gelu) {
    return gelu_grad(x);
  } else if constexpr (K == Surrogate::gelu_tanh) {
    return gelu_tanh_grad(x);
  } else if constexpr (K == Surrogate::silu) {
    return bsilu_grad(x, T(0));
  } else {
    static_assert(K == Surrogate::mish, "unhandled surrogate");
    return mish_grad(x);
  }
}

// s''(x) of surrogate K.
template <Surrogate K, typename T>
C10_HOST_DEVICE inline T surrogate_grad2(T x, T a) {
  if constexpr (K == Surrogate::relu || K == Surrogate::leaky_relu) {
    return T(0);
  } else if constexpr (K == Surrogate::bsilu) {
    return bsilu_grad2(x, a);
  } else if constexpr (K == Surrogate::nelu) {
    return nelu_grad2(x, a);
  } else if constexpr (K == Surrogate::elu) {
    return elu_grad2(x, a);
  } else if constexpr (K == Surrogate::selu) {
    return selu_grad2(x);
  } else if constexpr (K == Surrogate::gelu) {
    return gelu_grad2(x);
  } else if constexpr (K == Surrogate::gelu_tanh) {
    return gelu_tanh_grad2(x);
  } else if constexpr (K == Surrogate::silu) {
    return bsilu_grad2(x, T(0));
  } else {
    static_assert(K == Surrogate::mish, "unhandled surrogate");
    return mish_grad2(x);
  }
}

// ---- the three elementwise operations of the ops, shared by every backend ----

// Forward: exactly torch.relu, bit for bit: NaN (with its payload) and -0.0 pass through,
// negatives become +0. Called on the storage type itself (Half/BFloat16 compare through float),
// so the input's bits are returned untouched rather than re-rounded.
template <typename S>
C10_HOST_DEVICE inline S relu_forward(S x) {
  return x < S(0) ? S(0) : x;
}

// grad_input = grad * d(x). The relu control is a select, as torch's threshold_backward is, so
// it is bitwise torch.relu's gradient (0 where x <= 0 even if grad is inf or NaN). With
// negative_only, active units pass grad through untouched.
template <Surrogate K, typename T>
C10_HOST_DEVICE inline T relu_backward(T grad, T x, T a, bool negative_only) {
  if constexpr (K == Surrogate::relu) {
    return x <= T(0) ? T(0) : grad;
  } else {
    if (negative_only && x > T(0)) return grad;
    return grad * surrogate_grad<K, T>(x, a);
  }
}

// d(grad_input)/d(x) contracted with the incoming gradient: grad_grad * grad * s''(x).
// Zero where negative_only pins d to 1.
template <Surrogate K, typename T>
C10_HOST_DEVICE inline T relu_double_backward(T grad_grad, T grad, T x, T a, bool negative_only) {
  if constexpr (K == Surrogate::relu || K == Surrogate::leaky_relu) {
    return T(0);
  } else {
    if (negative_only && x > T(0)) return T(0);
    return grad_grad * grad * surrogate_grad2<K, T>(x, a);
  }
}

}  // namespace math
}  // namespace sugar

// Calls `__VA_ARGS__` (a generic lambda body using the compile-time constant `kSurrogate`) with
// the surrogate `KIND` known at compile time. Used by every backend to hoist the switch out of
// the element loop.
#define SUGAR_SURROGATE_CASE(NAME, ...)                                              \
  case ::sugar::math::Surrogate::NAME: {                                             \
    constexpr ::sugar::math::Surrogate kSurrogate = ::sugar::math::Surrogate::NAME;  \
    (void)kSurrogate;                                                                \
    __VA_ARGS__();                                                                   \
    break;                                                                           \
  }

#define SUGAR_DISPATCH_SURROGATE(KIND, ...)            \
  switch (KIND) {                                      \
    SUGAR_SURROGATE_CASE(relu, __VA_ARGS__)            \
    SUGAR_SURROGATE_CASE(bsilu, __VA_ARGS__)           \
    SUGAR_SURROGATE_CASE(nelu, __VA_ARGS__)            \
    SUGAR_SURROGATE_CASE(elu, __VA_ARGS__)             \
    SUGAR_SURROGATE_CASE(selu, __VA_ARGS__)            \
    SUGAR_SURROGATE_CASE(leaky_relu, __VA_ARGS__)      \
    SUGAR_SURROGATE_CASE(gelu, __VA_ARGS__)            \
    SUGAR_SURROGATE_CASE(gelu_tanh, __VA_ARGS__)       \
    SUGAR_SURROGATE_CASE(silu, __VA_ARGS__)            \
    SUGAR_SURROGATE_CASE(mish, __VA_ARGS__)            \
  }
