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
// Phi(-|x|) = erfc(|x|/sqrt 2) / 2 = t E Q(t) / 2 with t = 1 / (1 + |x| / (2 sqrt 2)), where
// Q(t) = erfcx(z) / t (z = |x|/sqrt 2, erfcx the scaled complementary error function) is smooth
// on t in (0, 1] and fitted by a degree-10 polynomial: relative error < 2e-8 (< 3e-7 in float
// arithmetic) over the whole line, so Phi keeps its relative accuracy deep in the left tail.
// Fit: weighted least squares on Chebyshev nodes against scipy.special.erfcx, in double.
template <typename Vec>
inline math::NormalParts<Vec> normal_parts(Vec x) {
  const Vec ax = abs(x);
  const Vec t = Vec(1.0f) / fmadd(ax, Vec(0.35355339059327376), Vec(1.0f));  // 1/(2 sqrt 2)
  const Vec e = exp(Vec(-0.5f) * x * x);
  // Q(t) by Estrin's scheme: a shorter dependency chain than Horner's, same accuracy here.
  const Vec t2 = t * t;
  const Vec t4 = t2 * t2;
  const Vec t8 = t4 * t4;
  const Vec q01 = fmadd(Vec(2.820938544e-01f), t, Vec(2.820947948e-01f));
  const Vec q23 = fmadd(Vec(1.753780037e-01f), t, Vec(2.468805142e-01f));
  const Vec q45 = fmadd(Vec(-5.718837264e-02f), t, Vec(9.299101884e-02f));
  const Vec q67 = fmadd(Vec(-4.467722061e-01f), t, Vec(1.269676007e-01f));
  const Vec q89 = fmadd(Vec(-2.307446994e-01f), t, Vec(4.859729047e-01f));
  const Vec q0123 = fmadd(q23, t2, q01);
  const Vec q4567 = fmadd(q67, t2, q45);
  const Vec q8910 = fmadd(Vec(4.232657419e-02f), t2, q89);
  const Vec q = fmadd(q8910, t8, fmadd(q4567, t4, q0123));
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
