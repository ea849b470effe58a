// sugar::cpu::avx512::Vec, 16 floats in an AVX-512 register: the AVX-512 twin of vec_avx2.h
// (same algorithms, same constants; read that file first).
//
// Include only from relu_kernel_avx512.cpp, after its switch to the AVX-512 target. Everything
// here lives in namespace sugar::cpu::avx512 or takes an avx512 type (see relu_kernel_avx2.cpp
// for why that matters).
#pragma once

#ifndef SUGAR_CPU_TARGET_AVX512
#error "vec_avx512.h must be included after the AVX-512 target switch of relu_kernel_avx512.cpp"
#endif

#include "../surrogate_math.h"
#include "kernels.h"
#include "vec_math.h"

#include <immintrin.h>

#include <cstdint>
#include <type_traits>

namespace sugar {
namespace cpu {
namespace avx512 {

struct Mask {
  __mmask16 m;  // bit i set where lane i is true
};

struct Vec {
  static constexpr int kSize = 16;    // floats per register
  static constexpr int kSize16 = 32;  // 16-bit values per register
  __m512 v;

  Vec() = default;
  Vec(__m512 value) : v(value) {}
  template <typename S, typename = std::enable_if_t<std::is_arithmetic<S>::value>>
  explicit Vec(S s) : v(_mm512_set1_ps(static_cast<float>(s))) {}

  static Vec load(const float* p) { return _mm512_loadu_ps(p); }
  static void store(float* p, Vec x) { _mm512_storeu_ps(p, x.v); }

  static Vec load(const BFloat16Bits* p) {
    const __m256i bits = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(bits), 16));
  }

  // Rounds like c10::BFloat16's constructor: to nearest even, NaN to the quiet NaN 0x7FC0.
  static void store(BFloat16Bits* p, Vec x) {
    const __m512i u = _mm512_castps_si512(x.v);
    const __m512i lsb = _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1));
    const __m512i bias = _mm512_add_epi32(lsb, _mm512_set1_epi32(0x7FFF));
    __m512i r = _mm512_srli_epi32(_mm512_add_epi32(u, bias), 16);
    const __mmask16 is_nan = _mm512_cmp_ps_mask(x.v, x.v, _CMP_UNORD_Q);
    r = _mm512_mask_blend_epi32(is_nan, r, _mm512_set1_epi32(0x7FC0));
    // Every lane is < 2^16, so truncating to 16 bits is exact.
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(p), _mm512_cvtepi32_epi16(r));
  }

  static Vec load(const HalfBits* p) {
    return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  }

  // relu of the 32 bfloat16/float16 values at x, on their bits (see vec_avx2.h).
  template <typename S16>
  static void relu16(const S16* x, S16* out) {
    static_assert(sizeof(S16) == 2, "16-bit storage only");
    const __m512i b = _mm512_loadu_si512(x);
    const __m512i zero = _mm512_setzero_si512();
    const __m512i magnitude = _mm512_and_si512(b, _mm512_set1_epi16(0x7FFF));
    const __mmask32 sign = _mm512_cmplt_epi16_mask(b, zero);
    const __mmask32 nonzero = _mm512_cmpgt_epi16_mask(magnitude, zero);
    const __mmask32 not_nan = _mm512_cmplt_epi16_mask(magnitude, _mm512_set1_epi16(S16::kInfBits + 1));
    const __mmask32 negative = sign & nonzero & not_nan;
    _mm512_storeu_si512(out, _mm512_maskz_mov_epi16(static_cast<__mmask32>(~negative), b));
  }

  // table[bits of p[j]] for the 16 16-bit values at p (a gather).
  template <typename S16>
  static Vec lookup(const float* table, const S16* p) {
    static_assert(sizeof(S16) == 2, "16-bit storage only");
    const __m512i index = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    return _mm512_i32gather_ps(index, table, 4);
  }
  static void store(HalfBits* p, Vec x) {
    _mm256_storeu_si256(
        reinterpret_cast<__m256i*>(p),
        _mm512_cvtps_ph(x.v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
  }
};

inline Vec operator+(Vec a, Vec b) { return _mm512_add_ps(a.v, b.v); }
inline Vec operator-(Vec a, Vec b) { return _mm512_sub_ps(a.v, b.v); }
inline Vec operator*(Vec a, Vec b) { return _mm512_mul_ps(a.v, b.v); }
inline Vec operator/(Vec a, Vec b) { return _mm512_div_ps(a.v, b.v); }
inline Vec operator-(Vec a) {
  return _mm512_castsi512_ps(
      _mm512_xor_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(static_cast<int>(0x80000000u))));
}

// Ordered, quiet comparisons: false for NaN lanes, like the scalar operators.
inline Mask operator<(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LT_OQ)}; }
inline Mask operator<=(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_LE_OQ)}; }
inline Mask operator>(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GT_OQ)}; }
inline Mask operator>=(Vec a, Vec b) { return {_mm512_cmp_ps_mask(a.v, b.v, _CMP_GE_OQ)}; }

inline Vec where(Mask m, Vec a, Vec b) { return _mm512_mask_blend_ps(m.m, b.v, a.v); }
inline Vec vabs(Vec a) {
  return _mm512_castsi512_ps(
      _mm512_and_si512(_mm512_castps_si512(a.v), _mm512_set1_epi32(0x7FFFFFFF)));
}

// exp(x): vec_avx2.h's algorithm, 16 lanes.
inline Vec vexp(Vec x) {
  const __m512 kMin = _mm512_set1_ps(-103.972084045410f);
  // max returns its second operand when either is NaN, so NaN lanes stay NaN.
  const __m512 xc = _mm512_max_ps(kMin, x.v);
  const __m512 fx = _mm512_roundscale_ps(
      _mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
      _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 y = _mm512_set1_ps(1.9875691500e-4f);
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.3981999507e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(8.3334519073e-3f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(4.1665795894e-2f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(1.6666665459e-1f));
  y = _mm512_fmadd_ps(y, r, _mm512_set1_ps(5.0000001201e-1f));
  y = _mm512_fmadd_ps(y, _mm512_mul_ps(r, r), _mm512_add_ps(r, _mm512_set1_ps(1.0f)));
  const __m512i n = _mm512_cvtps_epi32(fx);
  const __m512i n1 = _mm512_srai_epi32(n, 1);
  const __m512i n2 = _mm512_sub_epi32(n, n1);
  const __m512i bias = _mm512_set1_epi32(127);
  const __m512 s1 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n1, bias), 23));
  const __m512 s2 = _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(n2, bias), 23));
  const __m512 result = _mm512_mul_ps(_mm512_mul_ps(y, s1), s2);
  const __mmask16 underflow = _mm512_cmp_ps_mask(x.v, kMin, _CMP_LT_OQ);
  return _mm512_mask_blend_ps(underflow, result, _mm512_setzero_ps());
}

inline Vec fmadd(Vec a, Vec b, Vec c) { return _mm512_fmadd_ps(a.v, b.v, c.v); }

// Phi(x) and phi(x) from one exponential (vec_math.h).
inline math::NormalParts<Vec> normal_parts(Vec x) {
  return vec::normal_parts(x);
}

}  // namespace avx512
}  // namespace cpu
}  // namespace sugar
