// Scalar math of every SUGAR surrogate: d(x) = s'(x) and s''(x).
//
// This header is the one source of truth for the surrogate math. The CPU and the CUDA kernels
// both include it, so the two backends cannot disagree. Everything here is C10_HOST_DEVICE and
// templated on the compute type T (float for float16/bfloat16/float32, double for float64).
//
// The same templates also compute a vector of lanes at once: the CPU kernels
// (csrc/ops/cpu/vec_kernels.cpp, compiled once per instruction set with ATen's CPU_CAPABILITY)
// instantiate them with at::vec::Vectorized<float> (and <double>). So the formulas are written
// without branches on x: `where(cond, a, b)` and `where_nonneg(x, a, b)` select, and `vexp`,
// `vabs`, `verfc`, `vfmadd` (exp, |x|, erfc, a * b + c) are called unqualified, which finds the
// scalar overloads below for float/double and, where CPU_CAPABILITY is defined, the Vectorized
// overloads (ATen's methods, and an inline exp and normal cdf of float lanes written out of
// Vectorized operations). A comparison gives a bool for scalars and a lane mask for vectors. Both
// branches of a `where` are evaluated, so each is kept finite on its own (or at least harmless: a
// discarded lane never traps). relu_forward is the one exception: it works on the storage type, and
// the vector kernels apply it to each lane's bits themselves.
//
// Numerics: every function is finite for every finite x. Exponentials are only ever taken of
// non-positive numbers (e = exp(-|x|)), so nothing overflows; products that could meet 0 * inf
// are rearranged so they cannot (see nelu and gelu_tanh).
#pragma once

#include <c10/macros/Macros.h>

#include <cmath>
#include <cstdint>
#include <type_traits>

#ifdef CPU_CAPABILITY
#include <ATen/cpu/vec/vec.h>
#endif

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

// ---- scalar building blocks (the Vectorized ones follow, in the per-ISA kernels only) ----
// ("v" for vectorizable; named apart from libm's exp/abs/erfc so that no `using namespace` can
// make a call to those ambiguous, on the host or under nvcc.)

template <typename T>
C10_HOST_DEVICE inline T where(bool cond, T a, T b) {
  return cond ? a : b;
}

// where(x >= 0, a, b), for callers whose a and b agree where x is -0.0 or NaN: the vector
// lanes select on x's sign bit instead (see below).
C10_HOST_DEVICE inline float where_nonneg(float x, float a, float b) {
  return where(x >= 0.0f, a, b);
}
C10_HOST_DEVICE inline double where_nonneg(double x, double a, double b) {
  return where(x >= 0.0, a, b);
}

C10_HOST_DEVICE inline float vexp(float x) {
  return std::exp(x);
}
C10_HOST_DEVICE inline double vexp(double x) {
  return std::exp(x);
}
C10_HOST_DEVICE inline float vabs(float x) {
  return std::abs(x);
}
C10_HOST_DEVICE inline double vabs(double x) {
  return std::abs(x);
}
// a * b + c. For scalars exactly that expression, used only where the sum has no other product,
// so a contracting compiler (nvcc) fuses the same product as before; for vector lanes one fused
// multiply-add (the per-ISA kernels are compiled with -ffp-contract=off, so nothing is fused
// unless written so, and every layout rounds alike).
C10_HOST_DEVICE inline float vfmadd(float a, float b, float c) {
  return a * b + c;
}
C10_HOST_DEVICE inline double vfmadd(double a, double b, double c) {
  return a * b + c;
}
C10_HOST_DEVICE inline float verfc(float x) {
  return std::erfc(x);
}
C10_HOST_DEVICE inline double verfc(double x) {
  return std::erfc(x);
}

#ifdef CPU_CAPABILITY
// The same building blocks lane by lane, for the per-ISA CPU kernels (see the top).
template <typename T>
inline at::vec::Vectorized<T> where(
    const at::vec::Vectorized<T>& mask,
    const at::vec::Vectorized<T>& a,
    const at::vec::Vectorized<T>& b) {
  return at::vec::Vectorized<T>::blendv(b, a, mask);
}
#if defined(CPU_CAPABILITY_AVX512)
// On AVX-512 a Vectorized comparison widens its mask register to a vector and blendv narrows it
// back (four instructions a select); with the vector mask (all ones or all zeros per lane, as
// every comparison gives it) a bitwise select is one instruction fewer (one ternary logic).
inline at::vec::Vectorized<float> where(
    const at::vec::Vectorized<float>& mask,
    const at::vec::Vectorized<float>& a,
    const at::vec::Vectorized<float>& b) {
  return b ^ ((a ^ b) & mask);
}
#endif
template <typename T>
inline at::vec::Vectorized<T> where_nonneg(
    const at::vec::Vectorized<T>& x,
    const at::vec::Vectorized<T>& a,
    const at::vec::Vectorized<T>& b) {
  return where(x >= at::vec::Vectorized<T>(0), a, b);
}
// Float lanes: a where x's sign bit is clear, else b (so -0.0 and a NaN with the sign set take b:
// the callers' a and b agree there). The sign bit spread over the lane (an arithmetic shift) is
// a mask without a comparison; on AVX-512 the select is then bitwise: two instructions (shift,
// ternary logic) where a comparison and a select take three (see where above) or four (blendv).
inline at::vec::Vectorized<float> where_nonneg(
    const at::vec::Vectorized<float>& x,
    const at::vec::Vectorized<float>& a,
    const at::vec::Vectorized<float>& b) {
  using I = at::vec::Vectorized<int32_t>;
  const auto negative = at::vec::cast<float>(at::vec::cast<int32_t>(x) >> I(31));
#if defined(CPU_CAPABILITY_AVX512)
  return a ^ ((a ^ b) & negative);
#else
  return at::vec::Vectorized<float>::blendv(a, b, negative);
#endif
}
template <typename T>
inline at::vec::Vectorized<T> vfmadd(
    const at::vec::Vectorized<T>& a,
    const at::vec::Vectorized<T>& b,
    const at::vec::Vectorized<T>& c) {
  return at::vec::fmadd(a, b, c);
}
template <typename T>
inline at::vec::Vectorized<T> vexp(const at::vec::Vectorized<T>& x) {
  return x.exp();
}
// Float lanes: exp written out of Vectorized operations (Cephes' expf, as the hand-written SIMD
// kernels before issue 13 had it): x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6
// polynomial in fused multiply-adds, and 2^n applied as two normal factors 2^n1 * 2^n2, so that
// results down to the smallest subnormal come out right. Not Sleef's exp (Vectorized::exp), an
// out-of-line call per vector that costs the bsilu and mish backward a quarter to a half of their
// speed, nor ATen's inline exp_u20, which flushes results below FLT_MIN to zero and turns NaN
// into inf (with fix-ups for both it was slower than this). No select on a comparison (on
// AVX-512 each is three instructions or more: see where).
// For x <= 0 only (surrogate_math.h never takes exp of a positive number): below -104 (and at
// -inf) the result is exactly 0 (x is clamped to -104, whose exp rounds to 0); NaN stays NaN.
// Error against float64 exp over every float32 in [-104, 0] (1.12e9 inputs;
// benchmarks/exp_ulp.py): at most 1.26 ulp of the float32 result where it is normal (AVX2 and
// AVX-512; 1.27 for DEFAULT, whose fmadd rounds twice), at most 0.78 * 2^-149 where it is
// subnormal.
inline at::vec::Vectorized<float> vexp(const at::vec::Vectorized<float>& x) {
  using V = at::vec::Vectorized<float>;
  using at::vec::fmadd;
  const V lo(-104.0f);
  // clamp_min(a, b) is a < b ? b : a, so clamp_min(x, lo) keeps NaN (the value r is computed
  // from) and clamp_min(lo, x) turns NaN into lo (where n comes from: no float-to-int conversion
  // ever sees a NaN).
  const V xr = at::vec::clamp_min(x, lo);
  const V xn = at::vec::clamp_min(lo, x);
  const V n = (xn * V(1.44269504088896341f)).round();
  // r = x - n ln2, ln2 split in two so that the first product is exact.
  V r = fmadd(n, V(-0.693359375f), xr);
  r = fmadd(n, V(2.12194440e-4f), r);
  V y(1.9875691500e-4f);
  y = fmadd(y, r, V(1.3981999507e-3f));
  y = fmadd(y, r, V(8.3334519073e-3f));
  y = fmadd(y, r, V(4.1665795894e-2f));
  y = fmadd(y, r, V(1.6666665459e-1f));
  y = fmadd(y, r, V(5.0000001201e-1f));
  y = fmadd(y, r * r, r + V(1.0f));
  // n in [-150, 0]: 2^n = 2^n1 * 2^n2 with n1 = n >> 1 (floor(n / 2)) and n2 = n - n1, both in
  // [-75, 0], each made from its biased exponent in integer lanes (which keeps this off the
  // multiply-add units, the bottleneck of every surrogate).
  using I = at::vec::Vectorized<int32_t>;
  const I ni = at::vec::convert_to_int_of_same_size(n);
  const I n1 = ni >> I(1);
  const I n2 = ni - n1;
  const V s1 = at::vec::cast<float>((n1 + I(127)) << I(23));
  const V s2 = at::vec::cast<float>((n2 + I(127)) << I(23));
  return y * s1 * s2;
}
template <typename T>
inline at::vec::Vectorized<T> vabs(const at::vec::Vectorized<T>& x) {
  return x.abs();
}
template <typename T>
inline at::vec::Vectorized<T> verfc(const at::vec::Vectorized<T>& x) {
  return x.erfc();
}
#endif

// sigmoid(x) and sigmoid(x) * sigmoid(-x) from one exp(-|x|): the exponent is never positive.
template <typename T>
struct SigmoidParts {
  T sig;    // sigmoid(x)
  T sig_n;  // sigmoid(-x) = 1 - sigmoid(x), without cancellation
  T prod;   // sigmoid(x) * sigmoid(-x) = sigmoid'(x)
};

template <typename T>
C10_HOST_DEVICE inline SigmoidParts<T> sigmoid_parts(T x) {
  const T e = vexp(-vabs(x));
  const T inv = T(1) / (T(1) + e);
  const T big = inv;        // sigmoid(|x|)
  const T small = e * inv;  // sigmoid(-|x|)
  SigmoidParts<T> p;
  // At x = -0.0 big = small = 1/2; at NaN both are NaN.
  p.sig = where_nonneg(x, big, small);
  p.sig_n = where_nonneg(x, small, big);
  p.prod = big * small;
  return p;
}

// ---- B-SiLU: s(x) = (x + a) * sigmoid(x) - a/2 (SiLU is the case a = 0) ----
template <typename T>
C10_HOST_DEVICE inline T bsilu_grad(T x, T a) {
  const auto p = sigmoid_parts(x);
  return vfmadd(x + a, p.prod, p.sig);
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
  const T u = T(1) / vfmadd(x, x, T(1));
  return where(x > T(0), T(1), T(2) * a * (x * u) * u);
}

template <typename T>
C10_HOST_DEVICE inline T nelu_grad2(T x, T a) {
  const T u = T(1) / (T(1) + x * x);
  return where(x > T(0), T(0), T(2) * a * (T(4) * u - T(3)) * u * u);
}

// ---- ELU: s(x) = x (x > 0); a (e^x - 1) (x <= 0) ----
// exp(-|x|) is exp(x) where it is used (x <= 0) and never overflows where it is not.
template <typename T>
C10_HOST_DEVICE inline T elu_grad(T x, T a) {
  return where(x > T(0), T(1), a * vexp(-vabs(x)));
}

template <typename T>
C10_HOST_DEVICE inline T elu_grad2(T x, T a) {
  return where(x > T(0), T(0), a * vexp(-vabs(x)));
}

// ---- SELU: lambda * ELU with alpha = a0; takes no alpha ----
template <typename T>
C10_HOST_DEVICE inline T selu_grad(T x) {
  return where(x > T(0), T(kSeluLambda), T(kSeluLambda * kSeluAlpha) * vexp(-vabs(x)));
}

template <typename T>
C10_HOST_DEVICE inline T selu_grad2(T x) {
  return where(x > T(0), T(0), T(kSeluLambda * kSeluAlpha) * vexp(-vabs(x)));
}

// ---- LeakyReLU: s(x) = x (x > 0); a x (x <= 0) ----
template <typename T>
C10_HOST_DEVICE inline T leaky_relu_grad(T x, T a) {
  return where(x > T(0), T(1), a);
}

// ---- GELU (exact): s(x) = x Phi(x) ----

// Phi(x) and phi(x), the standard normal cdf and pdf.
template <typename T>
struct NormalParts {
  T cdf;  // Phi(x)
  T pdf;  // phi(x)
};

template <typename T>
C10_HOST_DEVICE inline NormalParts<T> normal_parts(T x) {
  NormalParts<T> p;
  p.cdf = T(0.5) * verfc(-x * T(kSqrtHalf));
  p.pdf = T(kInvSqrt2Pi) * vexp(T(-0.5) * x * x);
  return p;
}

#ifdef CPU_CAPABILITY
// Phi(x) and phi(x) for float lanes from one exponential E = exp(-x^2/2) (Sleef's erfc, about ten
// times the cost of its exp, would make GELU's backward compute-bound): phi = E / sqrt(2 pi), and
// Phi(-|x|) = erfc(|x|/sqrt 2) / 2 = t E Q(t) / 2 with t = 1 / (1 + 0.4 |x| / sqrt 2), where
// Q(t) = erfcx(z) / t (z = |x|/sqrt 2, erfcx the scaled complementary error function) is smooth
// on t in (0, 1] and fitted by a degree-8 polynomial: relative error < 1.3e-7 (< 3.5e-7 in float
// arithmetic) over the whole line, so Phi keeps its relative accuracy deep in the left tail.
// Fit: iteratively reweighted least squares on Chebyshev nodes against scipy.special.erfcx, in
// double. (Vectorized<double> keeps the generic erfc above: float64 needs more than 1e-7.)
inline NormalParts<at::vec::Vectorized<float>> normal_parts(const at::vec::Vectorized<float>& x) {
  using V = at::vec::Vectorized<float>;
  using at::vec::fmadd;
  const V t = V(1.0f) / fmadd(vabs(x), V(0.28284271247461901f), V(1.0f));  // 0.4 / sqrt 2
  const V e = vexp(V(-0.5f) * x * x);
  V q(5.025694328e-02f);
  q = fmadd(q, t, V(-1.828818236e-01f));
  q = fmadd(q, t, V(1.690553951e-01f));
  q = fmadd(q, t, V(-5.583821397e-03f));
  q = fmadd(q, t, V(1.414211670e-01f));
  q = fmadd(q, t, V(1.685443621e-01f));
  q = fmadd(q, t, V(2.078424307e-01f));
  q = fmadd(q, t, V(2.256696096e-01f));
  q = fmadd(q, t, V(2.256758618e-01f));
  const V tail = V(0.5f) * t * e * q;  // Phi(-|x|)
  NormalParts<V> p;
  // NaN compares false and stays NaN through tail.
  p.cdf = where(x >= V(0.0f), V(1.0f) - tail, tail);
  p.pdf = V(0.39894228040143267794f) * e;
  return p;
}
#endif

template <typename T>
C10_HOST_DEVICE inline T gelu_grad(T x) {
  const auto p = normal_parts(x);
  if constexpr (std::is_floating_point_v<T>) {
    // Scalars (CUDA too) keep the expression as it was: with two products feeding the sum, which
    // one a contracting compiler fuses depends on how it is written.
    return p.cdf + x * p.pdf;
  } else {
    return vfmadd(x, p.pdf, p.cdf);
  }
}

template <typename T>
C10_HOST_DEVICE inline T gelu_grad2(T x) {
  const T pdf = T(kInvSqrt2Pi) * vexp(T(-0.5) * x * x);
  // phi (2 - x^2) written so that x^2 never multiplies a zero pdf: x (x pdf) is 0 there.
  return T(2) * pdf - x * (x * pdf);
}

// ---- GELU, tanh approximation: s(x) = x/2 (1 + tanh u), u = sqrt(2/pi) (x + c x^3) ----
// 0.5 (1 + tanh u) = sigmoid(2u) and 1 - tanh^2 u = 4 sigmoid(2u) sigmoid(-2u). Past |x| = 50 the
// sech^2 factor is exactly 0 even in double (|2u| > 8900), so the formula reduces to the step and
// is returned as such before u' = sqrt(2/pi)(1 + 3c x^2) can overflow into 0 * inf: the formula
// itself is evaluated at x clamped to 0 there, and its value discarded.
template <typename T>
C10_HOST_DEVICE inline T gelu_tanh_grad(T x) {
  const auto far = vabs(x) > T(50);
  const T xc = where(far, T(0), x);
  const T u = T(kSqrt2OverPi) * (xc + T(kGeluTanhCoef) * xc * xc * xc);
  const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCoef) * xc * xc);
  const auto p = sigmoid_parts(T(2) * u);
  const T near_value = p.sig + T(2) * xc * p.prod * du;
  return where(far, where(x > T(0), T(1), T(0)), near_value);
}

template <typename T>
C10_HOST_DEVICE inline T gelu_tanh_grad2(T x) {
  const auto far = vabs(x) > T(50);
  x = where(far, T(0), x);
  const T u = T(kSqrt2OverPi) * (x + T(kGeluTanhCoef) * x * x * x);
  const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCoef) * x * x);
  const T d2u = T(6 * kSqrt2OverPi * kGeluTanhCoef) * x;
  const auto p = sigmoid_parts(T(2) * u);
  const T t = p.sig - p.sig_n;  // tanh(u)
  // (1 - t^2) (u' + x u''/2 - x t u'^2)
  return where(far, T(0), T(4) * p.prod * (du + T(0.5) * x * d2u - x * t * du * du));
}

// ---- Mish: s(x) = x tanh(softplus(x)) ----
// With n = e^x, tanh(softplus(x)) = n(n+2) / (n(n+2) + 2) and sech^2(softplus(x)) =
// 4w / (w+1)^2, w = (1+n)^2. For x > 0 both are rewritten in m = e^-x so nothing overflows.
// Both cases share e = exp(-|x|) (e = n for x <= 0, e = m for x > 0), and their numerators and
// denominators are selected before dividing:
//   t     = (1 + 2m) / (1 + 2m + 2m^2)             | n(n+2) / (n(n+2) + 2)
//   sech2 = 4 q r / (q + r)^2,  q = (1+e)^2,  r = m^2 | r = 1
//   sigma = 1 / (1+m)                            | n / (1+n)
// Every numerator and denominator lies in [0, 250] (denominators >= 1): no overflow anywhere.
template <typename T>
struct MishFractions {
  T t_num, t_den;        // t = t_num / t_den
  T q, r;                // sech2 = 4 q r / (q + r)^2
  T sig_num, sig_n_num;  // sigma = sig_num / one_e, sigmoid(-x) = sig_n_num / one_e
  T one_e;               // 1 + e
};

template <typename T>
C10_HOST_DEVICE inline MishFractions<T> mish_fractions(T x) {
  const T e = vexp(-vabs(x));
  const auto pos = x > T(0);
  MishFractions<T> f;
  f.t_num = where(pos, T(1) + T(2) * e, e * (e + T(2)));
  f.t_den = f.t_num + where(pos, T(2) * e * e, T(2));
  f.one_e = T(1) + e;
  f.q = f.one_e * f.one_e;
  f.r = where(pos, e * e, T(1));
  f.sig_num = where(pos, T(1), e);
  f.sig_n_num = where(pos, e, T(1));
  return f;
}

template <typename T>
struct MishParts {
  T t;      // tanh(softplus(x))
  T sech2;  // 1 - t^2
  T sig;    // sigmoid(x) = softplus'(x)
  T sig_n;  // sigmoid(-x)
};

template <typename T>
C10_HOST_DEVICE inline MishParts<T> mish_parts(T x) {
  const auto f = mish_fractions(x);
  const T qr = f.q + f.r;
  const T inv1e = T(1) / f.one_e;
  MishParts<T> p;
  p.t = f.t_num / f.t_den;
  p.sech2 = T(4) * f.q * f.r / (qr * qr);
  p.sig = f.sig_num * inv1e;
  p.sig_n = f.sig_n_num * inv1e;
  return p;
}

// t + x sech2 sigma over one common denominator B^2, so one division and few multiplies (the
// first derivative is the hot path of the backward pass). With e as above:
//   x > 0:  d = ((1 + 2e) B + 4x e^2 (1+e)) / B^2,  B = 1 + 2e + 2e^2
//   x <= 0: d = (nn B + 4x e (1+e)) / B^2,         B = nn + 2, nn = e (e + 2)
// so d = (A B + 4x C) / B^2 with A = t's numerator, B = its denominator (in [1, 5]) and
// C = e (1+e) (e | 1) (in [0, 2]); far out, x multiplies a C that has vanished: x * 0, never inf.
template <typename T>
C10_HOST_DEVICE inline T mish_grad(T x) {
  const T e = vexp(-vabs(x));
  const auto pos = x > T(0);
  const T e2 = e * e;
  const T a = vfmadd(T(2), e, where(pos, T(1), e2));
  const T b = a + where(pos, e2 + e2, T(2));
  const T c = (e + e2) * where(pos, e, T(1));
  if constexpr (std::is_floating_point_v<T>) {
    return (a * b + x * (T(4) * c)) / (b * b);  // scalars: as it was (see gelu_grad)
  } else {
    return vfmadd(a, b, x * (T(4) * c)) / (b * b);
  }
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
    return where(x > T(0), T(1), T(0));
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
// negative_only, active units pass grad through untouched. (Kernels pass negative_only as a
// compile-time constant, so the test folds away.)
template <Surrogate K, typename T>
C10_HOST_DEVICE inline T relu_backward(T grad, T x, T a, bool negative_only) {
  if constexpr (K == Surrogate::relu) {
    return where(x <= T(0), T(0), grad);
  } else {
    const T scaled = grad * surrogate_grad<K, T>(x, a);
    return negative_only ? where(x > T(0), grad, scaled) : scaled;
  }
}

// d(grad_input)/d(x) contracted with the incoming gradient: grad_grad * grad * s''(x).
// Zero where negative_only pins d to 1.
template <Surrogate K, typename T>
C10_HOST_DEVICE inline T relu_double_backward(T grad_grad, T grad, T x, T a, bool negative_only) {
  if constexpr (K == Surrogate::relu || K == Surrogate::leaky_relu) {
    return T(0);
  } else {
    const T value = grad_grad * grad * surrogate_grad2<K, T>(x, a);
    return negative_only ? where(x > T(0), T(0), value) : value;
  }
}

}  // namespace math
}  // namespace sugar

// Calls `__VA_ARGS__` (a generic lambda body using the compile-time constant `kSurrogate`) with
// the surrogate `KIND` known at compile time. Used by every backend to hoist the switch out of
// the element loop.
#define SUGAR_SURROGATE_CASE(NAME, ...)                                             \
  case ::sugar::math::Surrogate::NAME: {                                            \
    constexpr ::sugar::math::Surrogate kSurrogate = ::sugar::math::Surrogate::NAME; \
    (void)kSurrogate;                                                               \
    __VA_ARGS__();                                                                  \
    break;                                                                          \
  }

#define SUGAR_DISPATCH_SURROGATE(KIND, ...)       \
  switch (KIND) {                                 \
    SUGAR_SURROGATE_CASE(relu, __VA_ARGS__)       \
    SUGAR_SURROGATE_CASE(bsilu, __VA_ARGS__)      \
    SUGAR_SURROGATE_CASE(nelu, __VA_ARGS__)       \
    SUGAR_SURROGATE_CASE(elu, __VA_ARGS__)        \
    SUGAR_SURROGATE_CASE(selu, __VA_ARGS__)       \
    SUGAR_SURROGATE_CASE(leaky_relu, __VA_ARGS__) \
    SUGAR_SURROGATE_CASE(gelu, __VA_ARGS__)       \
    SUGAR_SURROGATE_CASE(gelu_tanh, __VA_ARGS__)  \
    SUGAR_SURROGATE_CASE(silu, __VA_ARGS__)       \
    SUGAR_SURROGATE_CASE(mish, __VA_ARGS__)       \
  }
