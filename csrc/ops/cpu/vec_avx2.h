// sugar::cpu::avx2::Vec, 8 floats in an AVX2 register, with what surrogate_math.h needs of a
// compute type: arithmetic, comparisons giving a Mask, where(), vabs(), vexp(), normal_parts(); and
// Vec::load / Vec::store of float, bfloat16 and float16 storage.
//
// Include only from relu_kernel_avx2.cpp, after its switch to the AVX2 target. Everything here
// lives in namespace sugar::cpu::avx2 or takes an avx2 type, so every out-of-line copy the
// compiler may emit has a name of its own and cannot be merged with portable code (see
// relu_kernel_avx2.cpp).
#pragma once

#ifndef SUGAR_CPU_TARGET_AVX2
#error "vec_avx2.h must be included after the AVX2 target switch of relu_kernel_avx2.cpp"
#endif

#include "../surrogate_math.h"
#include "kernels.h"
#include "vec_math.h"

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

namespace sugar {
namespace cpu {
namespace avx2 {

struct Mask {
  __m256 m;  // all-ones lanes where true
};

struct Vec {
  static constexpr int kSize = 8;     // floats per register
  static constexpr int kSize16 = 16;  // 16-bit values per register
  __m256 v;

  Vec() = default;
  Vec(__m256 value) : v(value) {}
  // T(2), T(0.5), T(kSeluLambda): a broadcast of the constant rounded to float, as for scalars.
  template <typename S, typename = std::enable_if_t<std::is_arithmetic<S>::value>>
  explicit Vec(S s) : v(_mm256_set1_ps(static_cast<float>(s))) {}

  // ---- loads and stores; 16-bit floats widen to float and round back once (to nearest even) ----

  static Vec load(const float* p) { return _mm256_loadu_ps(p); }
  static void store(float* p, Vec x) { _mm256_storeu_ps(p, x.v); }

  static Vec load(const BFloat16Bits* p) {
    const __m128i bits = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(bits), 16));
  }

  // Rounds like c10::BFloat16's constructor: to nearest even, NaN to the quiet NaN 0x7FC0.
  static void store(BFloat16Bits* p, Vec x) {
    const __m256i u = _mm256_castps_si256(x.v);
    const __m256i lsb = _mm256_and_si256(_mm256_srli_epi32(u, 16), _mm256_set1_epi32(1));
    const __m256i bias = _mm256_add_epi32(lsb, _mm256_set1_epi32(0x7FFF));
    __m256i r = _mm256_srli_epi32(_mm256_add_epi32(u, bias), 16);
    const __m256i is_nan = _mm256_castps_si256(_mm256_cmp_ps(x.v, x.v, _CMP_UNORD_Q));
    r = _mm256_blendv_epi8(r, _mm256_set1_epi32(0x7FC0), is_nan);
    // Pack the eight 32-bit lanes (each < 2^16) to 16 bits: packus works per 128-bit half, so
    // gather the two useful quadwords afterwards.
    const __m256i packed = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(p), _mm256_castsi256_si128(packed));
  }

  static Vec load(const HalfBits* p) {
    return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  }

  // relu of the 16 bfloat16/float16 values at x, on their bits (vec_kernels.h): +0 where the
  // sign is set and the magnitude is neither 0 nor NaN, else the input's bits.
  template <typename S16>
  static void relu16(const S16* x, S16* out) {
    static_assert(sizeof(S16) == 2, "16-bit storage only");
    const __m256i b = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    const __m256i zero = _mm256_setzero_si256();
    const __m256i magnitude = _mm256_and_si256(b, _mm256_set1_epi16(0x7FFF));
    const __m256i sign = _mm256_cmpgt_epi16(zero, b);
    const __m256i nonzero = _mm256_cmpgt_epi16(magnitude, zero);
    const __m256i not_nan = _mm256_cmpgt_epi16(_mm256_set1_epi16(S16::kInfBits + 1), magnitude);
    const __m256i negative = _mm256_and_si256(sign, _mm256_and_si256(nonzero, not_nan));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out), _mm256_andnot_si256(negative, b));
  }

  // table[bits of p[j]] for the 8 16-bit values at p. Eight scalar loads, not vgatherdps: on
  // the AMD cores with AVX2 (Zen 2/3) the gather instruction is about 1.6x slower than this
  // (measured, Zen 3), and on Intel's the two are close.
  template <typename S16>
  static Vec lookup(const float* table, const S16* p) {
    static_assert(sizeof(S16) == 2, "16-bit storage only");
    const __m128 lo = _mm_setr_ps(table[p[0].bits], table[p[1].bits], table[p[2].bits], table[p[3].bits]);
    const __m128 hi = _mm_setr_ps(table[p[4].bits], table[p[5].bits], table[p[6].bits], table[p[7].bits]);
    return _mm256_set_m128(hi, lo);
  }
  static void store(HalfBits* p, Vec x) {
    _mm_storeu_si128(
        reinterpret_cast<__m128i*>(p),
        _mm256_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};

inline Vec operator+(Vec a, Vec b) { return _mm256_add_ps(a.v, b.v); }
inline Vec operator-(Vec a, Vec b) { return _mm256_sub_ps(a.v, b.v); }
inline Vec operator*(Vec a, Vec b) { return _mm256_mul_ps(a.v, b.v); }
inline Vec operator/(Vec a, Vec b) { return _mm256_div_ps(a.v, b.v); }
inline Vec operator-(Vec a) { return _mm256_xor_ps(a.v, _mm256_set1_ps(-0.0f)); }

// Ordered, quiet comparisons: false for NaN lanes, like the scalar operators.
inline Mask operator<(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LT_OQ)}; }
inline Mask operator<=(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_LE_OQ)}; }
inline Mask operator>(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GT_OQ)}; }
inline Mask operator>=(Vec a, Vec b) { return {_mm256_cmp_ps(a.v, b.v, _CMP_GE_OQ)}; }

inline Vec where(Mask m, Vec a, Vec b) { return _mm256_blendv_ps(b.v, a.v, m.m); }
inline Vec vabs(Vec a) { return _mm256_andnot_ps(_mm256_set1_ps(-0.0f), a.v); }
inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm256_fmadd_ps(a.v, b.v, c.v); }

// exp(x) to about 1 ulp (Cephes expf): x = n ln2 + r with |r| <= ln2/2, exp(r) by a degree-6
// polynomial, 2^n applied in two halves so that results down to the smallest subnormal come out
// right. Below -103.98 (and at -inf) the result is exactly 0; NaN stays NaN. For x <= 0 only:
// surrogate_math.h never takes exp of a positive number (above 0 the result is still right up
// to x = 88, but nothing guards the range beyond).
inline Vec vexp(Vec x) {
  const __m256 kMin = _mm256_set1_ps(-103.972084045410f);
  // max returns its second operand when either is NaN, so NaN lanes stay NaN.
  const __m256 xc = _mm256_max_ps(kMin, x.v);
  const __m256 fx = _mm256_round_ps(
      _mm256_mul_ps(xc, _mm256_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  // r = x - n ln2, with ln2 split in two for an exact first product.
  __m256 r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(0.693359375f), xc);
  r = _mm256_fnmadd_ps(fx, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 y = _mm256_set1_ps(1.9875691500e-4f);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.3981999507e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(8.3334519073e-3f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(4.1665795894e-2f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(1.6666665459e-1f));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(5.0000001201e-1f));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
  // n in [-150, 128]: 2^n = 2^(n>>1) * 2^(n - (n>>1)), both factors normal floats.
  const __m256i n = _mm256_cvtps_epi32(fx);
  const __m256i n1 = _mm256_srai_epi32(n, 1);
  const __m256i n2 = _mm256_sub_epi32(n, n1);
  const __m256i bias = _mm256_set1_epi32(127);
  const __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
  const __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
  const __m256 result = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
  const __m256 underflow = _mm256_cmp_ps(x.v, kMin, _CMP_LT_OQ);
  return _mm256_andnot_ps(underflow, result);
}

// Phi(x) and phi(x) from one exponential (vec_math.h).
inline math::NormalParts<Vec> normal_parts(Vec x) {
  return vec::normal_parts(x);
}

}  // namespace avx2
}  // namespace cpu
}  // namespace sugar
