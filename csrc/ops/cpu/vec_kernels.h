// The vectorized loops over contiguous memory, written once for any SIMD type V (avx2::Vec,
// avx512::Vec) and instantiated by each ISA translation unit after its target switch. The math
// is surrogate_math.h's, instantiated with T = V; the loads and stores (float, bfloat16,
// float16) are V's static members V::load / V::store. The tail shorter than one vector goes
// through a zero-padded buffer, so no scalar instantiation of the shared math is made here.
//
// Every template below takes V, so every instantiation is named after its ISA (the portable
// code never instantiates any of them).
#pragma once

#include "../surrogate_math.h"
#include "kernels.h"

#include <cstdint>
#include <cstring>

#if defined(__GNUC__) || defined(__clang__)
#define SUGAR_VEC_FLATTEN __attribute__((flatten))
#else
#define SUGAR_VEC_FLATTEN
#endif

namespace sugar {
namespace cpu {
namespace vec {

template <typename V, typename S>
inline V load_partial(const S* p, int64_t count) {
  S buf[V::kSize];
  std::memset(buf, 0, sizeof(buf));
  std::memcpy(buf, p, count * sizeof(S));
  return V::load(static_cast<const S*>(buf));
}

template <typename V, typename S>
inline void store_partial(S* p, V v, int64_t count) {
  S buf[V::kSize];
  V::store(buf, v);
  std::memcpy(p, buf, count * sizeof(S));
}

// relu on float32: surrogate_math.h's relu_forward (x < 0 ? +0 : x) lane by lane, as a select,
// so NaN payloads and -0.0 pass untouched.
template <typename V, typename S>
SUGAR_VEC_FLATTEN void relu_forward_kernel(int64_t n, void* out_ptr, const void* x_ptr) {
  S* out = static_cast<S*>(out_ptr);
  const S* x = static_cast<const S*>(x_ptr);
  constexpr int64_t W = V::kSize;
  const V zero(0);
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V a = V::load(x + i);
    const V b = V::load(x + i + W);
    V::store(out + i, where(a < zero, zero, a));
    V::store(out + i + W, where(b < zero, zero, b));
  }
  for (; i + W <= n; i += W) {
    const V a = V::load(x + i);
    V::store(out + i, where(a < zero, zero, a));
  }
  if (i < n) {
    const V a = load_partial<V>(x + i, n - i);
    store_partial(out + i, where(a < zero, zero, a), n - i);
  }
}

// relu on bfloat16/float16 in the bit patterns themselves, V::kSize16 values per instruction: a
// negative number (sign set, magnitude neither 0 nor NaN) becomes +0, anything else passes bit
// for bit (NaN payloads, -0.0), exactly relu_forward on the storage type.
template <typename V, typename S>
SUGAR_VEC_FLATTEN void relu_forward_bits_kernel(int64_t n, void* out_ptr, const void* x_ptr) {
  static_assert(sizeof(S) == 2, "16-bit storage only");
  S* out = static_cast<S*>(out_ptr);
  const S* x = static_cast<const S*>(x_ptr);
  constexpr int64_t W = V::kSize16;
  int64_t i = 0;
  for (; i + W <= n; i += W) V::relu16(x + i, out + i);
  for (; i < n; ++i) {
    const uint16_t b = x[i].bits;
    const uint16_t magnitude = b & 0x7FFF;
    const bool negative = (b & 0x8000) != 0 && magnitude != 0 && magnitude <= S::kInfBits;
    out[i].bits = negative ? uint16_t(0) : b;
  }
}

// SUGAR_VEC_UNROLL independent vectors per iteration: the surrogate math is a long chain of
// dependent operations (exp, a division), so the core needs several chains in flight to keep its
// pipelines busy. `flatten` inlines all of surrogate_math.h into the loop (left alone, GCC calls
// the big surrogates out of line, once per vector).
#ifndef SUGAR_VEC_UNROLL
#define SUGAR_VEC_UNROLL 4
#endif
template <typename V, typename S, math::Surrogate K, bool NegativeOnly>
SUGAR_VEC_FLATTEN void relu_backward_kernel(
    int64_t n, void* out_ptr, const void* grad_ptr, const void* x_ptr, float alpha) {
  S* out = static_cast<S*>(out_ptr);
  const S* grad = static_cast<const S*>(grad_ptr);
  const S* x = static_cast<const S*>(x_ptr);
  const V a(alpha);
  constexpr int64_t W = V::kSize;
  constexpr int U = SUGAR_VEC_UNROLL;
  int64_t i = 0;
  for (; i + U * W <= n; i += U * W) {
    V r[U];
    for (int u = 0; u < U; ++u) {
      r[u] = math::relu_backward<K, V>(V::load(grad + i + u * W), V::load(x + i + u * W), a, NegativeOnly);
    }
    for (int u = 0; u < U; ++u) V::store(out + i + u * W, r[u]);
  }
  for (; i + W <= n; i += W) {
    V::store(out + i, math::relu_backward<K, V>(V::load(grad + i), V::load(x + i), a, NegativeOnly));
  }
  if (i < n) {
    const V g = load_partial<V>(grad + i, n - i);
    const V xv = load_partial<V>(x + i, n - i);
    store_partial(out + i, math::relu_backward<K, V>(g, xv, a, NegativeOnly), n - i);
  }
}

// table[bits] = d(x) for every 16-bit pattern of S, computed exactly as relu_backward_kernel
// computes it (the same instantiation of the same function on the same float), 1 where
// negative_only pins d to 1 (grad * 1 is grad, bit for bit).
template <typename V, typename S, math::Surrogate K, bool NegativeOnly>
SUGAR_VEC_FLATTEN void fill_grad_table(float alpha, float* table) {
  static_assert(sizeof(S) == 2, "16-bit storage only");
  const V a(alpha);
  constexpr int W = V::kSize;
  for (int base = 0; base < kGradTableSize; base += W) {
    S bits[W];
    for (int j = 0; j < W; ++j) bits[j].bits = static_cast<uint16_t>(base + j);
    const V x = V::load(static_cast<const S*>(bits));
    V d = math::surrogate_grad<K, V>(x, a);
    if (NegativeOnly) d = where(x > V(0), V(1), d);
    V::store(table + base, d);
  }
}

template <typename V, typename S>
SUGAR_VEC_FLATTEN void relu_backward_lut_kernel(
    int64_t n, void* out_ptr, const void* grad_ptr, const void* x_ptr, const float* table) {
  S* out = static_cast<S*>(out_ptr);
  const S* grad = static_cast<const S*>(grad_ptr);
  const S* x = static_cast<const S*>(x_ptr);
  constexpr int64_t W = V::kSize;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    V::store(out + i, V::load(grad + i) * V::lookup(table, x + i));
  }
  if (i < n) {
    S gbuf[W] = {}, xbuf[W] = {};
    std::memcpy(gbuf, grad + i, (n - i) * sizeof(S));
    std::memcpy(xbuf, x + i, (n - i) * sizeof(S));
    const V r = V::load(static_cast<const S*>(gbuf)) * V::lookup(table, static_cast<const S*>(xbuf));
    store_partial(out + i, r, n - i);
  }
}

template <typename V, typename S, int I = 0>
void fill_backward(KernelTable& table, int storage) {
  if constexpr (I < math::kNumSurrogates) {
    constexpr auto K = static_cast<math::Surrogate>(I);
    table.backward[storage][I][0] = &relu_backward_kernel<V, S, K, false>;
    table.backward[storage][I][1] = &relu_backward_kernel<V, S, K, true>;
    // Tables for the surrogates whose d(x) costs more than a gather (exp, erfc): not for the
    // relu control (it stays a select: 0 where x <= 0 even for an inf or NaN grad), nor for
    // leaky_relu and nelu (a select, or a division without exp: cheaper to compute).
    constexpr bool kCheap = K == math::Surrogate::relu || K == math::Surrogate::leaky_relu ||
        K == math::Surrogate::nelu;
    if constexpr (sizeof(S) == 2 && !kCheap) {
      table.grad_table[storage][I][0] = &fill_grad_table<V, S, K, false>;
      table.grad_table[storage][I][1] = &fill_grad_table<V, S, K, true>;
    }
    fill_backward<V, S, I + 1>(table, storage);
  }
}

template <typename V, typename S>
void fill_storage(KernelTable& table, int storage) {
  if constexpr (sizeof(S) == 2) {
    table.forward[storage] = &relu_forward_bits_kernel<V, S>;
  } else {
    table.forward[storage] = &relu_forward_kernel<V, S>;
  }
  fill_backward<V, S>(table, storage);
  if constexpr (sizeof(S) == 2) table.backward_lut[storage] = &relu_backward_lut_kernel<V, S>;
}

template <typename V>
KernelTable make_kernel_table() {
  static_assert(math::kNumSurrogates == kTableSurrogates, "kernels.h: kTableSurrogates is stale");
  KernelTable table{};
  fill_storage<V, float>(table, kStoreFloat);
  fill_storage<V, BFloat16Bits>(table, kStoreBFloat16);
  fill_storage<V, HalfBits>(table, kStoreHalf);
  return table;
}

}  // namespace vec
}  // namespace cpu
}  // namespace sugar
