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

template <typename V, typename S>
SUGAR_VEC_FLATTEN void relu_forward_kernel(int64_t n, void* out_ptr, const void* x_ptr) {
  S* out = static_cast<S*>(out_ptr);
  const S* x = static_cast<const S*>(x_ptr);
  constexpr int64_t W = V::kSize;
  int64_t i = 0;
  for (; i + 2 * W <= n; i += 2 * W) {
    const V a = V::load(x + i);
    const V b = V::load(x + i + W);
    V::store(out + i, math::relu_forward(a));
    V::store(out + i + W, math::relu_forward(b));
  }
  for (; i + W <= n; i += W) V::store(out + i, math::relu_forward(V::load(x + i)));
  if (i < n) store_partial(out + i, math::relu_forward(load_partial<V>(x + i, n - i)), n - i);
}

// One vector per iteration: the surrogate math is long enough for the out-of-order core to
// overlap iterations by itself. `flatten` inlines the whole of surrogate_math.h into the loop
// (left alone, GCC calls the big surrogates out of line, per vector).
template <typename V, typename S, math::Surrogate K, bool NegativeOnly>
SUGAR_VEC_FLATTEN void relu_backward_kernel(
    int64_t n, void* out_ptr, const void* grad_ptr, const void* x_ptr, float alpha) {
  S* out = static_cast<S*>(out_ptr);
  const S* grad = static_cast<const S*>(grad_ptr);
  const S* x = static_cast<const S*>(x_ptr);
  const V a(alpha);
  constexpr int64_t W = V::kSize;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    V::store(out + i, math::relu_backward<K, V>(V::load(grad + i), V::load(x + i), a, NegativeOnly));
  }
  if (i < n) {
    const V g = load_partial<V>(grad + i, n - i);
    const V xv = load_partial<V>(x + i, n - i);
    store_partial(out + i, math::relu_backward<K, V>(g, xv, a, NegativeOnly), n - i);
  }
}

template <typename V, typename S, int I = 0>
void fill_backward(BackwardFn (*row)[2]) {
  if constexpr (I < math::kNumSurrogates) {
    constexpr auto K = static_cast<math::Surrogate>(I);
    row[I][0] = &relu_backward_kernel<V, S, K, false>;
    row[I][1] = &relu_backward_kernel<V, S, K, true>;
    fill_backward<V, S, I + 1>(row);
  }
}

template <typename V, typename S>
void fill_storage(KernelTable& table, int storage) {
  table.forward[storage] = &relu_forward_kernel<V, S>;
  fill_backward<V, S>(table.backward[storage]);
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
