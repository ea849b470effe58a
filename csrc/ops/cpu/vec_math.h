// Special functions written once for any SIMD type (avx2::Vec, avx512::Vec), from the type's
// own arithmetic, where(), abs(), fmadd() and exp(). The ISA headers wrap them in non-template
// overloads beside their type, where surrogate_math.h finds them by argument-dependent lookup.
// Include only after an ISA target switch (like vec_kernels.h).
#pragma once

#include "../surrogate_math.h"

namespace sugar {
namespace cpu {
namespace vec {

// Phi(x) and phi(x) from one exponential E = exp(-x^2/2): phi = E / sqrt(2 pi), and
// Phi(-|x|) = erfc(|x|/sqrt 2) / 2 = t E Q(t) / 2 with t = 1 / (1 + 0.4 |x| / sqrt 2), where
// Q(t) = erfcx(z) / t (z = |x|/sqrt 2, erfcx the scaled complementary error function) is smooth
// on t in (0, 1] and fitted by a degree-8 polynomial: relative error < 1.3e-7 (< 3.5e-7 in float
// arithmetic) over the whole line, so Phi keeps its relative accuracy deep in the left tail.
// Fit: iteratively reweighted least squares on Chebyshev nodes against scipy.special.erfcx, in
// double. Horner's scheme: the kernels are bound by multiply throughput, not latency.
template <typename Vec>
inline math::NormalParts<Vec> normal_parts(Vec x) {
  const Vec ax = vabs(x);
  const Vec t = Vec(1.0f) / fmadd(ax, Vec(0.28284271247461901), Vec(1.0f));  // 0.4 / sqrt 2
  const Vec e = vexp(Vec(-0.5f) * x * x);
  Vec q = Vec(5.025694328e-02f);
  q = fmadd(q, t, Vec(-1.828818236e-01f));
  q = fmadd(q, t, Vec(1.690553951e-01f));
  q = fmadd(q, t, Vec(-5.583821397e-03f));
  q = fmadd(q, t, Vec(1.414211670e-01f));
  q = fmadd(q, t, Vec(1.685443621e-01f));
  q = fmadd(q, t, Vec(2.078424307e-01f));
  q = fmadd(q, t, Vec(2.256696096e-01f));
  q = fmadd(q, t, Vec(2.256758618e-01f));
  const Vec tail = Vec(0.5f) * t * e * q;  // Phi(-|x|)
  math::NormalParts<Vec> p;
  // NaN compares false and stays NaN through tail.
  p.cdf = where(x >= Vec(0.0f), Vec(1.0f) - tail, tail);
  p.pdf = Vec(0.39894228040143267794) * e;
  return p;
}

}  // namespace vec
}  // namespace cpu
}  // namespace sugar
